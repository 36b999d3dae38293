package fsm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"

	"modernc.org/sqlite"
)

// busyTimeoutMS bounds how long a connection waits for a lock. In WAL mode
// only the write connection writes, so waits are rare and short (a reader
// during WAL recovery, Restore's checkpoint).
const busyTimeoutMS = 5000

// writerPragmas configure the write connection.
//
// synchronous=NORMAL in WAL mode syncs the WAL only at checkpoints, so a
// power loss (not a process crash) can lose the most recent commits. That is
// safe because the Raft log, which is fsynced before an entry commits, is the
// durable record: the applied index is stored in the same transactions as
// the data, so a database that lost commits also reports the older index,
// and Raft replays the lost entries (see the package doc for the one rule
// this puts on snapshot restores at start-up). FULL would fsync on every
// batch for no gain in durability.
//
// foreign_keys is Config.ForeignKeys (-fk), off by default as in SQLite and
// rqlite. The views that hide raftlite's tables (hide.go) come last:
// setting temp_store drops every TEMP object.
func writerPragmas(foreignKeys bool) []string {
	return append([]string{
		"PRAGMA journal_mode=WAL",
		"PRAGMA synchronous=NORMAL",
		foreignKeysPragma(foreignKeys),
		fmt.Sprintf("PRAGMA busy_timeout=%d", busyTimeoutMS),
		"PRAGMA temp_store=MEMORY",
	}, schemaViews...)
}

// readerPragmas configure read connections. query_only makes SQLite itself
// refuse any write, as a second line behind the read-only guard, so it
// comes after the views. foreign_keys only reports the setting there.
func readerPragmas(foreignKeys bool) []string {
	p := append([]string{
		foreignKeysPragma(foreignKeys),
		fmt.Sprintf("PRAGMA busy_timeout=%d", busyTimeoutMS),
		"PRAGMA temp_store=MEMORY",
	}, schemaViews...)
	return append(p, "PRAGMA query_only=ON")
}

func foreignKeysPragma(on bool) string {
	if on {
		return "PRAGMA foreign_keys=ON"
	}
	return "PRAGMA foreign_keys=OFF"
}

// reportedPragmas are the settings /status shows under
// store.sqlite3.pragmas, per connection kind, as rqlite does.
var reportedPragmas = []string{"synchronous", "journal_mode", "foreign_keys", "wal_autocheckpoint", "busy_timeout"}

// readPragmas reads reportedPragmas on c, as text.
func readPragmas(ctx context.Context, c *dbConn) (map[string]string, error) {
	m := make(map[string]string, len(reportedPragmas))
	for _, p := range reportedPragmas {
		var v string
		if err := c.conn.QueryRowContext(ctx, "PRAGMA "+p).Scan(&v); err != nil {
			return nil, fmt.Errorf("read PRAGMA %s: %w", p, err)
		}
		m[p] = v
	}
	return m, nil
}

var ofdOnce sync.Once

// enableOFDLocking switches SQLite to open-file-description locks, once per
// process and before any database is opened. With POSIX locks, closing any
// descriptor of the database file anywhere in the process (a backup handler
// hashing the file, say) silently drops SQLite's locks.
func enableOFDLocking(logger *slog.Logger) {
	ofdOnce.Do(func() {
		_, err := sqlite.OFDLocking(true)
		switch {
		case err == nil, errors.Is(err, sqlite.ErrOFDLockingUnavailable):
		case errors.Is(err, sqlite.ErrOFDLockingTooLate):
			if !sqlite.OFDLockingEnabled() {
				logger.Warn("SQLite OFD locking could not be enabled: a database was opened earlier in this process with POSIX locks")
			}
		default:
			logger.Warn("enabling SQLite OFD locking failed", "error", err)
		}
	})
}

// dsn returns the driver's name for the database at path. A file: URI with
// an escaped path works whatever characters the path contains; the plain
// form would cut the path at a '?'.
func dsn(path string) string {
	return (&url.URL{Scheme: "file", Path: path}).String()
}

