package sqlapi

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// Store is everything the HTTP layer needs from the node, with no optional
// methods: a node that lacks a capability does not compile. *cluster.Node
// implements it (package main asserts so).
type Store interface {
	// Execute proposes req as one Raft log entry and returns what applying it
	// produced. Leader only: on a follower it fails with an error matching
	// ErrNotLeader, and nothing is proposed.
	Execute(ctx context.Context, req *api.Request) (*api.Response, error)
	// Query reads the local copy of the database.
	Query(ctx context.Context, req *api.Request) ([]api.Result, error)
	// AllReadOnly reports whether every statement of req is read-only.
	AllReadOnly(ctx context.Context, req *api.Request) (bool, error)
	// IsLeader reports whether this node believes it is the leader.
	IsLeader() bool
	// IsVoter reports whether this node is a voter; level=auto is weak on
	// voters and none on read-only members.
	IsVoter() bool
	// ReadIndex is a read index: once this node has applied it
	// (WaitApplied), a local read is linearizable, so level=linearizable
	// is served by any node, followers included.
	ReadIndex(ctx context.Context) (uint64, error)
	// LeaderID is the leader's node ID, "" when no leader is known.
	LeaderID() string
	// LeaderAPIAddr is the leader's HTTP API URL, "" when unknown.
	LeaderAPIAddr() string
	// Members lists the cluster's members.
	Members() ([]api.Member, error)
	// Remove removes a member from the cluster (leader only).
	Remove(ctx context.Context, id string) error
	// StepDown makes the leader hand leadership over, to targetID when it is
	// not "" (leader only).
	StepDown(ctx context.Context, targetID string) error
	// WaitApplied blocks until this node has applied the log up to index.
	WaitApplied(ctx context.Context, index uint64) error
	// Ready returns nil when a leader is known and the store is open.
	Ready() error
	// Stats is the "store" object of /status.
	Stats() map[string]any
	// LastContact is when this node last heard from the leader, the zero
	// time if never. A level=none read with freshness on a follower is
	// refused when it is older than freshness.
	LastContact() time.Time
	// ApplyProgress tells how current the local database is, for
	// freshness_strict: caughtUp when it holds every entry this node knows
	// to be committed, and lastApplied, when it last applied entries (the
	// zero time if never since start).
	ApplyProgress() (caughtUp bool, lastApplied time.Time)
	// ID is this node's ID.
	ID() string

	// Backup writes a consistent copy of the database: the SQLite file,
	// or with opt.SQL an SQL text dump (/db/backup).
	Backup(ctx context.Context, w io.Writer, opt fsm.BackupOptions) error
	// Load replaces the whole database with an SQLite file (leader only;
	// ErrNotLeader otherwise). /db/load hands it SQL dumps too, once
	// turned into an SQLite file.
	Load(ctx context.Context, sqliteFile io.Reader) error

	// Checksum is the checksum of the database now (see package fsm,
	// checksum.go), with the applied index it describes.
	Checksum(ctx context.Context) (index uint64, sum string, err error)
	// ChecksumAt is the checksum as of a checksum marker's index, once
	// this node has applied it; an error matching fsm.ErrNoChecksum when
	// this node did not take one there.
	ChecksumAt(ctx context.Context, index uint64) (string, error)
	// TriggerChecksum proposes a checksum marker and returns its index
	// (leader only: ErrNotLeader otherwise).
	TriggerChecksum(ctx context.Context) (uint64, error)
}

// Errors a Store's errors match (errors.Is) to tell the HTTP layer what
// happened. A Store error matching none of them is a 500 store_error.
var (
	// ErrNotLeader: refused because this node is not the leader; nothing
	// was proposed. The request is forwarded to the leader.
	ErrNotLeader = errors.New("not leader")
	// ErrNoLeader: no leader is known (503 "leader not found").
	ErrNoLeader = errors.New("leader not found")
	// ErrLeadershipLost: proposed, but leadership was lost before the
	// outcome was known; the write may or may not have been applied (503
	// leadership_lost).
	ErrLeadershipLost = errors.New("leadership lost while committing")
	// ErrCommitTimeout: proposed, but the request's time ran out before it
	// committed; the write may or may not have been applied (504 timeout).
	ErrCommitTimeout = errors.New("timed out waiting for commit")
	// ErrUnknownOutcome: committed to the log, but this node could not
	// apply it and so cannot tell its results; it takes effect on the other
	// nodes (503 unknown_outcome). A retry with the same client_id/seq is
	// answered from the session once a node has applied it.
	ErrUnknownOutcome = errors.New("outcome unknown")
	// ErrNotApplied: refused for a passing reason (busy, leadership
	// transfer, shutting down) before anything was proposed; a retry is
	// safe (503 unavailable).
	ErrNotApplied = errors.New("not applied")
	// ErrBadRequest: the arguments were invalid, e.g. an unknown node ID
	// (400).
	ErrBadRequest = errors.New("bad request")
	// ErrEntryTooLarge: the write is larger than one log entry may be; it
	// was not proposed (413).
	ErrEntryTooLarge = errors.New("write too large for one log entry")
)

// mapErr translates a Store error through Config.Errors, keeping its
// message.
func (s *Server) mapErr(err error) error {
	if err == nil {
		return nil
	}
	for _, m := range s.cfg.Errors {
		if m.From != nil && m.To != nil && errors.Is(err, m.From) {
			if errors.Is(err, m.To) {
				return err
			}
			return &mappedError{kind: m.To, err: err}
		}
	}
	return err
}

// mappedError is a Store error that means one of this package's errors.
type mappedError struct {
	kind error
	err  error
}

func (e *mappedError) Error() string   { return e.err.Error() }
func (e *mappedError) Unwrap() []error { return []error{e.kind, e.err} }

// isNotLeader reports whether err says the request was refused because this
// node is not the leader (and so nothing was proposed).
func isNotLeader(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, raft.ErrNotLeader)
}

// isNoLeader reports whether err says no leader is known.
func isNoLeader(err error) bool {
	return errors.Is(err, ErrNoLeader)
}

// isLeadershipLost reports whether err says the write was proposed but
// leadership was lost before it was known to be committed.
func isLeadershipLost(err error) bool {
	return errors.Is(err, ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipLost) ||
		errors.Is(err, raft.ErrAbortedByRestore)
}

// isCommitTimeout reports whether err says the request's time ran out.
func isCommitTimeout(err error) bool {
	return errors.Is(err, ErrCommitTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// isNotApplied reports whether err says the request was refused, for a
// passing reason, before anything was proposed.
func isNotApplied(err error) bool {
	return errors.Is(err, ErrNotApplied) || errors.Is(err, raft.ErrEnqueueTimeout) ||
		errors.Is(err, raft.ErrLeadershipTransferInProgress) || errors.Is(err, raft.ErrRaftShutdown)
}
