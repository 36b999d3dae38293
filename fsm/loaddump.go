package fsm

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"strings"
)

// DumpError is BuildFromDump's error for a dump that cannot be loaded: a
// statement that fails or is refused, or text that is not SQL. It matches
// ErrInvalidLoad.
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

// Is makes a DumpError match ErrInvalidLoad.
func (e *DumpError) Is(target error) bool { return target == ErrInvalidLoad }

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
// (BEGIN [TRANSACTION], COMMIT, END), as written by sqlite3's .dump and by
// /db/backup?fmt=sql, is skipped; PRAGMA foreign_keys is accepted (and has
// no effect inside the transaction). Any failure is a *DumpError naming
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
	defer c.conn.Close()
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
		if isTxControl(head) {
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

// isTxControl reports whether a statement starting with the words head is
// BEGIN, COMMIT or END (of a transaction).
func isTxControl(head []string) bool {
	if len(head) == 0 {
		return false
	}
	switch head[0] {
	case "BEGIN", "COMMIT", "END":
		return true
	}
	return false
}

// isCreateTrigger reports whether the leading words of a statement make it
// a CREATE [TEMP|TEMPORARY] TRIGGER.
func isCreateTrigger(head []string) bool {
	if len(head) < 2 || head[0] != "CREATE" {
		return false
	}
	h := head[1:]
	if h[0] == "TEMP" || h[0] == "TEMPORARY" {
		h = h[1:]
	}
	return len(h) > 0 && h[0] == "TRIGGER"
}

func isDumpWordByte(c byte) bool {
	return c == '_' || c == '$' || c >= 0x80 ||
		('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9')
}

// errDumpRead marks a read error of the dump itself, as opposed to a
// statement's.
var errDumpRead = errors.New("reading the dump")

// splitDump reads SQL text from r and calls fn with each complete
// statement (without its ';'), the line it starts on and its first words
// in upper case. A statement ends at a ';' outside quotes ('...', "...",
// `...`, [...]) and comments (-- and /* */), except inside the body of a
// CREATE TRIGGER, which ends only at the ';' after "; END". Comments are
// left out of the text handed to fn; statements holding nothing but
// comments are dropped. A last statement without its ';' is run as if it
// had one; text ending inside a quote, a comment or a trigger body is an
// error.
func splitDump(r io.Reader, fn func(stmt string, line int, head []string) error) error {
	br := &nulReader{r: bufio.NewReaderSize(r, 64<<10)}
	var (
		sb       strings.Builder // the current statement
		word     strings.Builder // the word being read
		head     []string
		tokens   int // significant tokens in the current statement
		line     = 1
		stmtLine int
		trigger  bool
		// afterSemi / afterEnd track "; END ;", which closes a trigger body.
		afterSemi, afterEnd bool
	)
	startToken := func() {
		if tokens == 0 {
			stmtLine = line
		}
		tokens++
	}
	// token notes a significant token other than a word or ';'.
	token := func() {
		startToken()
		if trigger {
			afterSemi, afterEnd = false, false
		}
	}
	endWord := func() {
		if word.Len() == 0 {
			return
		}
		w := strings.ToUpper(word.String())
		word.Reset()
		if len(head) < 5 {
			head = append(head, w)
			trigger = trigger || isCreateTrigger(head)
		}
		if trigger {
			afterEnd = afterSemi && w == "END"
			afterSemi = false
		}
	}
	emit := func() error {
		text := strings.TrimSpace(sb.String())
		err := fn(text, stmtLine, head)
		sb.Reset()
		head, tokens, trigger, afterSemi, afterEnd = nil, 0, false, false, false
		return err
	}
	readErr := func(err error) error {
		if errors.Is(err, errNUL) {
			return &DumpError{Line: line, Msg: "a NUL byte: this is not SQL text"}
		}
		return &DumpError{Line: line, Msg: fmt.Sprintf("%v: %v", errDumpRead, err)}
	}
	for {
		c, err := br.ReadByte()
		if err == io.EOF {
			break
		}
		if err != nil {
			return readErr(err)
		}
		if c == '\n' {
			line++
		}
		if isDumpWordByte(c) {
			if word.Len() == 0 {
				startToken()
			}
			word.WriteByte(c)
			sb.WriteByte(c)
			continue
		}
		endWord()
		switch c {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			sb.WriteByte(c)
		case '-', '/':
			next, err := br.Peek(1)
			switch {
			case err == nil && c == '-' && next[0] == '-':
				// A line comment: skip to the end of the line.
				for {
					b, err := br.ReadByte()
					if err == io.EOF {
						break
					}
					if err != nil {
						return readErr(err)
					}
					if b == '\n' {
						line++
						break
					}
				}
				sb.WriteByte('\n')
			case err == nil && c == '/' && next[0] == '*':
				br.ReadByte()
				startLine := line
				prev := byte(0)
				for {
					b, err := br.ReadByte()
					if err == io.EOF {
						return &DumpError{Line: startLine, Msg: "unterminated /* comment"}
					}
					if err != nil {
						return readErr(err)
					}
					if b == '\n' {
						line++
					}
					if prev == '*' && b == '/' {
						break
					}
					prev = b
				}
				sb.WriteByte(' ')
			default:
				token()
				sb.WriteByte(c)
			}
		case '\'', '"', '`', '[':
			token()
			closer := c
			if c == '[' {
				closer = ']'
			}
			startLine := line
			sb.WriteByte(c)
			for {
				b, err := br.ReadByte()
				if err == io.EOF {
					return &DumpError{Line: startLine, Msg: fmt.Sprintf("unterminated %c quote", c)}
				}
				if err != nil {
					return readErr(err)
				}
				if b == '\n' {
					line++
				}
				sb.WriteByte(b)
				if b != closer {
					continue
				}
				// A doubled quote character stands for itself; brackets
				// have no escape.
				if next, err := br.Peek(1); closer != ']' && err == nil && next[0] == closer {
					br.ReadByte()
					sb.WriteByte(closer)
					continue
				}
				break
			}
		case ';':
			if trigger && !afterEnd {
				afterSemi = true
				tokens++
				sb.WriteByte(c)
				continue
			}
			if tokens > 0 {
				if err := emit(); err != nil {
					return err
				}
			} else {
				sb.Reset()
			}
		default:
			token()
			sb.WriteByte(c)
		}
	}
	endWord()
	if tokens == 0 {
		return nil
	}
	if trigger {
		return &DumpError{Line: stmtLine, Msg: "incomplete CREATE TRIGGER at the end of the dump"}
	}
	return emit()
}

// errNUL is nulReader's error for a NUL byte, which SQL text never holds
// (SQLite would take it for the end of the statement).
var errNUL = errors.New("NUL byte")

// nulReader is a bufio.Reader that fails on a NUL byte.
type nulReader struct{ r *bufio.Reader }

func (n *nulReader) ReadByte() (byte, error) {
	c, err := n.r.ReadByte()
	if err == nil && c == 0 {
		return 0, errNUL
	}
	return c, err
}

func (n *nulReader) Peek(k int) ([]byte, error) { return n.r.Peek(k) }
