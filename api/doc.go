// Package api is the vocabulary every layer of raftlite shares: the
// statements, requests and results a client sends and gets back
// (types.go), the read consistency levels (level.go), the members of a
// cluster (member.go), and the one set of outcome errors a client can
// meet, each defined once with its HTTP status and JSON "code"
// (errors.go).
//
// It is a leaf: it imports only the standard library, never another
// raftlite package nor hashicorp/raft or SQLite, so that the HTTP layer
// (sqlapi), the node (cluster), the state machine (fsm), the Go client
// (client) and the shell can all depend on it without depending on each
// other.
package api
