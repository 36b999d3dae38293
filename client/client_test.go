package client

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

// newTestClient makes a Client with short retry delays for tests.
func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.RetryBackoff == 0 {
		cfg.RetryBackoff = time.Millisecond
	}
	if cfg.MaxRetryBackoff == 0 {
		cfg.MaxRetryBackoff = 5 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func insert(v any) Statement { return SQL("INSERT INTO t(v) VALUES(?)", v) }

// firstN returns a hook that runs f on the first n requests and lets the
// others through.
func firstN(n int64, f func(w http.ResponseWriter, r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
	var count atomic.Int64
	return func(w http.ResponseWriter, r *http.Request) bool {
		if count.Add(1) > n {
			return false
		}
		f(w, r)
		return true
	}
}

var hexID = regexp.MustCompile(`^[0-9a-f]{32}$`)

func TestExecuteCarriesSessionAndTracksIndex(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	ctx := context.Background()

	var resp *Response
	for i := range 3 {
		var err error
		resp, err = c.Execute(ctx, insert(fmt.Sprint("v", i)))
		if err != nil {
			t.Fatalf("Execute %d: %v", i, err)
		}
		if err := resp.Err(); err != nil {
			t.Fatalf("Execute %d: statement error %v", i, err)
		}
	}
	if resp.RaftIndex != 3 || c.LastIndex() != 3 {
		t.Errorf("RaftIndex = %d, LastIndex = %d, want 3", resp.RaftIndex, c.LastIndex())
	}
	if r := resp.Results[0]; r.LastInsertID != 3 || r.RowsAffected != 1 || r.IsQuery() {
		t.Errorf("result = %+v", r)
	}
	calls := fc.callsTo("/db/execute")
	if len(calls) != 3 {
		t.Fatalf("%d calls, want 3", len(calls))
	}
	id := calls[0].query.Get("client_id")
	if !hexID.MatchString(id) || id != c.SessionID() {
		t.Errorf("client_id = %q, SessionID = %q", id, c.SessionID())
	}
	for i, call := range calls {
		q := call.query
		if q.Get("client_id") != id || q.Get("seq") != strconv.Itoa(i+1) {
			t.Errorf("call %d: client_id=%q seq=%q", i, q.Get("client_id"), q.Get("seq"))
		}
		for _, flag := range []string{"raft_index", "blob_array", "timeout"} {
			if !q.Has(flag) {
				t.Errorf("call %d: no %s in %v", i, flag, q)
			}
		}
		if call.method != http.MethodPost {
			t.Errorf("method %s", call.method)
		}
	}
}

func TestRetrySameSeqAfterConnectionReset(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	// The write is committed, then the connection is cut before the answer.
	n.setAfterCommit(firstN(1, func(w http.ResponseWriter, r *http.Request) { resetConn(w) }))
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})

	resp, err := c.Execute(context.Background(), insert("once"))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if !resp.Deduplicated {
		t.Error("the retried write was not answered from the session")
	}
	if rows := fc.rowValues(); len(rows) != 1 {
		t.Errorf("rows = %v, want one", rows)
	}
	if len(resp.Results) != 1 || resp.Results[0].LastInsertID != 1 {
		t.Errorf("results = %+v, want the original execution's", resp.Results)
	}
	calls := fc.callsTo("/db/execute")
	if len(calls) != 2 {
		t.Fatalf("%d calls, want 2", len(calls))
	}
	for _, call := range calls {
		if call.query.Get("seq") != "1" || call.query.Get("client_id") != c.SessionID() {
			t.Errorf("call with client_id=%q seq=%q", call.query.Get("client_id"), call.query.Get("seq"))
		}
	}
	// The session continues.
	if _, err := c.Execute(context.Background(), insert("next")); err != nil {
		t.Fatal(err)
	}
	if last := fc.callsTo("/db/execute")[2].query.Get("seq"); last != "2" {
		t.Errorf("next seq = %s, want 2", last)
	}
}

func TestFailoverWhenFirstNodeIsDown(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("b")
	c := newTestClient(t, Config{Nodes: []string{closedAddr(t), n.srv.URL}})
	ctx := context.Background()

	start := time.Now()
	if _, err := c.Execute(ctx, insert(1)); err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("failover took %v", el)
	}
	if got := c.core.preferred.Load(); got != 1 {
		t.Errorf("preferred node = %d, want 1", got)
	}
	resp, err := c.Query(ctx, SQL("SELECT v FROM t"))
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if len(resp.Results) != 1 || len(resp.Results[0].Values) != 1 {
		t.Errorf("query results = %+v", resp.Results)
	}
}

