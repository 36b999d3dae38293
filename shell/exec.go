package shell

import (
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

// runStatement sends one SQL statement and prints its result. Plain reads
// go to /db/query at the session's consistency level; everything else to
// /db/request, which runs writes through the Raft log in the client's
// exactly-once session (a retried write is applied once) and serves reads
// at the level.
func (s *session) runStatement(ctx context.Context, st statement) error {
	ctx, cancel := s.interruptible(ctx)
	defer cancel()
	c := s.c.With(client.WithLevel(s.level))
	if s.timer {
		c = c.With(client.WithTimings())
	}
	stmt := client.SQL(st.SQL)
	start := time.Now()
	var resp *client.Response
	var err error
	if isPlainRead(st.SQL) {
		resp, err = c.Query(ctx, stmt)
		if err == nil && len(resp.Results) == 1 && strings.Contains(resp.Results[0].Error, refusedByQuery) {
			resp, err = c.Request(ctx, stmt)
		}
	} else {
		resp, err = c.Request(ctx, stmt)
	}
	elapsed := time.Since(start)
	s.checkFailover()
	if err != nil {
		return err
	}
	if resp.Deduplicated {
		s.note("the write was retried after a failure; the cluster applied it once")
	}
	if len(resp.Results) == 0 {
		return errors.New("the server returned no result")
	}
	res := resp.Results[0]
	if res.Error != "" {
		return errors.New(res.Error)
	}
	if res.IsQuery() {
		if err := render(s.out, resultSet{columns: res.Columns, rows: res.Values}, s.renderOptions()); err != nil {
			return err
		}
		if s.feedback && s.mode == modeTable {
			fmt.Fprintf(s.out, "(%s)\n", plural(len(res.Values), "row"))
		}
	} else if s.feedback && changesRows(st.SQL) {
		msg := plural(int(res.RowsAffected), "row") + " affected"
		if res.LastInsertID > 0 && res.RowsAffected > 0 && firstWordIs(st.SQL, "INSERT", "REPLACE") {
			msg += fmt.Sprintf(", last insert id %d", res.LastInsertID)
		}
		fmt.Fprintln(s.out, msg)
	}
	if s.timer {
		fmt.Fprintf(s.out, "Run Time: %s (server %s)\n", millis(elapsed), millis(resp.Time))
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
