package fsm

import (
	"context"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/raftlite/raftlite/api"
)

// acquireReader takes a read connection from the pool. The caller holds mu
// for reading and must hand the connection back with releaseReader.
func (f *FSM) acquireReader(ctx context.Context) (*dbConn, error) {
	if f.closed {
		return nil, ErrClosed
	}
	if f.readers == nil { // a failed restore could not reopen the database
		return nil, fmt.Errorf("fsm halted: %w", f.Err())
	}
	select {
	case c := <-f.readers:
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *FSM) releaseReader(c *dbConn) {
	c.guard.mode = modeReadOnly
	f.readers <- c
}

// Query runs req's statements on this node's copy of the database, in one
// read transaction so that all of them see the same state. It does not go
// through Raft: how fresh the copy must be is the caller's business (see
// WaitApplied). A statement that would write fails with "attempt to change
// database via query operation", as in rqlite, and changes nothing; other
// statement errors are reported in their results. The returned error is
// for failures of the request as a whole, such as ctx ending.
func (f *FSM) Query(ctx context.Context, req *api.Request) ([]api.Result, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, err := f.acquireReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	defer f.releaseReader(c)

	// Several statements read one snapshot, in a transaction; a single
	// statement is one by itself, and skipping BEGIN and ROLLBACK saves a
	// tenth of a point read's CPU.
	if len(req.Statements) > 1 || (len(req.Statements) == 1 && multipleStatements(req.Statements[0].SQL)) {
		if err := c.internal(ctx, "BEGIN"); err != nil {
			return nil, fmt.Errorf("query: begin: %w", err)
		}
		defer func() {
			// A read transaction has nothing to keep; ending it must not
			// depend on ctx, or a canceled query would pin an old
			// snapshot on a pooled connection.
			if err := c.internal(context.Background(), "ROLLBACK"); err != nil && !transactionGone(err) {
				f.logger.Error("end read transaction", "error", err)
			}
		}()
	}

	results := make([]api.Result, 0, len(req.Statements))
	for i := range req.Statements {
		res, err := f.runStatement(ctx, c, &req.Statements[i])
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("query: %w", ctx.Err())
			}
			res = api.Result{Error: c.guard.errorText(err)}
		}
		results = append(results, res)
	}
	return results, nil
}

// AllReadOnly reports whether every statement of req only reads, so that the
// request can be served by Query instead of going through the log. It
// prepares each statement (without running it) on a read connection whose
// guard refuses anything but reads, and caches the verdict per SQL text.
//
// The answer errs on the side of false: a statement that does not prepare
// (a syntax error, an unknown table), one that presents no action at all
// to the authorizer (VACUUM), and a SQL text holding more than one statement
// all count as not read-only, and then go through the log, which reports
// their errors in the execute shape. The error is for failures of the call
// itself, such as ctx ending.
func (f *FSM) AllReadOnly(ctx context.Context, req *api.Request) (bool, error) {
	if len(req.Statements) == 0 {
		return true, nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	var c *dbConn // taken from the pool on the first cache miss
	defer func() {
		if c != nil {
			f.releaseReader(c)
		}
	}()
	for i := range req.Statements {
		sql := req.Statements[i].SQL
		ro, ok := f.roCache.get(sql)
		if !ok {
			if c == nil {
				var err error
				if c, err = f.acquireReader(ctx); err != nil {
					return false, fmt.Errorf("check read-only: %w", err)
				}
			}
			var cacheable bool
			ro, cacheable = readOnlyStatement(c, sql)
			if cacheable {
				f.roCache.put(sql, ro)
			}
		}
		if !ro {
			return false, nil
		}
	}
	return true, nil
}

// readOnlyStatement classifies sql on the read connection c, whose guard is
// in modeReadOnly. cacheable is false when the verdict may change with the
// schema (the statement failed to prepare).
func readOnlyStatement(c *dbConn, sql string) (readOnly, cacheable bool) {
	if multipleStatements(sql) {
		return false, true
	}
	text, hide, err := userSQL(sql)
	if err != nil {
		return false, true
	}
	c.guard.hideSchema = hide
	defer func() { c.guard.hideSchema = false }()
	c.guard.reset()
	if _, err := c.columnCount(text); err != nil {
		return false, sqliteCode(err) == sqlite3.SQLITE_AUTH
	}
	return c.guard.actions > 0, true
}

// multipleStatements reports whether sql holds anything but comments and
// white space after its first semicolon outside literals, identifiers and
// comments. Only the first statement of a text is prepared when classifying
// it, so a text with more must not be judged by its first.
func multipleStatements(sql string) bool {
	seenEnd := false
	for i := 0; i < len(sql); i++ {
		ch := sql[i]
		switch {
		case ch == '\'' || ch == '"' || ch == '`':
			if seenEnd {
				return true
			}
			i = skipQuoted(sql, i, ch)
		case ch == '[':
			if seenEnd {
				return true
			}
			i = skipQuoted(sql, i, ']')
		case ch == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
		case ch == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := i + 2
			for end+1 < len(sql) && (sql[end] != '*' || sql[end+1] != '/') {
				end++
			}
			i = end + 1
		case ch == ';':
			seenEnd = true
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v':
		default:
			if seenEnd {
				return true
			}
		}
	}
	return false
}

// skipQuoted returns the index of the character closing the quoted run that
// starts at i, or the last index if it is unterminated. A doubled closing
// quote inside the run is an escaped quote.
func skipQuoted(s string, i int, closing byte) int {
	for j := i + 1; j < len(s); j++ {
		if s[j] != closing {
			continue
		}
		if closing != ']' && j+1 < len(s) && s[j+1] == closing {
			j++
			continue
		}
		return j
	}
	return len(s) - 1
}