func TestFailoverAfterAttemptTimeout(t *testing.T) {
	fc := newFakeCluster(t)
	a, b := fc.node("a"), fc.node("b")
	// a commits the write and then never answers.
	a.setAfterCommit(func(w http.ResponseWriter, r *http.Request) bool {
		<-r.Context().Done()
		return true
	})
	c := newTestClient(t, Config{Nodes: []string{a.srv.URL, b.srv.URL}, Timeout: 200 * time.Millisecond})

	resp, err := c.Execute(context.Background(), insert("x"))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if !resp.Deduplicated {
		t.Error("want the second node's answer from the session table")
	}
	if rows := fc.rowValues(); len(rows) != 1 {
		t.Errorf("rows = %v, want one", rows)
	}
	calls := fc.callsTo("/db/execute")
	if len(calls) != 2 || calls[0].node != "a" || calls[1].node != "b" ||
		calls[0].query.Get("seq") != calls[1].query.Get("seq") {
		t.Errorf("calls = %+v", calls)
	}
	to, err := time.ParseDuration(calls[0].query.Get("timeout"))
	if err != nil || to <= 0 || to >= 200*time.Millisecond {
		t.Errorf("timeout=%q, want a little under 200ms", calls[0].query.Get("timeout"))
	}
}

func TestNoRetryOnBadRequest(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	n.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "invalid request", http.StatusBadRequest)
		return true
	})
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})

	_, err := c.Execute(context.Background(), insert(1))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || apiErr.Message != "invalid request" {
		t.Fatalf("err = %v, want a 400 APIError", err)
	}
	if errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("a definite failure reported as unknown outcome: %v", err)
	}
	if calls := fc.callsTo("/db/execute"); len(calls) != 1 {
		t.Errorf("%d attempts, want 1", len(calls))
	}
}

func TestRetryTransientServerErrors(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	var count atomic.Int64
	n.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		switch count.Add(1) {
		case 1:
			http.Error(w, "leader not found", http.StatusServiceUnavailable)
		case 2:
			writeJSON(w, http.StatusGatewayTimeout, map[string]any{"error": "forwarding failed", "code": "forward_failed"})
		case 3:
			// rqlite's shape: 200 with a top-level error.
			writeJSON(w, http.StatusOK, map[string]any{"results": []any{}, "error": "leadership lost while committing log"})
		default:
			return false
		}
		return true
	})
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})

	resp, err := c.Execute(context.Background(), insert(1))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if resp.Deduplicated || len(fc.rowValues()) != 1 {
		t.Errorf("deduplicated=%v rows=%v", resp.Deduplicated, fc.rowValues())
	}
	calls := fc.callsTo("/db/execute")
	if len(calls) != 4 {
		t.Fatalf("%d attempts, want 4", len(calls))
	}
	for _, call := range calls {
		if call.query.Get("seq") != "1" {
			t.Errorf("seq %q, want 1 on every attempt", call.query.Get("seq"))
		}
	}
}

func TestNonRetryableTopLevelError(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	n.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		writeJSON(w, http.StatusOK, map[string]any{"results": []any{}, "error": "database disk image is malformed"})
		return true
	})
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	_, err := c.Query(context.Background(), SQL("SELECT 1"))
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != 200 || apiErr.Message != "database disk image is malformed" {
		t.Fatalf("err = %v", err)
	}
	if calls := fc.callsTo("/db/query"); len(calls) != 1 {
		t.Errorf("%d attempts, want 1", len(calls))
	}
}

