package fsm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"modernc.org/sqlite"

	"github.com/raftlite/raftlite/snapshot"
)

// Snapshot captures the database at the current applied index. Raft calls
// it on the FSM goroutine, so no batch is being applied; it returns at once,
// without copying anything: it opens a read transaction on a connection of
// its own, and the pages are copied later by Persist, concurrently with new
// applies.
//
// Why the copy is consistent: in WAL mode a read transaction sees the
// database exactly as of the commit that preceded its first read, for as
// long as it stays open. Writers append new page versions to the WAL, and
// checkpoints never overwrite a page in the main file that an open reader
// might still need from it (they stop at the oldest reader's end mark, and
// the WAL is not restarted while any reader uses it). Persist copies the
// pages through that same transaction from SQLite's sqlite_dbpage table,
// which reads through the pager of its connection, WAL included (see
// pageReader). The stream is therefore the database as of this applied
// index, whatever is committed meanwhile.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	handedOff := false
	defer func() {
		if !handedOff {
			f.mu.RUnlock()
		}
	}()
	if f.closed {
		return nil, ErrClosed
	}
	if err := f.Err(); err != nil {
		return nil, fmt.Errorf("snapshot: fsm halted: %w", err)
	}
	ctx := context.Background()
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	idx, err := beginSnapshotRead(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("snapshot: %w", err)
	}
	if want := f.applied.Load(); idx != want {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		return nil, fmt.Errorf("snapshot: database at index %d, expected %d", idx, want)
	}
	handedOff = true
	return &fsmSnapshot{f: f, conn: conn, index: idx}, nil
}

// beginSnapshotRead opens the read transaction that pins the snapshot and
// returns the applied index it sees. The first read is what fixes the
// transaction's view; BEGIN alone does not.
func beginSnapshotRead(ctx context.Context, conn *sql.Conn) (uint64, error) {
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout=%d", busyTimeoutMS)); err != nil {
		return 0, err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
		return 0, err
	}
	idx, err := queryAppliedIndex(ctx, conn)
	if err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		return 0, err
	}
	return idx, nil
}

// fsmSnapshot is a database snapshot pinned by a read transaction. It holds
// the FSM's mu for reading until the pages are streamed, so that Restore and
// Close wait for the stream rather than pulling the file from under it.
type fsmSnapshot struct {
	f     *FSM
	conn  *sql.Conn
	index uint64
	once  sync.Once
}

// Persist streams the pinned database's pages to sink in the snapshot
// package's format.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if l, ok := sink.(LocalSnapshotSink); ok {
		l.LocalSnapshot()
	}
	start := time.Now()
	counted := &countingWriter{Writer: sink}
	if err := s.persist(counted); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot %d: %w", s.index, err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist snapshot %d: %w", s.index, err)
	}
	s.f.metrics.snapshotSeconds.Observe(time.Since(start).Seconds())
	s.f.metrics.snapshotBytes.Observe(float64(counted.n))
	return nil
}

func (s *fsmSnapshot) persist(w io.Writer) error {
	defer s.release()
	start := time.Now()
	// Logged so that a persist in progress is visible (the fault tests
	// kill a node between this line and "snapshot persisted").
	s.f.logger.Info("snapshot started", "index", s.index)
	// The pages stream from the read transaction straight into the
	// compressor: no scratch copy of the database is written and read
	// back, which halves the disk traffic of a snapshot and spares the
	// writes' fsyncs that contention. The transaction stays open until the
	// stream ends; applies go on meanwhile, appending to the WAL.
	pages, size, err := openPages(context.Background(), s.conn)
	if err != nil {
		return err
	}
	err = snapshot.Write(w, pages, size, s.index)
	if cerr := pages.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	s.f.logger.Info("snapshot persisted", "index", s.index, "db_bytes", size,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}

// copyTo copies every page of the pinned database into the file dest.
func (s *fsmSnapshot) copyTo(dest string) error {
	return s.conn.Raw(func(dc any) error {
		bk, ok := dc.(interface {
			NewBackup(string) (*sqlite.Backup, error)
		})
		if !ok {
			return fmt.Errorf("driver connection %T cannot back up", dc)
		}
		// The copy is scratch: no journal, no fsync.
		u := url.URL{Scheme: "file", Path: dest, RawQuery: "_pragma=journal_mode(OFF)&_pragma=synchronous(OFF)"}
		b, err := bk.NewBackup(u.String())
		if err != nil {
			return err
		}
		if _, err := b.Step(-1); err != nil {
			return errors.Join(err, b.Finish())
		}
		return b.Finish()
	})
}

// Release ends the snapshot's read transaction if Persist has not.
func (s *fsmSnapshot) Release() { s.release() }

func (s *fsmSnapshot) release() {
	s.once.Do(func() {
		ctx := context.Background()
		if _, err := s.conn.ExecContext(ctx, "ROLLBACK"); err != nil {
			s.f.logger.Error("end snapshot read transaction", "index", s.index, "error", err)
		}
		if err := s.conn.Close(); err != nil {
			s.f.logger.Error("close snapshot connection", "index", s.index, "error", err)
		}
		s.f.mu.RUnlock()
	})
}

// Restore replaces the database with the snapshot read from rc. The stream
// is written to DBFile+".restore" beside the live file and verified
// (checksum, and that it is a raftlite database at the index its header
// names) before anything else happens, unless PrepareRestore did that
// already while the snapshot arrived; then the live database is
// checkpointed into a single file, its connections are closed, the new file
// replaces it (after a marker saying it is not synced yet; see unsynced.go),
// and the database is reopened, reloading the applied index and the nodes.
// The new file is synced in the background. Until the old file is removed,
// any failure leaves the old database as it was and open.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.prep.mu.Lock()
	defer f.prep.mu.Unlock()
	tmp := f.restorePath()
	start := time.Now()
	h, err := f.restoreFile(rc)
	if err != nil {
		return err
	}
	read := time.Since(start)
	renamed := false
	defer func() {
		if !renamed {
			removeDBFiles(tmp)
		}
	}()

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return ErrClosed
	}
	if f.w == nil {
		return fmt.Errorf("restore snapshot %d: fsm halted: %w", h.Index, f.Err())
	}
	// The previous restore's marker must not be removed after this one's
	// is made.
	f.waitRestoreSynced()
	// After a TRUNCATE checkpoint the main file holds everything and the
	// WAL is empty, so the live database can be closed and replaced as a
	// single file, and reopened intact should the swap fail.
	if err := f.checkpoint(); err != nil {
		return fmt.Errorf("restore snapshot %d: %w", h.Index, err)
	}
	if err := f.closeDB(); err != nil {
		f.logger.Warn("closing database before restore", "error", err)
	}
	// Stale -wal/-shm files must not survive next to the new file: SQLite
	// would apply them to it. They hold nothing after the checkpoint.
	if err := removeSidecars(f.path); err != nil {
		return f.reopenAfterFailedRestore(fmt.Errorf("restore snapshot %d: %w", h.Index, err))
	}
	if err := f.markUnsynced(); err != nil {
		return f.reopenAfterFailedRestore(fmt.Errorf("restore snapshot %d: %w", h.Index, err))
	}
	// The old file is removed first rather than renamed over: ext4
	// (auto_da_alloc) writes out the whole of a file renamed over another
	// before the rename commits, which would put the new database's write
	// back on the critical path. With the marker made, a crash in between
	// only makes the next start restore the snapshot again.
	if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return f.reopenAfterFailedRestore(fmt.Errorf("restore snapshot %d: %w", h.Index, err))
	}
	if err := os.Rename(tmp, f.path); err != nil {
		// The old database is gone: the restart restores the snapshot.
		err = fmt.Errorf("restore snapshot %d: %w", h.Index, err)
		f.halt(err)
		return err
	}
	renamed = true
	f.stmtCache.clear()
	f.roCache.clear()
	if err := f.openDB(); err != nil {
		err = fmt.Errorf("restore snapshot %d: reopen: %w", h.Index, err)
		f.halt(err)
		return err
	}
	f.syncRestored(h.Index)
	f.metrics.restoreSeconds.Observe(time.Since(start).Seconds())
	f.logger.Info("restored snapshot", "index", h.Index, "size", h.Length,
		"read", read.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return nil
}

