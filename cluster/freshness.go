package cluster

import (
	"time"

	"github.com/hashicorp/raft"
)

// LastContact is when this node last heard from a leader (an
// AppendEntries, a heartbeat, an installed snapshot) or granted a vote: the
// zero time if never. A leader answers now, and a closed node the zero
// time. It bounds the staleness of a local read on a follower (rqlite's
// freshness).
func (n *Node) LastContact() time.Time {
	if n.closed.Load() {
		return time.Time{}
	}
	if n.raft.State() == raft.Leader {
		return time.Now()
	}
	return n.raft.LastContact()
}

// ApplyProgress tells how current the local database is, for rqlite's
// freshness_strict: caughtUp when the database holds every entry this node
// knows to be committed (raft's commit index, which followers learn from the
// leader's AppendEntries, sent at least every CommitTimeout), and
// lastApplied, when the database last applied a batch of entries (the zero
// time if it has not since the node started).
//
// Raft's commit index also counts entries the database never sees (no-ops,
// barriers), so the entries between the database's applied index and the
// commit index are inspected: the database is caught up when none of them
// is one it applies. They are recent entries, served from the log cache.
func (n *Node) ApplyProgress() (caughtUp bool, lastApplied time.Time) {
	lastApplied = n.fsm.AppliedAt()
	if n.closed.Load() {
		return false, lastApplied
	}
	return !dbBehind(n.logs, n.fsm.AppliedIndex(), n.raft.CommitIndex()), lastApplied
}