func TestUnknownSessionIsResentInNewSession(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusOK} {
		t.Run(strconv.Itoa(status), func(t *testing.T) {
			fc := newFakeCluster(t)
			fc.unknownSessionStatus = status
			n := fc.node("a")
			c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
			ctx := context.Background()
			if _, err := c.Execute(ctx, insert(1)); err != nil {
				t.Fatal(err)
			}
			old := c.SessionID()
			fc.forgetSessions() // the session expired on the server

			resp, err := c.Execute(ctx, insert(2))
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if resp.Deduplicated {
				t.Error("deduplicated")
			}
			if c.SessionID() == old {
				t.Error("session not renewed")
			}
			calls := fc.callsTo("/db/execute")
			if len(calls) != 3 {
				t.Fatalf("%d calls, want 3", len(calls))
			}
			if q := calls[1].query; q.Get("client_id") != old || q.Get("seq") != "2" {
				t.Errorf("second call %v", q)
			}
			if q := calls[2].query; q.Get("client_id") != c.SessionID() || q.Get("seq") != "1" {
				t.Errorf("third call %v", q)
			}
			if rows := fc.rowValues(); len(rows) != 2 {
				t.Errorf("rows = %v", rows)
			}
		})
	}
}

func TestUnknownSessionAfterAmbiguousAttempt(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	ctx := context.Background()
	if _, err := c.Execute(ctx, insert(1)); err != nil {
		t.Fatal(err)
	}
	old := c.SessionID()
	// The next attempt is cut without an answer, and meanwhile the session
	// expires: the write's fate cannot be known.
	n.setBefore(firstN(1, func(w http.ResponseWriter, r *http.Request) {
		fc.forgetSessions()
		resetConn(w)
	}))
	_, err := c.Execute(ctx, insert(2))
	if !errors.Is(err, api.ErrSessionExpired) || !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("err = %v, want api.ErrSessionExpired and ErrUnknownOutcome", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest {
		t.Errorf("err = %v, want the server's APIError inside", err)
	}
	if c.SessionID() == old {
		t.Error("session not renewed")
	}
	if calls := fc.callsTo("/db/execute"); len(calls) != 3 {
		t.Errorf("%d calls, want 3 (no resend in the new session)", len(calls))
	}
	// The new session works from seq 1.
	if _, err := c.Execute(ctx, insert(3)); err != nil {
		t.Fatal(err)
	}
	calls := fc.callsTo("/db/execute")
	if q := calls[len(calls)-1].query; q.Get("client_id") != c.SessionID() || q.Get("seq") != "1" {
		t.Errorf("after renewal: %v", q)
	}
}

func TestSupersededRenewsSession(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	n.setBefore(firstN(1, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "sequence number already superseded"})
	}))
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	old := c.SessionID()
	_, err := c.Execute(context.Background(), insert(1))
	if !errors.Is(err, api.ErrSeqSuperseded) || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("err = %v, want api.ErrSeqSuperseded alone", err)
	}
	if c.SessionID() == old {
		t.Error("session not renewed")
	}
}

// A 409 seq_reused (sqlapi's body) is a typed, definite error, and the
// session is replaced so that the next write does not collide again.
func TestSeqReusedRenewsSession(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	n.setBefore(firstN(1, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusConflict, map[string]any{"results": []any{},
			"error": "sequence number already used by a different request", "code": "seq_reused"})
	}))
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	old := c.SessionID()
	_, err := c.Execute(context.Background(), insert(1))
	var apiErr *APIError
	if !errors.Is(err, api.ErrSeqReused) || errors.Is(err, ErrUnknownOutcome) || !errors.As(err, &apiErr) || apiErr.Status != http.StatusConflict {
		t.Fatalf("err = %v, want a 409 APIError that is api.ErrSeqReused alone", err)
	}
	if c.SessionID() == old {
		t.Error("session not renewed")
	}
	if got := len(fc.callsTo("/db/execute")); got != 1 {
		t.Errorf("%d attempts, want 1: a reused seq is not retried", got)
	}
}

