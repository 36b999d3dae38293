package api

// Member is one member of the cluster, as /nodes and the shell's .nodes
// show it.
type Member struct {
	ID       string
	RaftAddr string // host:port of its Raft transport
	APIAddr  string // URL of its HTTP API, e.g. "http://127.0.0.1:4001"; "" until recorded
	Voter    bool
	Leader   bool
}
