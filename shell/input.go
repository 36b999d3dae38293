package shell

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/raftlite/raftlite/internal/sqlsplit"
)

// input is a source of lines being run: standard input, -c, a .read file
// or the terminal. Each has its own unfinished statement.
type input struct {
	name      string // file name for messages ("" for stdin, -c, terminal)
	showLines bool   // put line numbers in error messages
	line      int    // lines read so far
	pending   string // text of the unfinished statement
	startLine int    // line where pending begins
}

// lineError is an error at a line of a script.
type lineError struct {
	in   *input
	line int
	err  error
}

func (e *lineError) Error() string {
	if e.in.name != "" {
		return fmt.Sprintf("%s:%d: %v", e.in.name, e.line, e.err)
	}
	return fmt.Sprintf("line %d: %v", e.line, e.err)
}

func (e *lineError) Unwrap() error { return e.err }

// at attaches a line number to err when the input shows them.
func (in *input) at(line int, err error) error {
	var le *lineError
	if err == nil || !in.showLines || errors.As(err, &le) {
		return err
	}
	return &lineError{in: in, line: line, err: err}
}

// runLine feeds one line of input: a dot-command when no statement is
// pending, otherwise SQL, whose complete statements run at once, as one
// request (runStatements). After an error the rest of the line, and any
// unfinished statement, are dropped.
func (s *session) runLine(ctx context.Context, in *input, line string) error {
	in.line++
	if in.pending == "" {
		if t := strings.TrimSpace(line); strings.HasPrefix(t, ".") {
			return in.at(in.line, s.runDot(ctx, t))
		}
		in.startLine = in.line
	}
	in.pending += line + "\n"
	stmts, rest, kind := sqlsplit.Split(in.pending)
	base := in.startLine
	if kind == sqlsplit.Empty {
		in.pending = ""
	} else {
		in.startLine += strings.Count(in.pending[:len(in.pending)-len(rest)], "\n")
		in.pending = rest
	}
	if err := s.runStatements(ctx, in, base, stmts); err != nil {
		in.pending = ""
		return err
	}
	return nil
}

// runStatements runs complete statements from in, the first starting at
// line base. Consecutive statements go as one request; BEGIN, COMMIT and
// ROLLBACK drive the shell's transaction, which holds the statements in
// between (tx.go). It stops at the first error.
func (s *session) runStatements(ctx context.Context, in *input, base int, stmts []statement) error {
	var batch []heldStatement
	for _, st := range stmts {
		h := heldStatement{statement: st, in: in, line: base + st.Line - 1}
		kind := classifyTx(st.SQL)
		switch {
		case kind != txNone:
			if err := s.runBatch(ctx, batch, false); err != nil {
				return err
			}
			batch = nil
			if err := s.control(ctx, kind, h); err != nil {
				return err
			}
		case s.tx != nil && isPlainRead(st.SQL):
			return in.at(h.line, errReadInTransaction)
		case s.tx != nil:
			s.tx.held = append(s.tx.held, h)
		default:
			batch = append(batch, h)
		}
	}
	return s.runBatch(ctx, batch, false)
}

// finish runs what is left of in at its end: a last statement without its
// ';' runs; input that ends inside a quote, comment or trigger body is an
// error.
func (s *session) finish(ctx context.Context, in *input) error {
	text := in.pending
	in.pending = ""
	stmts, _, kind := sqlsplit.Split(text + ";")
	if kind == sqlsplit.Open {
		return in.at(in.startLine, errors.New("incomplete statement at end of input (unclosed quote, comment or trigger body)"))
	}
	return s.runStatements(ctx, in, in.startLine, stmts)
}

// runScript runs every line of r and returns the exit status: 1 at the
// first error.
func (s *session) runScript(ctx context.Context, r io.Reader, in *input) int {
	if err := s.runReader(ctx, r, in); err != nil {
		s.printError(err)
		return 1
	}
	return s.exitCode
}

// runReader runs the lines of r until its end, the first error or .exit.
func (s *session) runReader(ctx context.Context, r io.Reader, in *input) error {
	br := bufio.NewReader(r)
	for !s.quit {
		line, err := br.ReadString('\n')
		if line != "" || err == nil {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			if rerr := s.runLine(ctx, in, line); rerr != nil {
				return rerr
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading input: %w", err)
		}
	}
	if s.quit {
		return nil
	}
	return s.finish(ctx, in)
}