func TestReadsCarryMinIndex(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	ctx := context.Background()

	if _, err := c.Query(ctx, SQL("SELECT 1")); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := c.Execute(ctx, insert(i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.With(WithLevel(api.LevelNone)).Query(ctx, SQL("SELECT v FROM t")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.With(WithMinIndex(10), WithLevel(api.LevelStrong)).Query(ctx, SQL("SELECT v FROM t")); err != nil {
		t.Fatal(err)
	}
	calls := fc.callsTo("/db/query")
	if len(calls) != 3 {
		t.Fatalf("%d calls", len(calls))
	}
	if calls[0].query.Has("min_index") {
		t.Errorf("min_index before any write: %v", calls[0].query)
	}
	if q := calls[1].query; q.Get("min_index") != "2" || q.Get("level") != "none" {
		t.Errorf("read after writes: %v", q)
	}
	if q := calls[2].query; q.Get("min_index") != "10" || q.Get("level") != "strong" {
		t.Errorf("read with WithMinIndex: %v", q)
	}

	// Without tracking nothing is asked or sent.
	d := newTestClient(t, Config{Nodes: []string{n.srv.URL}, DisableIndexTracking: true})
	if _, err := d.Execute(ctx, insert("d")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Query(ctx, SQL("SELECT v FROM t")); err != nil {
		t.Fatal(err)
	}
	ex := fc.callsTo("/db/execute")
	qs := fc.callsTo("/db/query")
	if ex[len(ex)-1].query.Has("raft_index") || qs[len(qs)-1].query.Has("min_index") {
		t.Errorf("tracking disabled but sent %v / %v", ex[len(ex)-1].query, qs[len(qs)-1].query)
	}
	if d.LastIndex() != 0 {
		t.Errorf("LastIndex = %d", d.LastIndex())
	}
}

func TestCallOptionsOnTheWire(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	ctx := context.Background()
	tc := c.With(WithTransaction(), WithTimings(), WithFreshness(time.Second, true), WithLevel(api.LevelAuto), WithTimeout(3*time.Second))
	if _, err := tc.Request(ctx, insert(1), SQL("SELECT v FROM t")); err != nil {
		t.Fatal(err)
	}
	calls := fc.callsTo("/db/request")
	if len(calls) != 1 {
		t.Fatalf("%d calls", len(calls))
	}
	q := calls[0].query
	for _, flag := range []string{"transaction", "timings", "freshness_strict", "blob_array", "raft_index"} {
		if !q.Has(flag) {
			t.Errorf("no %s in %v", flag, q)
		}
	}
	if q.Get("level") != "auto" || q.Get("freshness") != "1s" || q.Get("seq") != "1" {
		t.Errorf("query %v", q)
	}
	if to, err := time.ParseDuration(q.Get("timeout")); err != nil || to < 2*time.Second || to >= 3*time.Second {
		t.Errorf("timeout=%q", q.Get("timeout"))
	}
	// The derived client did not change the original's options.
	if _, err := c.Query(ctx, SQL("SELECT 1")); err != nil {
		t.Fatal(err)
	}
	if q := fc.callsTo("/db/query")[0].query; q.Has("transaction") || q.Has("level") {
		t.Errorf("options leaked: %v", q)
	}
	// Invalid options fail every call without sending anything.
	if _, err := c.With(WithLevel("bogus")).Query(ctx, SQL("SELECT 1")); err == nil {
		t.Error("bogus level accepted")
	}
	if _, err := c.With(WithTimeout(0)).Execute(ctx, insert(1)); err == nil {
		t.Error("zero timeout accepted")
	}
	if len(fc.callsTo("/db/query")) != 1 || len(fc.callsTo("/db/execute")) != 0 {
		t.Error("an invalid call was sent")
	}
}

func TestTimeoutFromContextDeadline(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}, Timeout: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.Query(ctx, SQL("SELECT 1")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Query(context.Background(), SQL("SELECT 1")); err != nil {
		t.Fatal(err)
	}
	calls := fc.callsTo("/db/query")
	to, err := time.ParseDuration(calls[0].query.Get("timeout"))
	if err != nil || to < 3*time.Second || to > 5*time.Second {
		t.Errorf("timeout=%q, want from the 5s deadline", calls[0].query.Get("timeout"))
	}
	if calls[1].query.Has("timeout") {
		t.Errorf("no deadline and no attempt timeout, but timeout=%q", calls[1].query.Get("timeout"))
	}
}

func TestStatementErrors(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	resp, err := c.Execute(context.Background(), insert(1), SQL("FAIL"))
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	var se *StatementError
	if !errors.As(resp.Err(), &se) || se.Index != 1 || se.SQL != "FAIL" || se.Message != "no such table: nope" {
		t.Fatalf("Err() = %v", resp.Err())
	}
	if resp.Results[0].Error != "" || resp.Results[1].Error == "" {
		t.Errorf("results = %+v", resp.Results)
	}
}

func TestNoStatementsSendsNothing(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	if _, err := c.Execute(context.Background()); !errors.Is(err, errNoStatements) {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.Execute(context.Background(), insert(1)); err != nil {
		t.Fatal(err)
	}
	if calls := fc.callsTo("/db/execute"); len(calls) != 1 || calls[0].query.Get("seq") != "1" {
		t.Errorf("calls = %+v", calls)
	}
}

func TestConcurrentUse(t *testing.T) {
	fc := newFakeCluster(t)
	fc.writeDelay = 200 * time.Microsecond
	a, b := fc.node("a"), fc.node("b")
	// Every fifth write is committed and its answer lost.
	var writes atomic.Int64
	cut := func(w http.ResponseWriter, r *http.Request) bool {
		if writes.Add(1)%5 == 0 {
			resetConn(w)
			return true
		}
		return false
	}
	a.setAfterCommit(cut)
	b.setAfterCommit(cut)
	c := newTestClient(t, Config{Nodes: []string{a.srv.URL, b.srv.URL}})
	ctx := context.Background()

	const workers, each = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each*2)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				v := fmt.Sprintf("w%d-%d", w, i)
				if _, err := c.Execute(ctx, insert(v)); err != nil {
					errs <- fmt.Errorf("Execute %s: %w", v, err)
				}
				if _, err := c.With(WithLevel(api.LevelNone)).Query(ctx, SQL("SELECT v FROM t")); err != nil {
					errs <- fmt.Errorf("Query: %w", err)
				}
				_ = c.SessionID()
				_ = c.LastIndex()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	seen := map[any]int{}
	for _, v := range fc.rowValues() {
		seen[v]++
	}
	if len(seen) != workers*each {
		t.Errorf("%d distinct rows, want %d", len(seen), workers*each)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("%v inserted %d times", v, n)
		}
	}
	fc.mu.Lock()
	maxInflight := fc.maxInflight
	fc.mu.Unlock()
	if maxInflight != 1 {
		t.Errorf("%d writes of one session in flight at once", maxInflight)
	}
	// Sequence numbers arrive in order: each attempt repeats the last seq or
	// takes the next one.
	var last uint64
	for _, call := range fc.callsTo("/db/execute") {
		seq, _ := strconv.ParseUint(call.query.Get("seq"), 10, 64)
		if seq != last && seq != last+1 {
			t.Fatalf("seq %d after %d", seq, last)
		}
		last = seq
	}
	if last != workers*each || c.LastIndex() != workers*each {
		t.Errorf("last seq %d, LastIndex %d, want %d", last, c.LastIndex(), workers*each)
	}
}

func TestContextEndsRetriesPromptly(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	n.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "leader not found", http.StatusServiceUnavailable)
		return true
	})
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}, MaxRetries: 1000,
		RetryBackoff: 20 * time.Millisecond, MaxRetryBackoff: 50 * time.Millisecond})

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Execute(ctx, insert(1))
	if el := time.Since(start); el > time.Second {
		t.Errorf("took %v after the deadline", el)
	}
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("err = %v, want DeadlineExceeded and ErrUnknownOutcome", err)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable {
		t.Errorf("err = %v, want the last failure inside", err)
	}
	if k := len(fc.callsTo("/db/execute")); k < 2 {
		t.Errorf("%d attempts, want retries", k)
	}

	// A reader is not an unknown-outcome write.
	ctx2, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	if _, err := c.Query(ctx2, SQL("SELECT 1")); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("query err = %v", err)
	}
}

