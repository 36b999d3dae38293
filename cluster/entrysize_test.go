package cluster

import (
	"errors"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// TestEntryTooLargeNotProposed: a write that encodes to more than
// MaxEntryBytes fails with api.ErrEntryTooLarge and never reaches the log.
func TestEntryTooLargeNotProposed(t *testing.T) {
	nodes := startCluster(t, 1, func(c *Config) { c.MaxEntryBytes = 64 << 10 })
	leader := nodes[0]
	createTable(t, leader)
	before := leader.raft.LastIndex()
	_, err := leader.Execute(ctxT(t), &api.Request{Statements: []api.Statement{
		stmt("INSERT INTO foo(id, v) VALUES(1, ?)", strings.Repeat("x", 64<<10)),
	}})
	if !errors.Is(err, api.ErrEntryTooLarge) {
		t.Fatalf("a 64 KiB write with a 64 KiB limit: %v, want api.ErrEntryTooLarge", err)
	}
	if after := leader.raft.LastIndex(); after != before {
		t.Fatalf("the refused write moved the log from %d to %d", before, after)
	}
	exec(t, leader, stmt("INSERT INTO foo(id, v) VALUES(2, ?)", strings.Repeat("x", 60<<10)))
}
