package cluster

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// TestLargeWriteGoesInParts: a write larger than MaxEntryBytes commits in
// entries of at most that size, and every node applies it whole; one of
// more than maxChunks parts is refused with api.ErrEntryTooLarge and never
// reaches the log.
func TestLargeWriteGoesInParts(t *testing.T) {
	const limit = 16 << 10
	nodes := startCluster(t, 3, func(c *Config) { c.MaxEntryBytes = limit })
	leader, err := findLeader(nodes...)
	if err != nil {
		t.Fatal(err)
	}
	createTable(t, leader)
	before := leader.raft.LastIndex()
	value := strings.Repeat("x", 20*limit)
	resp := exec(t, leader, stmt("INSERT INTO foo(id, v) VALUES(1, ?)", value), stmt("INSERT INTO foo(id, v) VALUES(2, 2)"))
	if len(resp.Results) != 2 {
		t.Fatalf("results %+v", resp.Results)
	}
	if parts := leader.raft.LastIndex() - before; parts < 20 {
		t.Fatalf("the write took %d log entries, want at least 20 parts of %d bytes", parts, limit)
	}
	for i := before + 1; i <= leader.raft.LastIndex(); i++ {
		var l raft.Log
		if err := leader.logs.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Data) > limit {
			t.Fatalf("entry %d holds %d bytes, over the %d limit", i, len(l.Data), limit)
		}
	}
	if n := waitSame(t, resp.Index, nodes...); n != 2 {
		t.Fatalf("%d rows, want 2", n)
	}

	before = leader.raft.LastIndex()
	_, err = leader.Execute(ctxT(t), &api.Request{Statements: []api.Statement{
		stmt("INSERT INTO foo(id, v) VALUES(3, ?)", strings.Repeat("x", (maxChunks+1)*limit)),
	}})
	if !errors.Is(err, api.ErrEntryTooLarge) {
		t.Fatalf("a write of more than %d parts: %v, want api.ErrEntryTooLarge", maxChunks, err)
	}
	if after := leader.raft.LastIndex(); after != before {
		t.Fatalf("the refused write moved the log from %d to %d", before, after)
	}
}

// TestConcurrentWritesShareEntries: concurrent writes are gathered into
// few entries, and each gets its own response (its own error included).
func TestConcurrentWritesShareEntries(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader, err := findLeader(nodes...)
	if err != nil {
		t.Fatal(err)
	}
	createTable(t, leader)
	before := leader.raft.LastIndex()
	const writers, each = 32, 20
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				id := w*each + i + 1
				resp, err := leader.Execute(ctxT(t), &api.Request{Statements: []api.Statement{
					insertStmt(id), stmt("INSERT INTO nope VALUES(?)", int64(id)),
				}})
				switch {
				case err != nil:
					errs <- err
					return
				case resp.Results[0].Error != "" || !strings.Contains(resp.Results[1].Error, "no such table"):
					errs <- fmt.Errorf("write %d: results %+v", id, resp.Results)
					return
				}

			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	entries := leader.raft.LastIndex() - before
	if entries >= writers*each/2 {
		t.Fatalf("%d writes took %d log entries, want them gathered", writers*each, entries)
	}
	// Every write was answered; one more marks where all are applied.
	if n := waitSame(t, insertRow(t, leader, writers*each+1), nodes...); n != writers*each+1 {
		t.Fatalf("%d rows, want %d", n, writers*each+1)
	}
	t.Logf("%d writes in %d entries", writers*each, entries)
}
