package api

import "time"

// Member is one member of the cluster, as /nodes and the shell's .nodes
// show it.
type Member struct {
	ID       string
	RaftAddr string // host:port of its Raft transport
	APIAddr  string // URL of its HTTP API, e.g. "http://127.0.0.1:4001"; "" until recorded
	Voter    bool
	Leader   bool
}

// Progress is how far a node's database is. AppliedIndex is the index of
// the last log entry applied to it; CommittedIndex, the last entry this
// node knows to be committed that a database applies (entries such as
// configuration changes are skipped, so a caught-up node has
// AppliedIndex == CommittedIndex). The leader's CommittedIndex is the
// cluster's: a member lags the leader by the leader's CommittedIndex less
// its own AppliedIndex.
type Progress struct {
	AppliedIndex   uint64
	CommittedIndex uint64
}

// ReapedMember is a member the leader removed because it could not reach
// it (POST /reap, or the reap timeouts).
type ReapedMember struct {
	ID          string
	Voter       bool
	Unreachable time.Duration // how long the leader had not reached it
}
