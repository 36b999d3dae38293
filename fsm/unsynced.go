package fsm

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/raftlite/raftlite/snapshot"
)

// A restored database is put to use before it is on the disk, and written
// out afterwards, in the background.
//
// Why that is safe: every snapshot the FSM restores is durable in Raft's
// snapshot store before Restore is called (raft stores a received or loaded
// snapshot, synced, first), and Raft keeps it, or a later one, together
// with the log entries after it. The decoded database is therefore a copy
// that can be made again, like the commits its WAL holds unsynced
// (synchronous=NORMAL). Unlike the WAL, whose frames SQLite checksums, a
// main database file cut short by a crash would not show it, so a marker
// file beside the database says that it may not be on the disk yet: Restore
// creates the marker, durably, before it replaces the database with the
// restored file, and removes it once the file and its directory have been
// synced. A start-up that
// finds the marker removes the database (see discardUnsynced); its applied
// index is then 0, so the cluster package has Raft restore the newest
// snapshot again (dbBehind).
//
// Why: syncing the decoded file before the rename put the whole database on
// the critical path of a new or lagging follower (a 500 MB database is
// written twice, compressed into the snapshot store and decoded into
// place), which made a join disk-bound on both copies; now it waits only
// for the compressed one.

// unsyncedPath is the marker of a restored database not yet synced.
func (f *FSM) unsyncedPath() string { return f.path + ".unsynced" }

// markUnsynced creates the marker durably. It must precede the rename of a
// restored file over the database, so that no crash can leave that file in
// place, unsynced, without the marker.
func (f *FSM) markUnsynced() error {
	m, err := os.Create(f.unsyncedPath())
	if err != nil {
		return fmt.Errorf("mark the restored database unsynced: %w", err)
	}
	if err := m.Close(); err != nil {
		return fmt.Errorf("mark the restored database unsynced: %w", err)
	}
	if err := snapshot.SyncDir(filepath.Dir(f.path)); err != nil {
		return fmt.Errorf("mark the restored database unsynced: %w", err)
	}
	return nil
}

// syncRestored writes the database restored at index out to the disk in
// the background, and then removes the marker. A failed sync halts the FSM:
// after a failed fsync the kernel may drop the unwritten pages, so the
// database can no longer be trusted to read back what was restored; the
// marker stays, and the restart that the halt asks for restores the
// snapshot again. The caller holds mu for writing.
func (f *FSM) syncRestored(index uint64) {
	done := make(chan struct{})
	f.restoreSynced = done
	go func() {
		defer close(done)
		start := time.Now()
		err := snapshot.SyncFile(f.path)
		if err == nil {
			// The rename that put the file in place, too.
			err = snapshot.SyncDir(filepath.Dir(f.path))
		}
		if err != nil {
			f.halt(fmt.Errorf("restore snapshot %d: write the database to disk: %w", index, err))
			return
		}
		if err := os.Remove(f.unsyncedPath()); err != nil {
			// The next start restores the snapshot again: slower, not wrong.
			f.logger.Warn("cannot remove the restored database's unsynced marker", "error", err)
		}
		f.logger.Info("restored database written to disk", "index", index, "took", time.Since(start).Round(time.Millisecond))
	}()
}

// waitRestoreSynced waits until the last restored database is on the disk.
// The caller holds mu for writing.
func (f *FSM) waitRestoreSynced() {
	if f.restoreSynced != nil {
		<-f.restoreSynced
	}
}

// discardUnsynced removes the database at path, with its WAL, if a restore
// had not finished writing it to disk when the process stopped (see
// markUnsynced), and then the marker.
func discardUnsynced(path string, logger *slog.Logger) error {
	marker := path + ".unsynced"
	if _, err := os.Stat(marker); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	logger.Warn("the database restored from a snapshot may not have reached the disk before the node stopped: "+
		"removing it, to restore the snapshot again", "path", path)
	// The removal must be durable before the marker's is.
	if err := removeDatabase(path); err != nil {
		return fmt.Errorf("discard unsynced database: %w", err)
	}
	if err := os.Remove(marker); err != nil {
		return fmt.Errorf("discard unsynced database: %w", err)
	}
	return nil
}

// Discard empties the database, durably: it closes it, removes its files
// and opens a new, empty one, whose applied index is 0, so that Raft
// rebuilds it from its newest snapshot and log. The cluster package calls
// it at start-up, before Raft runs, when the database may hold a load that
// the cluster never committed (see cluster's load-pending marker).
func (f *FSM) Discard() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	f.waitRestoreSynced()
	if err := f.closeDB(); err != nil {
		return fmt.Errorf("discard database: %w", err)
	}
	if err := removeDatabase(f.path); err != nil {
		return fmt.Errorf("discard database: %w", err)
	}
	if err := f.openDB(); err != nil {
		return fmt.Errorf("discard database: reopen %s: %w", f.path, err)
	}
	f.logger.Warn("database discarded, to be rebuilt from the raft snapshot and log", "path", f.path)
	return nil
}

// removeDatabase removes the database at path with its journal, WAL and
// shared-memory files, durably.
func removeDatabase(path string) error {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return snapshot.SyncDir(filepath.Dir(path))
}
