package main

import (
	"bytes"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/sqlapi"
)

// TestRqlitedFlagsMapped: rqlited's flags with a meaning here reach the
// node's and the API's configuration.
func TestRqlitedFlagsMapped(t *testing.T) {
	f, err := parseServeFlags([]string{
		"-raft-timeout", "2s", "-raft-election-timeout", "3s", "-raft-apply-timeout", "4s",
		"-join-attempts", "7", "-join-interval", "1s", "-bootstrap-expect-timeout", "9s",
		"-write-queue-capacity", "10", "-write-queue-batch-size", "11", "-write-queue-timeout", "12ms", "-write-queue-tx",
		"-http-allow-origin", "https://example.com", "-on-disk-path", "/var/db/db.sqlite", "-raft-snap-wal-size", "0",
		"data",
	}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var c cluster.Config
	f.rqlited.applyCluster(&c)
	if c.HeartbeatTimeout != 2*time.Second || c.ElectionTimeout != 3*time.Second || c.ApplyTimeout != 4*time.Second ||
		c.JoinAttempts != 7 || c.JoinInterval != time.Second || c.BootstrapExpectTimeout != 9*time.Second ||
		c.LeaderLeaseTimeout != cluster.DefaultLeaderLeaseTimeout {
		t.Errorf("cluster config %+v", c)
	}
	var a sqlapi.Config
	f.rqlited.applyAPI(&a)
	if a.QueueCapacity != 10 || a.QueueBatchSize != 11 || a.QueueTimeout != 12*time.Millisecond || !a.QueueTx || a.AllowOrigin != "https://example.com" {
		t.Errorf("API config %+v", a)
	}
	if got := f.rqlited.dbDir(f.dataDir); got != "/var/db" {
		t.Errorf("database directory %q, want /var/db", got)
	}
	if f.snapWALSize >= 0 {
		t.Errorf("-raft-snap-wal-size 0 gave %d, want never (negative) as in rqlited", f.snapWALSize)
	}
	if w := f.rqlited.warnings(); len(w) != 0 {
		t.Errorf("warnings %q, want none", w)
	}
}

// TestRqlitedFlagsIgnored: a flag with no meaning here is accepted, with or
// without a value as rqlited takes it, and named in one WARN line each.
func TestRqlitedFlagsIgnored(t *testing.T) {
	f, err := parseServeFlags([]string{"-otlp-endpoint", "collector:4317", "-compress-snap-transport", "-join-as", "bob", "data"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	w := f.rqlited.warnings()
	if len(w) != 3 || !strings.HasPrefix(w[0], "flag -compress-snap-transport ignored: ") ||
		!strings.Contains(w[1], "-join-as ignored: joining uses the Raft port") || !strings.Contains(w[2], "-otlp-endpoint ignored: ") {
		t.Errorf("warnings %q", w)
	}
}

// TestServeHelpGrouped: -h lists every flag once, under its section.
func TestServeHelpGrouped(t *testing.T) {
	var out bytes.Buffer
	if _, err := parseServeFlags([]string{"-h"}, &out, io.Discard); err != flag.ErrHelp {
		t.Fatalf("-h: %v", err)
	}
	help := out.String()
	prev := -1
	for _, section := range []string{"\nNode:\n", "\nHTTP:\n", "\nRaft:\n", "\nCluster:\n", "\nrqlited compatibility"} {
		i := strings.Index(help, section)
		if i <= prev {
			t.Errorf("section %q missing or out of order", strings.TrimSpace(section))
		}
		prev = i
	}
	for _, name := range []string{"-raft-snap", "-join-interval", "-write-queue-tx", "-otlp-key", "-version"} {
		if strings.Count(help, "\n  "+name+" ")+strings.Count(help, "\n  "+name+"\n") != 1 {
			t.Errorf("%s not listed exactly once", name)
		}
	}
	if strings.Contains(help, "\nOther:\n") {
		t.Errorf("a flag has no section:\n%s", help[strings.Index(help, "\nOther:\n"):])
	}
}