func TestCancelDuringHungAttempt(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	release := make(chan struct{})
	n.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		http.Error(w, "leader not found", http.StatusServiceUnavailable)
		return true
	})
	defer close(release)
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}, Timeout: time.Minute})

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Execute(ctx, insert(1))
	if el := time.Since(start); el > time.Second {
		t.Errorf("cancellation took %v", el)
	}
	if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("err = %v", err)
	}

	// A write waiting for the session gives up with its context, having
	// consumed no sequence number.
	hold, cancelHold := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = c.Execute(hold, insert("holder"))
	}()
	for len(fc.callsTo("/db/execute")) < 2 {
		time.Sleep(time.Millisecond)
	}
	ctx3, cancel3 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel3()
	start = time.Now()
	_, err = c.Execute(ctx3, insert("waiter"))
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrUnknownOutcome) || time.Since(start) > time.Second {
		t.Errorf("waiting for the session: err = %v after %v", err, time.Since(start))
	}
	cancelHold()
	<-done
	if k := len(fc.callsTo("/db/execute")); k != 2 {
		t.Errorf("%d calls, want 2", k)
	}
}

func TestSessionsDisabled(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	n.setAfterCommit(firstN(1, func(w http.ResponseWriter, r *http.Request) { resetConn(w) }))
	c := newTestClient(t, Config{Nodes: []string{closedAddr(t), n.srv.URL}, DisableSessions: true})
	if c.SessionID() != "" {
		t.Error("session id without sessions")
	}
	// A refused connection is retried elsewhere; a cut one is not.
	_, err := c.Execute(context.Background(), insert(1))
	if !errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("err = %v, want ErrUnknownOutcome", err)
	}
	calls := fc.callsTo("/db/execute")
	if len(calls) != 1 || calls[0].query.Has("client_id") || calls[0].query.Has("seq") {
		t.Errorf("calls = %+v", calls)
	}
	if _, err := c.Execute(context.Background(), insert(2)); err != nil {
		t.Fatal(err)
	}
	if rows := fc.rowValues(); len(rows) != 2 {
		t.Errorf("rows = %v", rows)
	}
}

