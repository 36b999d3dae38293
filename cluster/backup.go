package cluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
	"github.com/raftlite/raftlite/snapshot"
)

// loadIndexGap is how far above the log's last index a load's snapshot is
// placed. Raft gives a user restore the index max(its last index,
// meta.Index)+1, taken on its leader loop some time after Load chose
// meta.Index; entries appended in between (writes keep arriving) would move
// it. With meta.Index this far ahead, the index Raft picks is meta.Index+1,
// which is what the database carried by the snapshot records as its
// applied index. The hole in the index space is what Raft wants anyway: it
// makes replication fault and send followers the snapshot.
const loadIndexGap = 1 << 20

// loadMu serialises loads on this node.
var loadMu sync.Mutex

// Backup writes a consistent copy of this node's database to w (see
// fsm.FSM.Backup). It reads the local copy: callers wanting the leader's
// state check IsLeader first, as the HTTP layer does.
func (n *Node) Backup(ctx context.Context, w io.Writer, opt api.BackupOptions) error {
	return n.fsm.Backup(ctx, w, opt)
}

// Load replaces the whole database, on every node, with the SQLite database
// file read from r. Leader only (api.ErrNotLeader otherwise).
//
// The upload is spooled to a file in the data directory, checked and
// prepared (fsm.FSM.PrepareLoad: integrity check, internal tables, member
// metadata carried over, sessions dropped), written as a snapshot stream
// and handed to Raft's user restore (raft.Raft.Restore). Raft stores it as a
// snapshot at a new index, restores this node's FSM from it, and followers
// receive it by InstallSnapshot, like any snapshot: the data never goes
// through the log, so memory stays bounded whatever the size. Load returns
// once a quorum holds the new database. An upload that is not a sound
// SQLite file fails with an error wrapping api.ErrInvalidLoad before
// anything changes.
func (n *Node) Load(ctx context.Context, r io.Reader) error {
	if !n.IsLeader() {
		return api.ErrNotLeader
	}
	return n.install(ctx, r, "load")
}

// Boot replaces the database of a node that is the whole cluster with the
// SQLite database file read from r (rqlite's POST /boot): a single member,
// the leader, else api.ErrNotSingleNode (or api.ErrNotLeader while it is
// not yet elected). It installs the file as Load does, through a user
// snapshot and never the log, but is not bounded by the HTTP layer's load
// limit and is never forwarded: it is meant for seeding a fresh node with
// a large database before others join.
func (n *Node) Boot(ctx context.Context, r io.Reader) error {
	servers, err := n.servers()
	if err != nil {
		return fmt.Errorf("boot: %w", err)
	}
	if len(servers) != 1 || string(servers[0].ID) != n.id {
		return fmt.Errorf("boot: %w (the cluster has %d members)", api.ErrNotSingleNode, len(servers))
	}
	if !n.IsLeader() {
		return fmt.Errorf("boot: %w", api.ErrNotLeader)
	}
	return n.install(ctx, r, "boot")
}

// install replaces the database on every node with the SQLite file read
// from r, through a user snapshot; what names the operation in errors and
// logs.
func (n *Node) install(ctx context.Context, r io.Reader, what string) error {
	loadMu.Lock()
	defer loadMu.Unlock()
	// Scratch files of an earlier load that crashed go first.
	dir, err := filepath.Abs(filepath.Join(n.cfg.Dir, "load"))
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	dbPath, err := spool(dir, "upload-*.sqlite", r)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer os.Remove(dbPath)
	defer os.Remove(dbPath + "-journal")
	if err := n.fsm.PrepareLoad(ctx, dbPath); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if !n.IsLeader() {
		return api.ErrNotLeader
	}
	metaIndex := n.raft.LastIndex() + loadIndexGap
	index := metaIndex + 1
	if err := fsm.SetLoadIndex(ctx, dbPath, index); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	stream, err := os.CreateTemp(dir, "upload-*.snap")
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer os.Remove(stream.Name())
	defer stream.Close()
	if err := snapshot.WriteFile(stream, dbPath, index); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	size, err := stream.Seek(0, io.SeekCurrent)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if _, err := stream.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	os.Remove(dbPath) // the stream holds it now
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: metaIndex, Size: size}
	start := time.Now()
	n.logger.Info("installing database through a user snapshot", "operation", what, "index", index, "stream_bytes", size)
	timeout := n.cfg.ApplyTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	raftDir := filepath.Join(n.cfg.Dir, "raft")
	if err := markLoadPending(raftDir, index); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := n.raft.Restore(meta, stream, timeout); err != nil {
		if snapshotStored(n.snaps, index) {
			// Installed here, perhaps not committed: see loadpending.go.
			err = fmt.Errorf("%s at index %d installed on this node but maybe not committed by the cluster: %w", what, index, err)
			n.halt(err)
			return fmt.Errorf("%w: %v", api.ErrLeadershipLost, err)
		}
		if cerr := clearLoadPending(raftDir); cerr != nil {
			n.logger.Warn("load failed before anything was installed", "operation", what, "error", cerr)
		}
		return fmt.Errorf("%s: %w", what, mapError(err))
	}
	if err := clearLoadPending(raftDir); err != nil {
		// The next start would discard the committed load here.
		n.logger.Error("database installed, but its load-pending marker stays", "operation", what, "error", err)
	}
	if got := n.fsm.AppliedIndex(); got != index {
		n.logger.Error("database installed at an unexpected index", "operation", what, "want", index, "fsm_applied", got)
	}
	n.logger.Info("database installed", "operation", what, "index", index, "took", time.Since(start))
	return nil
}

// spool copies r into a new file in dir and returns its name.
func spool(dir, pattern string, r io.Reader) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// StatementsSize bounds what stmts add to one log entry (see
// fsm.StatementsSize and Config.MaxEntryBytes).
func (n *Node) StatementsSize(stmts []api.Statement) int { return fsm.StatementsSize(stmts) }
