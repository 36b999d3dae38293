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

// ReapedMember is a member the leader removed because it could not reach
// it (POST /reap, or the reap timeouts).
type ReapedMember struct {
	ID          string
	Voter       bool
	Unreachable time.Duration // how long the leader had not reached it
}
