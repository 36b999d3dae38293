package fsm

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"github.com/raftlite/raftlite/api"
)

// Backup writes a consistent copy of the database to w, as of the applied
// index at the time of the call: a plain SQLite database file (in rollback
// journal mode, openable by any SQLite), or with opt.SQL a text dump in the
// style of the sqlite3 shell's .dump. raftlite's internal _raftlite_*
// tables (applied index, member metadata, client sessions) are left out of
// both: a backup holds only the user's data.
//
// The pages are copied, like a snapshot's, through a read transaction of a
// connection of its own while applies go on; only that copy holds the FSM's
// lock for reading (so Restore and Close wait for it). The internal tables
// are dropped from the copy, and the file or the dump is then streamed from
// it without holding anything.
func (f *FSM) Backup(ctx context.Context, w io.Writer, opt api.BackupOptions) error {
	tmp, err := f.copyForBackup(ctx)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer removeDBFiles(tmp)
	if err := stripInternal(ctx, tmp); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if opt.SQL {
		return dumpFile(ctx, tmp, w, opt.Tables)
	}
	fh, err := os.Open(tmp)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer fh.Close()
	if _, err := io.Copy(w, fh); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// copyForBackup copies the live database into a scratch file beside it and
// returns the file's name.
func (f *FSM) copyForBackup(ctx context.Context) (string, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return "", ErrClosed
	}
	if f.db == nil {
		return "", fmt.Errorf("fsm halted: %w", f.Err())
	}
	conn, err := f.db.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := beginSnapshotRead(ctx, conn); err != nil {
		return "", err
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	tmp, err := os.CreateTemp(filepath.Dir(f.path), DBFile+".backup-*")
	if err != nil {
		return "", err
	}
	name := tmp.Name()
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return "", err
	}
	s := &fsmSnapshot{f: f, conn: conn}
	if err := s.copyTo(name); err != nil {
		removeDBFiles(name)
		return "", fmt.Errorf("copy database: %w", err)
	}
	return name, nil
}

// scratchDSN opens a scratch database file with no durability: it is
// thrown away on failure.
func scratchDSN(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	u := url.URL{Scheme: "file", Path: path, RawQuery: "_pragma=synchronous(OFF)"}
	return u.String()
}

// stripInternal drops raftlite's internal tables (their indexes go with
// them) from the database copy at path and leaves it in rollback-journal
// mode, a plain SQLite file.
func stripInternal(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", scratchDSN(path))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return err
	}
	names, err := internalTables(ctx, db)
	if err != nil {
		return err
	}
	for _, n := range names {
		if _, err := db.ExecContext(ctx, "DROP TABLE "+quoteIdent(n)); err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
	}
	// The session table can be large (it keeps every session's last
	// answer): when dropping it freed a good part of the file, compact it.
	var free, pages int64
	if err := db.QueryRowContext(ctx, "SELECT freelist_count, page_count FROM pragma_freelist_count, pragma_page_count").Scan(&free, &pages); err != nil {
		return err
	}
	if free*4 > pages {
		if _, err := db.ExecContext(ctx, "VACUUM"); err != nil {
			return fmt.Errorf("vacuum: %w", err)
		}
	}
	return nil
}

// internalTables lists the _raftlite_ tables of db.
func internalTables(ctx context.Context, db *sql.DB) ([]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND substr(name, 1, ?) = ?`,
		len(internalPrefix), internalPrefix)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		names = append(names, n)
	}
	return names, rows.Err()
}
