package cluster

import (
	"context"
	"io"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// StateMachine is the replicated state machine a Node drives: the methods
// this package calls, and nothing of how the state is kept. The product's
// is *fsm.FSM (SQLite); the cluster tests also run nodes on an in-memory
// one (memfsm_test.go), as hashicorp/raft's tests do.
//
// The log entries it applies are fsm.Commands (fsm.EncodeCommand). Apply
// and ApplyBatch answer an execute or node command with an *api.Response
// and a failed entry with an error; entries at or below AppliedIndex are
// skipped, so a replay after a restart applies nothing twice.
type StateMachine interface {
	raft.BatchingFSM

	// AppliedIndex is the index of the last entry applied, kept with the
	// state (so it survives a restart); AppliedAt when this process last
	// applied one (the zero time if never).
	AppliedIndex() uint64
	AppliedAt() time.Time
	// WaitApplied blocks until AppliedIndex reaches index or ctx ends.
	WaitApplied(ctx context.Context, index uint64) error
	// Err is non-nil once the state machine has halted: it could not
	// keep what it applied (disk full, I/O error) and applies nothing more.
	Err() error
	// Discard empties the state (applied index 0), durably; called at
	// start-up only, before Raft runs (see loadpending.go).
	Discard() error
	// Nodes is the replicated member metadata (CmdSetNode, CmdRemoveNode).
	Nodes() map[string]fsm.NodeMeta

	// Query reads the local state; AllReadOnly says whether req would
	// change nothing.
	Query(ctx context.Context, req *api.Request) ([]api.Result, error)
	AllReadOnly(ctx context.Context, req *api.Request) (bool, error)

	// PrepareRestore decodes a snapshot stream as it arrives, ahead of
	// Restore (see snapstore.go); PrepareLoad readies an uploaded database
	// file at path to become a snapshot (see backup.go); Backup writes a
	// consistent copy of the state.
	PrepareRestore(r io.Reader) error
	PrepareLoad(ctx context.Context, path string) error
	Backup(ctx context.Context, w io.Writer, opt api.BackupOptions) error

	// Checksum is the checksum of the state now, with the index it
	// describes; ChecksumAt the one taken at a checksum marker's index.
	Checksum(ctx context.Context) (index uint64, sum string, err error)
	ChecksumAt(ctx context.Context, index uint64) (string, error)

	// WALSize is the size of the write-ahead log beside the state, which
	// TruncateWAL empties (a snapshot trigger; 0 and nil where there is
	// none).
	WALSize() int64
	TruncateWAL(ctx context.Context) error

	// Stats and SessionStats are the "sqlite3" and "sessions" objects of
	// /status.
	Stats() map[string]any
	SessionStats() map[string]any

	// WatchChanges reads the change history (/db/watch; see package
	// fsm, watch.go), waiting up to wait for a change to come.
	WatchChanges(ctx context.Context, req api.WatchRequest, wait time.Duration) (api.WatchPage, error)
}

// The product's state machine is checked here, at compile time.
var _ StateMachine = (*fsm.FSM)(nil)
