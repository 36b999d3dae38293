package fsm

import (
	"fmt"
	"io"
	"sync"

	"github.com/raftlite/raftlite/snapshot"
)

// LocalSnapshotSink is implemented by a raft.SnapshotSink that wants to be
// told when it receives this FSM's own snapshot (Persist calls
// LocalSnapshot before writing), as opposed to one sent by the leader or
// loaded by a user, which a snapshot store may decode as it arrives (see
// PrepareRestore).
type LocalSnapshotSink interface{ LocalSnapshot() }

// preparedRestore is the restore file that PrepareRestore decoded and no
// Restore has used yet. mu also serialises PrepareRestore and Restore,
// which both write that file.
type preparedRestore struct {
	mu     sync.Mutex
	ok     bool
	header snapshot.Header
}

// PrepareRestore decodes the snapshot stream r into the restore file and
// verifies it, as Restore would. A snapshot store calls it while the
// snapshot is still arriving (on a pipe fed by what it receives), so that
// decoding and writing the database overlap the transfer. The
// Restore that follows reads only the header of the same snapshot and then
// swaps the files. Only the latest prepared snapshot is kept.
//
// The header (index and length) identifies the snapshot: the database at
// an applied index is the same on every node (deterministic apply), and a
// load is installed at an index of its own.
func (f *FSM) PrepareRestore(r io.Reader) error {
	f.prep.mu.Lock()
	defer f.prep.mu.Unlock()
	f.prep.ok = false
	h, err := snapshot.ReadHeader(r)
	if err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := decodeRestore(r, h, f.restorePath()); err != nil {
		return err
	}
	f.prep.ok, f.prep.header = true, h
	return nil
}

// restoreFile leaves the snapshot that rc holds in the restore file,
// verified: decoded by PrepareRestore already, or now. The caller holds
// f.prep.mu until it has moved the file away.
func (f *FSM) restoreFile(rc io.Reader) (snapshot.Header, error) {
	h, err := snapshot.ReadHeader(rc)
	if err != nil {
		return h, fmt.Errorf("restore snapshot: %w", err)
	}
	if f.prep.ok && f.prep.header == h {
		f.prep.ok = false
		f.logger.Info("restoring a snapshot decoded as it arrived", "index", h.Index)
		return h, nil
	}
	f.prep.ok = false
	return h, decodeRestore(rc, h, f.restorePath())
}

// restorePath is where a snapshot is decoded beside the live database.
func (f *FSM) restorePath() string { return f.path + ".restore" }

// decodeRestore writes the rest of the snapshot stream r, whose header h
// has been read, to path as a database file, and checks that it is a
// raftlite database at the index h names. On failure nothing is left at
// path. The file is not synced: Restore syncs it once it is in use.
func decodeRestore(r io.Reader, h snapshot.Header, path string) error {
	if err := snapshot.ReadBody(r, h, path); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	if err := checkRestoredDB(path, h.Index); err != nil {
		removeDBFiles(path)
		return fmt.Errorf("restore snapshot %d: %w", h.Index, err)
	}
	return nil
}