func TestRetriesExhausted(t *testing.T) {
	c := newTestClient(t, Config{Nodes: []string{closedAddr(t), closedAddr(t)}, MaxRetries: 3})
	_, err := c.Execute(context.Background(), insert(1))
	if err == nil || errors.Is(err, ErrUnknownOutcome) {
		t.Fatalf("err = %v, want a failure that never reached a node", err)
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Errorf("err = %v, want the dial error inside", err)
	}
	// No retries at all.
	d := newTestClient(t, Config{Nodes: []string{closedAddr(t), closedAddr(t)}, MaxRetries: -1})
	if _, err := d.Query(context.Background(), SQL("SELECT 1")); err == nil {
		t.Fatal("no error")
	}
}

func TestBasicAuth(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	var got sync.Map
	n.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		got.Store(r.URL.Path, fmt.Sprint(u, ":", p, ":", ok))
		return false
	})
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}, User: "bob", Password: "s3cret"})
	if _, err := c.Query(context.Background(), SQL("SELECT 1")); err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Load("/db/query"); v != "bob:s3cret:true" {
		t.Errorf("auth = %v", v)
	}
	// Credentials in the node URL.
	u := "http://ann:pw@" + n.srv.Listener.Addr().String()
	d := newTestClient(t, Config{Nodes: []string{u}})
	if _, err := d.Status(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, _ := got.Load("/status"); v != "ann:pw:true" {
		t.Errorf("auth = %v", v)
	}
}

