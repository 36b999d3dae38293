package fsm

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/sqlsplit"
)

// DumpError is BuildFromDump's error for a dump that cannot be loaded: a
// statement that fails or is refused, or text that is not SQL. It matches
// api.ErrInvalidLoad.
type DumpError struct {
	Line int    // input line (from 1) where the statement starts
	Msg  string // what went wrong
}

func (e *DumpError) Error() string {
	if e.Line == 0 {
		return "invalid SQL dump: " + e.Msg
	}
	return fmt.Sprintf("invalid SQL dump: line %d: %s", e.Line, e.Msg)
}

// Unwrap makes a DumpError an api.ErrInvalidLoad (a 400 bad_request).
func (e *DumpError) Unwrap() error { return api.ErrInvalidLoad }

// BuildFromDump creates at path (a new or empty scratch file the caller
// owns) a fresh SQLite database holding what the SQL dump read from r
// describes. The result can be loaded like an uploaded SQLite file
// (PrepareLoad, then a user snapshot): loading a dump replaces the
// database, it does not add to it.
//
// The dump is read and run one statement at a time, so memory is bounded
// by the largest statement, not by the dump. Statements are cut at ';'
// outside quotes, comments and CREATE TRIGGER bodies. They run in one
// transaction under the guard that client writes get, so what a write may
// not do (ATTACH, load_extension, connection PRAGMAs, writes to raftlite's
// tables, ...) a dump may not either. The dump's own transaction control
// (BEGIN [TRANSACTION], COMMIT, END) and PRAGMA foreign_keys, as written by
// sqlite3's .dump and by /db/backup?fmt=sql, are skipped (foreign keys are
// the nodes' -fk setting). Any failure is a *DumpError naming
// the statement's line; the file at path is then to be thrown away.
func BuildFromDump(ctx context.Context, r io.Reader, path string) error {
	db, err := sql.Open("sqlite", scratchDSN(path))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	c, err := newDBConn(ctx, db, []string{"PRAGMA journal_mode=DELETE"}, modeUser)
	if err != nil {
		return err
	}
	defer c.close()
	// Setting user_version writes the database header, so that even a dump
	// of an empty database makes a database file, not an empty one.
	if err := c.internal(ctx, "BEGIN"); err != nil {
		return err
	}
	if err := c.internal(ctx, "PRAGMA user_version=0"); err != nil {
		c.internal(context.Background(), "ROLLBACK")
		return err
	}
	n := 0
	err = splitDump(r, func(stmt string, line int, head []string) error {
		n++
		if IsDumpBoilerplate(head) {
			return nil
		}
		c.guard.reset()
		if _, err := c.conn.ExecContext(ctx, stmt); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return &DumpError{Line: line, Msg: c.guard.errorText(err)}
		}
		return nil
	})
	if err == nil && n == 0 {
		err = &DumpError{Msg: "no SQL statements"}
	}
	if err != nil {
		c.internal(context.Background(), "ROLLBACK")
		return err
	}
	return c.internal(ctx, "COMMIT")
}

// IsDumpBoilerplate reports whether a statement starting with the words
// head (upper case, as sqlsplit gives them) is one a dump wraps its content
// in, which loading it skips: BEGIN, COMMIT or END (of a transaction), or
// PRAGMA foreign_keys.
func IsDumpBoilerplate(head []string) bool {
	if len(head) == 0 {
		return false
	}
	switch head[0] {
	case "BEGIN", "COMMIT", "END":
		return true
	case "PRAGMA":
		return len(head) > 1 && strings.HasPrefix(head[1], "FOREIGN_KEYS")
	}
	return false
}

// errDumpRead marks a read error of the dump itself, as opposed to a
// statement's.
var errDumpRead = errors.New("reading the dump")

// splitDump reads SQL text from r and calls fn with each complete
// statement (without its ';'), the line it starts on and its first words
// in upper case. Statements are cut by sqlsplit; comments are left out of
// the text handed to fn, and statements holding nothing but comments are
// dropped. A last statement without its ';' is run as if it had one; text
// ending inside a quote, a comment or a trigger body is an error.
func splitDump(r io.Reader, fn func(stmt string, line int, head []string) error) error {
	sc := sqlsplit.NewScanner(&nulReader{r: r})
	for {
		st, err := sc.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if errors.Is(err, errNUL) {
				return &DumpError{Line: sc.Line(), Msg: "a NUL byte: this is not SQL text"}
			}
			return &DumpError{Line: sc.Line(), Msg: fmt.Sprintf("%v: %v", errDumpRead, err)}
		}
		if err := fn(st.SQL, st.Line, st.Head); err != nil {
			return err
		}
	}
	rest := sc.Rest()
	switch {
	case rest.State == sqlsplit.Unterminated:
		return fn(rest.Stmt.SQL, rest.Stmt.Line, rest.Stmt.Head)
	case rest.State != sqlsplit.Open:
		return nil
	case rest.Quote != 0:
		return &DumpError{Line: rest.OpenLine, Msg: fmt.Sprintf("unterminated %c quote", rest.Quote)}
	case rest.Comment:
		return &DumpError{Line: rest.OpenLine, Msg: "unterminated /* comment"}
	}
	return &DumpError{Line: rest.Stmt.Line, Msg: "incomplete CREATE TRIGGER at the end of the dump"}
}

// errNUL is nulReader's error for a NUL byte, which SQL text never holds
// (SQLite would take it for the end of the statement).
var errNUL = errors.New("NUL byte")

// nulReader is a reader that fails at a NUL byte, after handing over the
// bytes before it.
type nulReader struct {
	r   io.Reader
	err error
}

func (n *nulReader) Read(p []byte) (int, error) {
	if n.err != nil {
		return 0, n.err
	}
	k, err := n.r.Read(p)
	if i := bytes.IndexByte(p[:k], 0); i >= 0 {
		n.err = errNUL
		return i, errNUL
	}
	return k, err
}
