package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	good := Config{NodeID: "n1", RaftAddr: "127.0.0.1:4002", APIAdvAddr: "http://127.0.0.1:4001", Dir: "/tmp/x"}
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	d := good.WithDefaults()
	if d.RaftAdvAddr != "127.0.0.1:4002" || d.HeartbeatTimeout != DefaultHeartbeatTimeout ||
		d.ElectionTimeout != DefaultElectionTimeout || d.LeaderLeaseTimeout != DefaultLeaderLeaseTimeout ||
		d.SnapshotThreshold != DefaultSnapshotThreshold || d.TrailingLogs != DefaultTrailingLogs ||
		d.MaxAppendEntries != DefaultMaxAppendEntries || d.ApplyTimeout != DefaultApplyTimeout ||
		d.RaftLogLevel != "warn" {
		t.Fatalf("defaults: %+v", d)
	}

	for name, tc := range map[string]struct {
		mod  func(*Config)
		want string
	}{
		"no id":            {func(c *Config) { c.NodeID = "" }, "node ID is required"},
		"id with space":    {func(c *Config) { c.NodeID = "a b" }, "without whitespace"},
		"no dir":           {func(c *Config) { c.Dir = "" }, "data directory"},
		"bad raft addr":    {func(c *Config) { c.RaftAddr = "nope" }, "raft address"},
		"unspecified bind": {func(c *Config) { c.RaftAddr = "0.0.0.0:4002" }, "not reachable"},
		"no api addr":      {func(c *Config) { c.APIAdvAddr = "" }, "API advertise address is required"},
		"api not url":      {func(c *Config) { c.APIAdvAddr = "127.0.0.1:4001" }, "http(s) URL"},
		"bad join":         {func(c *Config) { c.Join = []string{"x"} }, "join address"},
		"expect w/o join":  {func(c *Config) { c.BootstrapExpect = 3 }, "needs join addresses"},
		"learner w/o join": {func(c *Config) { c.NonVoter = true }, "non-voter joins"},
		"learner bootstrap": {func(c *Config) {
			c.NonVoter, c.Join, c.BootstrapExpect = true, []string{"127.0.0.1:4012"}, 3
		}, "non-voter joins"},
		"lease > hb":       {func(c *Config) { c.LeaderLeaseTimeout = time.Second }, "lease timeout"},
		"election < hb":    {func(c *Config) { c.ElectionTimeout = 100 * time.Millisecond }, "election timeout"},
		"too many entries": {func(c *Config) { c.MaxAppendEntries = 5000 }, "max append entries"},
		"bad log level":    {func(c *Config) { c.RaftLogLevel = "loud" }, "raft log level"},
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			tc.mod(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want error containing %q", err, tc.want)
			}
		})
	}

	// An explicit advertise address makes an all-interfaces bind valid.
	c := good
	c.RaftAddr, c.RaftAdvAddr = "0.0.0.0:4002", "10.0.0.1:4002"
	if err := c.Validate(); err != nil {
		t.Fatalf("bind all with advertise address: %v", err)
	}
}

func TestDBBehind(t *testing.T) {
	logs := raft.NewInmemStore()
	// 1 config, 2-3 commands, 4 no-op, 5 barrier; 6-9 compacted away.
	for i, typ := range []raft.LogType{raft.LogConfiguration, raft.LogCommand, raft.LogCommand, raft.LogNoop, raft.LogBarrier} {
		if err := logs.StoreLog(&raft.Log{Index: uint64(i + 1), Term: 1, Type: typ}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		fsm, snap uint64
		want      bool
	}{
		{3, 3, false}, // same index
		{4, 3, false}, // database newer
		{3, 5, false}, // only no-op and barrier in between
		{2, 5, true},  // a command in between
		{3, 7, true},  // entries in between are gone: cannot tell
		{0, 1, true},
	} {
		if got := dbBehind(logs, tc.fsm, tc.snap); got != tc.want {
			t.Errorf("dbBehind(fsm %d, snapshot %d) = %v, want %v", tc.fsm, tc.snap, got, tc.want)
		}
	}
}
