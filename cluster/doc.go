// Package cluster owns Raft for raftlite: the TCP transport (one port,
// multiplexed by a one-byte header between Raft's own RPCs and a small
// internal cluster service, under TLS when Config.ServerTLS is set), the
// Raft log and stable stores, snapshots
// storage, bootstrap and join, membership changes, leadership, and the
// replicated member metadata (each node's HTTP API address).
//
// A Node proposes log entries built from fsm.Command values and reads the
// local state through its StateMachine, an interface of the methods this
// package calls: the product's is *fsm.FSM, which owns the SQLite file and
// everything applied to it; the tests also use an in-memory statement log.
// This package never touches the database directly, never interprets SQL,
// and never serves the public HTTP API (package sqlapi does, forwarding to
// the leader's API address it learns from LeaderAPIAddr). Its errors are
// package api's outcome errors. The state machine handed to Open (or Start)
// is owned by the caller: Close stops Raft so that nothing applies to it
// any more, but does not close it.
//
// Open starts a node and makes it part of a cluster; Start and Form do the
// two steps separately, so that a server can answer /readyz while a new
// node waits for the nodes it expects. A bootstrap-expect node joins a
// running cluster only if it is the listed nodes' own (see
// Config.BootstrapExpect) and says loudly why it refuses any other.
//
// Index trap: hashicorp/raft's AppliedIndex is the index raft has handed to
// the FSM goroutine, not what the database holds. Every read and wait in this
// package uses the state machine's own applied index (StateMachine.AppliedIndex).
//
// Commit trap: on the leader, raft's commit index may count the leader's
// own copy of an entry before it is synced (the leader's append does not
// wait for its sync; see "The leader's append" in walstore.go). Nothing may
// act on raft's commit index alone: the state machine raft drives applies
// only durable entries (gatedFSM), the commit index sent to followers is
// capped at the durable index, and reads wait for the applied index.
package cluster