// dbConn is one pinned SQLite connection and the guard that authorizes what
// it prepares.
type dbConn struct {
	conn  *sql.Conn
	guard *guard
	// prepared holds the connection's prepared statements, keyed by the
	// guard mode they were authorized in and their SQL text. Preparing
	// (parsing and compiling) was a fifth of a point read's CPU and of an
	// INSERT's apply; a cached statement skips it. SQLite re-prepares a
	// statement by itself when the schema changed, consulting the guard
	// again.
	prepared *lru[preparedStmt]
}

// preparedStmt is a cached prepared statement and what the guard saw while
// preparing it, which running a prepared statement does not show again.
type preparedStmt struct {
	stmt     *sql.Stmt
	dml, ddl bool
}

// preparedPerConn bounds each connection's prepared statements.
const preparedPerConn = 64

// newDBConn takes a connection from db for good, applies pragmas and
// installs a guard in mode.
func newDBConn(ctx context.Context, db *sql.DB, pragmas []string, mode guardMode) (*dbConn, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range pragmas {
		if _, err := conn.ExecContext(ctx, p); err != nil {
			conn.Close()
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	g := &guard{mode: mode}
	err = conn.Raw(func(dc any) error {
		r, ok := dc.(sqlite.AuthorizerRegisterer)
		if !ok {
			return fmt.Errorf("driver connection %T has no authorizer", dc)
		}
		return r.RegisterAuthorizer(g.authorize)
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	closeStmt := func(p preparedStmt) { p.stmt.Close() }
	return &dbConn{conn: conn, guard: g, prepared: newEvictingLRU(preparedPerConn, closeStmt)}, nil
}

// cacheable reports whether query may go through prepare: a single
// statement short enough for the cache. Others run unprepared (a prepared
// statement would stay open until the connection closes).
func cacheable(query string) bool {
	return len(query) < maxCachedSQL && !multipleStatements(query)
}

// prepare returns query, which must be cacheable, prepared on c under the
// guard's current mode, from the cache if it was prepared before. A
// statement the guard refuses, or that does not compile, is not cached: it
// fails here each time, with the guard's reason.
func (c *dbConn) prepare(ctx context.Context, query string) (preparedStmt, error) {
	key := string(rune('0'+c.guard.mode)) + query
	if p, ok := c.prepared.get(key); ok {
		return p, nil
	}
	c.guard.reset()
	st, err := c.conn.PrepareContext(ctx, query)
	if err != nil {
		return preparedStmt{}, err
	}
	p := preparedStmt{stmt: st, dml: c.guard.dml, ddl: c.guard.ddl}
	c.prepared.put(key, p)
	return p, nil
}

// close closes the cached statements, then the connection.
func (c *dbConn) close() error {
	c.prepared.clear()
	return c.conn.Close()
}

// columnCount prepares the first statement of query on c without running it
// and returns its number of result columns.
func (c *dbConn) columnCount(query string) (int, error) {
	var n int
	err := c.conn.Raw(func(dc any) error {
		ci, ok := dc.(interface {
			ColumnInfo(string) ([]sqlite.ColumnInfo, error)
		})
		if !ok {
			return fmt.Errorf("driver connection %T cannot describe columns", dc)
		}
		info, err := ci.ColumnInfo(query)
		n = len(info)
		return err
	})
	return n, err
}

// internal runs one of raftlite's own statements on c, whatever the guard's
// mode is.
func (c *dbConn) internal(ctx context.Context, query string, args ...any) error {
	mode := c.guard.mode
	c.guard.mode = modeInternal
	defer func() { c.guard.mode = mode }()
	if !cacheable(query) {
		_, err := c.conn.ExecContext(ctx, query, args...)
		return err
	}
	p, err := c.prepare(ctx, query)
	if err != nil {
		return err
	}
	_, err = p.stmt.ExecContext(ctx, args...)
	return err
}
