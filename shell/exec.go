package shell

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/raftlite/raftlite/client"
)

// refusedByQuery is the server's answer to a write sent to /db/query.
const refusedByQuery = "attempt to change database via query operation"

// shownError is an error the shell has already reported to the user;
// whoever receives it only stops.
type shownError struct{ err error }

func (e *shownError) Error() string { return e.err.Error() }
func (e *shownError) Unwrap() error { return e.err }

// runBatch sends statements as one request and prints each one's result.
// Plain reads alone go to /db/query at the session's consistency level;
// anything else to /db/request, which runs writes through the Raft log in
// the client's exactly-once session (a retried write is applied once) and
// serves reads at the level. Without transactional every statement stands
// alone, so each failing one is reported and the others' results shown;
// with it (COMMIT) the first failure means nothing was applied. The
// errors come back as a *shownError.
func (s *session) runBatch(ctx context.Context, batch []heldStatement, transactional bool) error {
	if len(batch) == 0 {
		return nil
	}
	ctx, cancel := s.interruptible(ctx)
	defer cancel()
	c := s.c.With(client.WithLevel(s.level))
	if s.timer {
		c = c.With(client.WithTimings())
	}
	if transactional {
		c = c.With(client.WithTransaction())
	}
	stmts := make([]client.Statement, len(batch))
	reads := !transactional
	for i, h := range batch {
		stmts[i] = client.SQL(h.SQL)
		reads = reads && isPlainRead(h.SQL)
	}
	start := time.Now()
	var resp *client.Response
	var err error
	if reads {
		resp, err = c.Query(ctx, stmts...)
		if err == nil && refusedAsWrite(resp) {
			resp, err = c.Request(ctx, stmts...)
		}
	} else {
		s.forgetSchema() // the statements may change it
		resp, err = c.Request(ctx, stmts...)
	}
	elapsed := time.Since(start)
	s.checkFailover()
	first := batch[0]
	if err == nil && len(resp.Results) == 0 {
		err = errors.New("the server returned no result")
	}
	if err != nil {
		return s.shown(first.in.at(first.line, err))
	}
	if resp.Deduplicated {
		s.note("the write was retried after a failure; the cluster applied it once")
	}
	results := resp.Results[:min(len(resp.Results), len(batch))]
	if transactional {
		for i, res := range results {
			if res.Error != "" {
				h := batch[i]
				return s.shown(h.in.at(h.line, fmt.Errorf("the transaction was rolled back, nothing was applied: %s", res.Error)))
			}
		}
	}
	var failed error
	for i, res := range results {
		h := batch[i]
		if res.Error != "" {
			failed = s.shown(h.in.at(h.line, errors.New(res.Error)))
			continue
		}
		if err := s.printResult(h.SQL, &res); err != nil {
			return err
		}
	}
	if s.timer {
		fmt.Fprintf(s.out, "Run Time: %s (server %s)\n", millis(elapsed), millis(resp.Time))
	}
	return failed
}

// shown reports err and returns it as a *shownError.
func (s *session) shown(err error) error {
	s.printError(err)
	return &shownError{err}
}

// refusedAsWrite reports whether /db/query refused a statement of resp as
// a write.
func refusedAsWrite(resp *client.Response) bool {
	for _, r := range resp.Results {
		if strings.Contains(r.Error, refusedByQuery) {
			return true
		}
	}
	return false
}

// printResult prints the rows of a query (through the pager when long), or
// with feedback on the row count of a write.
func (s *session) printResult(sql string, res *client.Result) error {
	if res.IsQuery() {
		var text bytes.Buffer
		if err := render(&text, resultSet{columns: res.Columns, rows: res.Values}, s.renderOptions()); err != nil {
			return err
		}
		if s.feedback && s.mode == modeTable {
			fmt.Fprintf(&text, "(%s)\n", plural(len(res.Values), "row"))
		}
		return s.writeResult(text.Bytes())
	} else if s.feedback && changesRows(sql) {
		msg := plural(int(res.RowsAffected), "row") + " affected"
		if res.LastInsertID > 0 && res.RowsAffected > 0 && firstWordIs(sql, "INSERT", "REPLACE") {
			msg += fmt.Sprintf(", last insert id %d", res.LastInsertID)
		}
		fmt.Fprintln(s.out, msg)
	}
	return nil
}

// changesRows reports whether sql is a statement whose row count is worth
// showing: INSERT, UPDATE, DELETE, REPLACE (or those after a WITH).
func changesRows(sql string) bool {
	return firstWordIs(sql, "INSERT", "UPDATE", "DELETE", "REPLACE", "WITH")
}

func firstWordIs(sql string, words ...string) bool {
	l, toks := tokens(sql)
	if len(toks) == 0 {
		return false
	}
	for _, w := range words {
		if l.is(toks[0], w) {
			return true
		}
	}
	return false
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func millis(d time.Duration) string {
	return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond))
}

// describeError turns an error of the client into one line a person can act
// on, without the client's internals.
func describeError(err error) string {
	var le *lineError
	if errors.As(err, &le) {
		prefix := strings.TrimSuffix(le.Error(), le.err.Error())
		return prefix + describeError(le.err)
	}
	var ce *cmdError
	if errors.As(err, &ce) {
		return ce.what + ": " + describeError(ce.err)
	}
	prefix := ""
	if errors.Is(err, client.ErrUnknownOutcome) {
		prefix = "the outcome is unknown (the write may or may not have been applied): "
	}
	var apiErr *client.APIError
	var urlErr *url.Error
	var opErr *net.OpError
	switch {
	case errors.Is(err, context.Canceled):
		return prefix + "interrupted"
	case errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &apiErr):
		return prefix + "timed out"
	case errors.As(err, &apiErr):
		msg := apiErr.Message
		if msg == "" {
			msg = "request failed"
		}
		return fmt.Sprintf("%s%s (HTTP %d from %s)", prefix, msg, apiErr.Status, apiErr.Node)
	case errors.As(err, &opErr):
		return prefix + "no node answered: " + opErr.Error()
	case errors.As(err, &urlErr):
		return prefix + "no node answered: " + urlErr.Err.Error()
	}
	return prefix + strings.TrimPrefix(err.Error(), "raftlite client: ")
}

// cmdError is the failure of a step of a dot-command, e.g. "dump".
type cmdError struct {
	what string
	err  error
}

func (e *cmdError) Error() string { return e.what + ": " + e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }
