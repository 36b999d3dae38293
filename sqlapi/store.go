package sqlapi

import (
	"context"
	"io"
	"time"

	"github.com/raftlite/raftlite/api"
)

// Store is everything the HTTP layer needs from the node, with no optional
// methods: a node that lacks a capability does not compile. *cluster.Node
// implements it (package main asserts so).
type Store interface {
	// Execute proposes req as one Raft log entry and returns what applying it
	// produced. Leader only: on a follower it fails with an error matching
	// api.ErrNotLeader, and nothing is proposed.
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
	// Promote makes the learner (non-voter) id a voter once it has caught
	// up (leader only): promoted is false, with no error, when id already
	// votes; api.ErrUnknownNode when it is no member; api.ErrLearnerNotReady
	// when it lags or does not answer.
	Promote(ctx context.Context, id string) (promoted bool, err error)
	// Progress tells how far this node's database is; /readyz reports it
	// so that /nodes can show each member's applied index and lag.
	Progress() api.Progress
	// Reap removes the members the leader has not reached for at least
	// minUnreachable (leader only; api.ErrNotLeader otherwise) and reports
	// them.
	Reap(ctx context.Context, minUnreachable time.Duration) ([]api.ReapedMember, error)
	// Snapshot takes a snapshot of this node now, keeping trailing log
	// entries behind it (0: the configured number), and returns the latest
	// snapshot's index.
	Snapshot(ctx context.Context, trailing uint64) (uint64, error)
	// Boot replaces the database of a node that is the whole cluster with
	// an SQLite file, without the log (api.ErrNotSingleNode elsewhere).
	Boot(ctx context.Context, sqliteFile io.Reader) error
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
	Backup(ctx context.Context, w io.Writer, opt api.BackupOptions) error
	// Load replaces the whole database with an SQLite file (leader only;
	// api.ErrNotLeader otherwise). /db/load executes SQL text instead,
	// through Execute.
	Load(ctx context.Context, sqliteFile io.Reader) error
	// StatementsSize bounds what stmts add to one log entry, encoded; the
	// write queue keeps its batches within the entry limit with it.
	StatementsSize(stmts []api.Statement) int

	// Checksum is the checksum of the database now (see package fsm,
	// checksum.go), with the applied index it describes.
	Checksum(ctx context.Context) (index uint64, sum string, err error)
	// ChecksumAt is the checksum as of a checksum marker's index, once
	// this node has applied it; an error matching api.ErrNoChecksum when
	// this node did not take one there.
	ChecksumAt(ctx context.Context, index uint64) (string, error)
	// TriggerChecksum proposes a checksum marker and returns its index
	// (leader only: api.ErrNotLeader otherwise).
	TriggerChecksum(ctx context.Context) (uint64, error)

	// WatchChanges returns a page of this node's committed row changes
	// from req.From on that pass req's filters, waiting up to wait for
	// one to come (/db/watch). An index whose history was trimmed fails
	// with an *api.CompactedError (api.ErrCompacted).
	WatchChanges(ctx context.Context, req api.WatchRequest, wait time.Duration) (api.WatchPage, error)
	// CompactWatch proposes trimming the change history up to and
	// including index and returns the entry's index (leader only:
	// api.ErrNotLeader otherwise).
	CompactWatch(ctx context.Context, index uint64) (uint64, error)
}
