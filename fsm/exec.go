package fsm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
)

// stmtInfo is what preparing a SQL text tells about it that depends only on
// the kind of statement, never on the data or (for a text that prepares at
// all) the schema, and so can be cached by SQL text.
type stmtInfo struct {
	// rows: the (first) statement returns rows.
	rows bool
	// silent: the statement presents no action to the authorizer (VACUUM
	// is one), so the guard cannot vouch that it only reads.
	silent bool
	// text is the SQL to run, hide whether the guard holds it to the
	// views of the schema, and refused why it may not run (see userSQL).
	text    string
	hide    bool
	refused error
}

// userStatement returns what preparing sql told, from the cache. c's guard
// is in the statement's mode and is left held to the views or not, as the
// statement needs.
func (f *FSM) userStatement(c *dbConn, sql string) (stmtInfo, error) {
	info, ok := f.stmtCache.get(sql)
	if !ok {
		info.text, info.hide, info.refused = userSQL(sql)
		if info.refused == nil {
			c.guard.hideSchema = info.hide
			c.guard.reset()
			n, err := c.columnCount(info.text)
			if err != nil {
				return stmtInfo{}, err
			}
			info.rows, info.silent = n > 0, c.guard.actions == 0
		}
		f.stmtCache.put(sql, info)
	}
	c.guard.hideSchema = info.hide
	return info, info.refused
}

// runStatement runs one client statement on c under the guard mode the
// caller has set, and returns its result. An error is the statement's
// failure, for the caller to classify; the guard still holds the reason of a
// refusal.
//
// The result's shape follows rqlite: a statement that returns rows (column
// count > 0: SELECT, PRAGMA, ... RETURNING) gets the query shape, anything
// else the execute shape.
func (f *FSM) runStatement(ctx context.Context, c *dbConn, st *api.Statement) (api.Result, error) {
	start := time.Now()
	defer func() { c.guard.hideSchema = false }()
	info, err := f.userStatement(c, st.SQL)
	if err != nil {
		return api.Result{}, err
	}
	if info.silent && c.guard.mode == modeReadOnly {
		c.guard.denied = errReadOnly
		return api.Result{}, errors.New(errReadOnly)
	}
	// Forget what preparing for the column count told the guard; running
	// the statement prepares it again.
	c.guard.reset()

	args := bindArgs(st.Params)
	var res api.Result
	switch {
	case cacheable(info.text):
		res, err = c.runPrepared(ctx, info.text, args, info.rows)
	case info.rows:
		res, err = scanRows(c.conn.QueryContext(ctx, info.text, args...))
	default:
		res, err = c.execResult(c.conn.ExecContext(ctx, info.text, args...))
	}
	if err != nil {
		return api.Result{}, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// bindArgs converts parameters to database/sql arguments: positional ones
// bind to ? and ?NNN, named ones (sql.Named) to :name, @name and $name.
func bindArgs(params []api.Param) []any {
	if len(params) == 0 {
		return nil
	}
	args := make([]any, len(params))
	for i, p := range params {
		if p.Name != "" {
			args[i] = sql.Named(p.Name, p.Value)
		} else {
			args[i] = p.Value
		}
	}
	return args
}

// runPrepared runs query through c's prepared statements: scanning its rows
// if it returns rows, else in the execute shape.
func (c *dbConn) runPrepared(ctx context.Context, query string, args []any, rows bool) (api.Result, error) {
	p, err := c.prepare(ctx, query)
	if err != nil {
		return api.Result{}, err
	}
	// Running re-prepares the statement if the schema changed since, which
	// shows it to the guard again; otherwise the guard sees nothing, and
	// what it saw when the statement was prepared stands.
	c.guard.reset()
	if rows {
		return scanRows(p.stmt.QueryContext(ctx, args...))
	}
	r, err := p.stmt.ExecContext(ctx, args...)
	if c.guard.actions == 0 {
		c.guard.dml, c.guard.ddl = p.dml, p.ddl
	}
	return c.execResult(r, err)
}

// execResult fills the execute shape from what running a statement that
// returns no rows gave.
//
// SQLite's changes() and last_insert_rowid() are connection state that only
// some statements update: after DDL they still describe an earlier INSERT,
// possibly from another entry, or from before a restart. Reporting them
// as-is would make the result depend on this connection's history, which
// differs between replicas. So rows_affected is reported only for
// INSERT/UPDATE/DELETE (as the guard saw them prepared), and last_insert_id
// only when such a statement changed rows; the apply path resets
// last_insert_rowid at the start of every entry, so the value never leaks
// across entries.
func (c *dbConn) execResult(r sql.Result, err error) (api.Result, error) {
	if err != nil {
		return api.Result{}, err
	}
	var res api.Result
	if c.guard.dml && !c.guard.ddl {
		if res.RowsAffected, err = r.RowsAffected(); err != nil {
			return api.Result{}, err
		}
		if res.RowsAffected > 0 {
			if res.LastInsertID, err = r.LastInsertId(); err != nil {
				return api.Result{}, err
			}
		}
	}
	return res, nil
}

// scanRows reads the rows a statement returned into the query shape, with
// rqlite's types and values (see types_rqlite.go). Types are the declared
// column types in lower case; a column without one takes the type of its
// value in the first row, or "" when there is no row or the value is NULL.
func scanRows(rows *sql.Rows, err error) (api.Result, error) {
	if err != nil {
		return api.Result{}, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return api.Result{}, err
	}
	cts, err := rows.ColumnTypes()
	if err != nil {
		return api.Result{}, err
	}
	res := api.Result{Columns: cols, Types: make([]string, len(cols))}
	if res.Columns == nil {
		res.Columns = []string{}
	}
	declTypes := make([]string, len(cols))
	for i, ct := range cts {
		declTypes[i] = strings.ToLower(ct.DatabaseTypeName())
		res.Types[i] = declTypes[i]
	}
	dest := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return api.Result{}, err
		}
		row := make([]api.Value, len(dest))
		for i, v := range dest {
			if row[i], err = rqliteValue(v, declTypes[i]); err != nil {
				return api.Result{}, fmt.Errorf("column %q: %w", cols[i], err)
			}
		}
		if res.Rows == nil {
			for i, t := range res.Types {
				if t == "" {
					res.Types[i] = valueType(row[i])
				}
			}
		}
		res.Rows = append(res.Rows, row)
	}
	if err := rows.Err(); err != nil {
		return api.Result{}, err
	}
	return res, rows.Close()
}
