package fsm

import (
	"context"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"
)

// WALSize returns the size in bytes of the database's write-ahead log file.
func (f *FSM) WALSize() int64 { return fileSize(f.path + "-wal") }

// TruncateWAL checkpoints the whole WAL into the database file and
// truncates the WAL to zero bytes, from a connection of its own. SQLite's
// automatic checkpoints copy pages back but never shrink the file, which
// keeps the size it reached while a long read (a snapshot's or a backup's
// copy) held the WAL. It waits at most a moment for readers; when some
// still use the WAL it leaves the rest for a later call and returns nil.
func (f *FSM) TruncateWAL(ctx context.Context) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return ErrClosed
	}
	if f.db == nil {
		return fmt.Errorf("truncate wal: fsm halted: %w", f.Err())
	}
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA busy_timeout=200"); err != nil {
		return fmt.Errorf("truncate wal: %w", err)
	}
	defer conn.ExecContext(context.Background(), fmt.Sprintf("PRAGMA busy_timeout=%d", busyTimeoutMS))
	var busy, logFrames, done int
	if err := conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done); err != nil {
		if sqliteCode(err)&0xff == sqlite3.SQLITE_BUSY {
			return nil
		}
		return fmt.Errorf("truncate wal: %w", err)
	}
	return nil
}
