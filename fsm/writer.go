package fsm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// schema creates raftlite's internal tables. They live in the replicated
// database, so they travel in snapshots and change only in apply
// transactions, in step with the data. Every statement is idempotent: Open
// runs them on every start and after every restore, which is also how a
// database from an older version gains tables added later (such as
// _raftlite_sessions, see sessionSchema). Columns added later are added by
// migrations (createInternalTables), the same way in new databases as in
// old ones, so that the schema text is alike on every replica.
var schema = append([]string{
	`CREATE TABLE IF NOT EXISTS _raftlite_meta (key TEXT PRIMARY KEY, value)`,
	`CREATE TABLE IF NOT EXISTS _raftlite_nodes (id TEXT PRIMARY KEY, api_addr TEXT NOT NULL)`,
	`INSERT OR IGNORE INTO _raftlite_meta (key, value) VALUES ('applied_index', 0)`,
}, append(append(sessionSchema, chunkSchema...), watchSchema...)...)

// writer is the write connection with the statements the apply path runs
// for itself, prepared once. Its guard is in modeInternal except while a
// client statement runs.
type writer struct {
	*dbConn
	begin, commit, rollback                *sql.Stmt
	saveEntry, releaseEntry, rollbackEntry *sql.Stmt
	saveStmt, releaseStmt, rollbackStmt    *sql.Stmt
	resetRowid, setApplied                 *sql.Stmt
	setVacuumPending                       *sql.Stmt
	setNode, removeNode                    *sql.Stmt
	sess                                   sessionStmts
	chunks                                 chunkStmts
	watch                                  watchStmts
	// cap records client statements' row changes (see watch.go).
	cap capture
}

// newWriter prepares the apply path's statements on c and, with capture,
// installs the change capture hook.
func newWriter(ctx context.Context, c *dbConn, capture bool) (*writer, error) {
	if err := ensureSchema(ctx, c); err != nil {
		return nil, err
	}
	// A temporary table is per connection and outside the database file;
	// inserting rowid 0 into it is the only way SQL offers to set
	// last_insert_rowid() (see execute).
	if err := c.internal(ctx, `CREATE TEMP TABLE IF NOT EXISTS _raftlite_rowid (x)`); err != nil {
		return nil, fmt.Errorf("create rowid table: %w", err)
	}
	w := &writer{dbConn: c}
	w.cap.on = capture
	if err := w.cap.register(ctx, c.conn); err != nil {
		return nil, fmt.Errorf("change capture: %w", err)
	}
	stmts := []struct {
		dst   **sql.Stmt
		query string
	}{
		{&w.begin, "BEGIN IMMEDIATE"},
		{&w.commit, "COMMIT"},
		{&w.rollback, "ROLLBACK"},
		{&w.saveEntry, "SAVEPOINT raftlite_entry"},
		{&w.releaseEntry, "RELEASE raftlite_entry"},
		{&w.rollbackEntry, "ROLLBACK TO raftlite_entry"},
		{&w.saveStmt, "SAVEPOINT raftlite_stmt"},
		{&w.releaseStmt, "RELEASE raftlite_stmt"},
		{&w.rollbackStmt, "ROLLBACK TO raftlite_stmt"},
		{&w.resetRowid, "INSERT OR REPLACE INTO temp._raftlite_rowid (rowid, x) VALUES (0, NULL)"},
		{&w.setApplied, "UPDATE _raftlite_meta SET value = ? WHERE key = 'applied_index'"},
		{&w.setVacuumPending, "INSERT OR REPLACE INTO _raftlite_meta (key, value) VALUES ('" + vacuumPendingKey + "', 1)"},
		{&w.setNode, "INSERT OR REPLACE INTO _raftlite_nodes (id, api_addr) VALUES (?, ?)"},
		{&w.removeNode, "DELETE FROM _raftlite_nodes WHERE id = ?"},
	}
	for i, dst := range w.sess.list() {
		stmts = append(stmts, struct {
			dst   **sql.Stmt
			query string
		}{dst, sessionQueries[i]})
	}
	for i, dst := range w.chunks.list() {
		stmts = append(stmts, struct {
			dst   **sql.Stmt
			query string
		}{dst, chunkQueries[i]})
	}
	for i, dst := range w.watch.list() {
		stmts = append(stmts, struct {
			dst   **sql.Stmt
			query string
		}{dst, watchQueries[i]})
	}
	for _, s := range stmts {
		st, err := c.conn.PrepareContext(ctx, s.query)
		if err != nil {
			w.closeStmts()
			return nil, fmt.Errorf("prepare %q: %w", s.query, err)
		}
		*s.dst = st
	}
	return w, nil
}