func TestClusterCalls(t *testing.T) {
	fc := newFakeCluster(t)
	n := fc.node("a")
	c := newTestClient(t, Config{Nodes: []string{n.srv.URL}})
	ctx := context.Background()

	leader, err := c.Leader(ctx)
	if err != nil || leader.ID != "1" || !leader.Leader || leader.APIAddr != "http://127.0.0.1:4001" || leader.Time != 1300*time.Microsecond {
		t.Errorf("Leader = %+v, %v", leader, err)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "1" || nodes[1].Reachable || nodes[1].Error != "connection refused" {
		t.Errorf("Nodes = %+v, %v", nodes, err)
	}
	if q := fc.callsTo("/nodes")[0].query; q.Get("ver") != "2" || !q.Has("nonvoters") {
		t.Errorf("/nodes query %v", q)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if store, _ := st["store"].(map[string]any); store["node_id"] != "1" {
		t.Errorf("Status = %v", st)
	}
	if err := c.Ready(ctx, true); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if q := fc.callsTo("/readyz")[0].query; !q.Has("noleader") {
		t.Errorf("/readyz query %v", q)
	}
	if err := c.Remove(ctx, "2"); err != nil {
		t.Errorf("Remove: %v", err)
	}
	if call := fc.callsTo("/remove")[0]; call.method != http.MethodDelete || call.body != `{"id":"2"}` {
		t.Errorf("remove call %+v", call)
	}
	if err := c.StepDown(ctx, "3"); err != nil {
		t.Errorf("StepDown: %v", err)
	}
	if err := c.StepDown(ctx, ""); err != nil {
		t.Errorf("StepDown: %v", err)
	}
	var posts []fakeCall
	for _, call := range fc.callsTo("/leader") {
		if call.method == http.MethodPost {
			posts = append(posts, call)
		}
	}
	if len(posts) != 2 || posts[0].body != `{"id":"3"}` || posts[1].body != "" {
		t.Errorf("step-down calls %+v", posts)
	}

	// Not ready: reported at once, not retried.
	n.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "[+]node ok\n[-]leader not ok\n[+]store ok", http.StatusServiceUnavailable)
		return true
	})
	err = c.Ready(ctx, false)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusServiceUnavailable || errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("Ready = %v", err)
	}
	if k := len(fc.callsTo("/readyz")); k != 2 {
		t.Errorf("%d /readyz calls, want 2", k)
	}
	// A step-down cut off is not repeated.
	n.setBefore(func(w http.ResponseWriter, r *http.Request) bool {
		resetConn(w)
		return true
	})
	before := len(fc.callsTo("/leader"))
	if err := c.StepDown(ctx, ""); !errors.Is(err, ErrUnknownOutcome) {
		t.Errorf("StepDown = %v", err)
	}
	if k := len(fc.callsTo("/leader")) - before; k != 1 {
		t.Errorf("%d step-down attempts, want 1", k)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrNoNodes) {
		t.Errorf("no nodes: %v", err)
	}
	bad := [][]string{
		{"ftp://h:1"},
		{""},
		{"http://h:1?x=1"},
		{"h:1", "http://h:1/"},
	}
	for _, nodes := range bad {
		if _, err := New(Config{Nodes: nodes}); err == nil {
			t.Errorf("%q accepted", nodes)
		}
	}
	if _, err := New(Config{Nodes: []string{"h:1"}, Password: "x"}); err == nil {
		t.Error("password without user accepted")
	}
	if _, err := New(Config{Nodes: []string{"h:1"}, RetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond}); err == nil {
		t.Error("max backoff below backoff accepted")
	}
	c, err := New(Config{Nodes: []string{"localhost:4001", "https://db.example:443/prefix/", "http://u:p@h:2"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"http://localhost:4001", "https://db.example:443/prefix", "http://h:2"}
	for i, nd := range c.core.nodes {
		if nd.base != want[i] {
			t.Errorf("node %d = %q, want %q", i, nd.base, want[i])
		}
	}
	if nd := c.core.nodes[2]; !nd.hasAuth || nd.user != "u" || nd.password != "p" {
		t.Errorf("credentials from URL: %+v", nd)
	}
	if c.core.attemptTimeout != DefaultTimeout || c.core.maxRetries != DefaultMaxRetries ||
		c.core.backoff != DefaultRetryBackoff || c.core.maxBackoff != DefaultMaxRetryBackoff || c.core.sess == nil || !c.core.trackIndex {
		t.Errorf("defaults not applied: %+v", c.core)
	}
	if !hexID.MatchString(c.SessionID()) {
		t.Errorf("session id %q", c.SessionID())
	}
	d, err := New(Config{Nodes: []string{"h:1"}})
	if err != nil {
		t.Fatal(err)
	}
	if d.SessionID() == c.SessionID() {
		t.Error("two clients share a session id")
	}
}

func TestBackoffDelay(t *testing.T) {
	c := &core{backoff: 10 * time.Millisecond, maxBackoff: 80 * time.Millisecond}
	for n, want := range []time.Duration{10, 20, 40, 80, 80, 80} {
		want *= time.Millisecond
		for range 20 {
			d := c.backoffDelay(n)
			if d < want/2 || d > want {
				t.Errorf("delay %d = %v, want in [%v, %v]", n, d, want/2, want)
			}
		}
	}
}

func TestServerTimeout(t *testing.T) {
	for in, want := range map[time.Duration]string{
		10 * time.Second:        "9s",
		2 * time.Minute:         "1m59s",
		time.Second:             "900ms",
		time.Microsecond:        "1ms",
		-time.Second:            "1ms",
		1234 * time.Millisecond: "1.11s",
	} {
		if got := serverTimeout(in); got != want {
			t.Errorf("serverTimeout(%v) = %s, want %s", in, got, want)
		}
	}
}