// reopenAfterFailedRestore reopens the old database after a restore failed
// before the rename, and returns err.
func (f *FSM) reopenAfterFailedRestore(err error) error {
	if rerr := f.openDB(); rerr != nil {
		rerr = fmt.Errorf("%w; reopening the old database: %w", err, rerr)
		f.halt(rerr)
		return rerr
	}
	return err
}

// checkpoint copies the whole WAL into the main file and empties it. The
// caller holds mu for writing, so no transaction is open anywhere.
func (f *FSM) checkpoint() error {
	var busy, logFrames, done int
	err := f.w.conn.QueryRowContext(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("checkpoint: database busy")
	}
	return nil
}

// checkRestoredDB checks that path is a raftlite database at index.
func checkRestoredDB(path string, index uint64) (err error) {
	db, err := sql.Open("sqlite", dsn(path))
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, db.Close(), removeSidecars(path))
	}()
	got, err := queryAppliedIndex(context.Background(), db)
	if err != nil {
		return fmt.Errorf("not a raftlite database: %w", err)
	}
	if got != index {
		return fmt.Errorf("database is at index %d, header says %d", got, index)
	}
	return nil
}

// removeSidecars removes the -wal and -shm files of the database at path.
func removeSidecars(path string) error {
	var errs []error
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// scratchPatterns match the scratch files the FSM writes, or wrote in
// earlier versions, beside the live database: a backup's (and a
// snapshot's, before snapshots streamed their pages) copy of the database
// with whatever journal SQLite kept beside it, and a restore's incoming
// file.
var scratchPatterns = []string{DBFile + ".snapshot-*", DBFile + ".backup-*", DBFile + ".restore*"}

// removeStaleScratch removes the scratch files that a process killed in the
// middle of a backup, restore or snapshot left in dir. Every operation
// removes its own file when it ends, but a SIGKILL, an OOM kill or a power
// cut skips that, and nothing else would ever remove them: each is as large
// as the database, so a node that crashed repeatedly during snapshots would
// fill its disk. None is needed again: an unfinished snapshot or backup is
// simply redone, and a restore replaces the live file only by renaming its
// file over it, which either happened or did not.
//
// Open calls it before anything uses dir. A second process started on the
// same data directory by mistake would remove the running one's in-flight
// files, which only fails that snapshot or backup (raft retries a
// snapshot); the second process then stops at the Raft store's lock.
func removeStaleScratch(dir string, logger *slog.Logger) {
	for _, pattern := range scratchPatterns {
		names, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, name := range names {
			if err := os.Remove(name); err != nil && !errors.Is(err, os.ErrNotExist) {
				logger.Warn("cannot remove a stale scratch file", "path", name, "error", err)
				continue
			}
			logger.Info("removed a scratch file left by an interrupted snapshot, backup or restore", "path", name)
		}
	}
}

// removeDBFiles removes a scratch database and whatever SQLite left beside
// it; errors are irrelevant, the files are scratch.
func removeDBFiles(path string) {
	for _, suffix := range []string{"", "-journal", "-wal", "-shm"} {
		os.Remove(path + suffix)
	}
}