func ensureSchema(ctx context.Context, c *dbConn) (err error) {
	if err := c.internal(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("create internal tables: %w", err)
	}
	defer func() {
		if err != nil {
			c.internal(ctx, "ROLLBACK")
		}
	}()
	// The write connection's guard is in modeInternal here.
	if err := createInternalTables(ctx, c.conn); err != nil {
		return err
	}
	if err := c.internal(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("create internal tables: %w", err)
	}
	return nil
}

// sqlExecQueryer is what the schema needs of a connection or transaction.
type sqlExecQueryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// createInternalTables runs schema and then the migrations of tables that
// gained columns, inside the caller's transaction.
func createInternalTables(ctx context.Context, db sqlExecQueryer) error {
	for _, q := range schema {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create internal tables: %w", err)
		}
	}
	if err := migrateSessionTable(ctx, db); err != nil {
		return fmt.Errorf("create internal tables: %w", err)
	}
	return nil
}

// appliedIndex reads the stored applied index.
func (w *writer) appliedIndex(ctx context.Context) (uint64, error) {
	return queryAppliedIndex(ctx, w.conn)
}

type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func queryAppliedIndex(ctx context.Context, q rowQueryer) (uint64, error) {
	var idx int64
	err := q.QueryRowContext(ctx, "SELECT value FROM _raftlite_meta WHERE key = 'applied_index'").Scan(&idx)
	if err != nil {
		return 0, fmt.Errorf("read applied index: %w", err)
	}
	if idx < 0 {
		return 0, fmt.Errorf("read applied index: negative value %d", idx)
	}
	return uint64(idx), nil
}

// loadNodes reads _raftlite_nodes.
func (w *writer) loadNodes(ctx context.Context) (map[string]NodeMeta, error) {
	rows, err := w.conn.QueryContext(ctx, "SELECT id, api_addr FROM _raftlite_nodes")
	if err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	defer rows.Close()
	nodes := make(map[string]NodeMeta)
	for rows.Next() {
		var n NodeMeta
		if err := rows.Scan(&n.ID, &n.APIAddr); err != nil {
			return nil, fmt.Errorf("read nodes: %w", err)
		}
		nodes[n.ID] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read nodes: %w", err)
	}
	return nodes, nil
}

// transactionGone reports whether err says there was no transaction to end.
func transactionGone(err error) bool {
	return err != nil && errorText(err) == "cannot rollback - no transaction is active"
}

// close closes the statements and the connection.
func (w *writer) close() error {
	return errors.Join(w.closeStmts(), w.dbConn.close())
}

func (w *writer) closeStmts() error {
	var errs []error
	for _, dst := range w.watch.list() {
		if *dst != nil {
			errs = append(errs, (*dst).Close())
		}
	}
	for _, st := range []*sql.Stmt{w.begin, w.commit, w.rollback, w.saveEntry, w.releaseEntry,
		w.rollbackEntry, w.saveStmt, w.releaseStmt, w.rollbackStmt, w.resetRowid, w.setApplied, w.setVacuumPending,
		w.setNode, w.removeNode, w.sess.get, w.sess.put, w.sess.touch, w.sess.remove, w.sess.sweep,
		w.sess.addMeta, w.chunks.dropOthers, w.chunks.put, w.chunks.parts, w.chunks.drop} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}
