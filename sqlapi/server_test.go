package sqlapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/raftlite/raftlite/api"
)

func leaderStore() *fakeStore {
	return &fakeStore{leader: true, leaderID: "1"}
}

func TestRoutingAndHeaders(t *testing.T) {
	_, ts := newTestServer(t, leaderStore(), nil)
	tests := []struct {
		method, path string
		status       int
	}{
		{"GET", "/nope", http.StatusNotFound},
		{"GET", "/db/executex", http.StatusNotFound},
		{"GET", "/db/execute", http.StatusMethodNotAllowed},
		{"PUT", "/db/query?q=SELECT+1", http.StatusMethodNotAllowed},
		{"GET", "/db/request", http.StatusMethodNotAllowed},
		{"POST", "/status", http.StatusMethodNotAllowed},
		{"GET", "/remove", http.StatusMethodNotAllowed},
		{"DELETE", "/leader", http.StatusMethodNotAllowed},
		{"GET", "/status", http.StatusOK},
		{"GET", "/status/", http.StatusOK},
		{"GET", "/readyz", http.StatusOK},
		{"GET", "/db/query?q=SELECT+1", http.StatusOK},
		{"OPTIONS", "/db/execute", http.StatusOK},
		{"GET", "/", http.StatusFound},
	}
	for _, tt := range tests {
		code, hdr, body := do(t, tt.method, ts.URL+tt.path, "", "")
		if code != tt.status {
			t.Errorf("%s %s = %d %q, want %d", tt.method, tt.path, code, body, tt.status)
		}
		if v := hdr.Get("X-RQLITE-VERSION"); v != "v-test" {
			t.Errorf("%s %s: X-RQLITE-VERSION = %q", tt.method, tt.path, v)
		}
		if code == http.StatusMethodNotAllowed && hdr.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without Allow", tt.method, tt.path)
		}
	}
}

func TestExecuteOnLeader(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, nil)
	code, hdr, body := do(t, "POST", ts.URL+"/db/execute?transaction&client_id=c1&seq=3&raft_index", "application/json",
		`["CREATE TABLE t (x)", ["INSERT INTO t VALUES(?)", 1]]`)
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	if ct := hdr.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	if want := `{"results":[{"last_insert_id":1,"rows_affected":1},{"last_insert_id":2,"rows_affected":1}],"raft_index":42}`; body != want {
		t.Fatalf("body %s, want %s", body, want)
	}
	req := store.executed[0]
	if !req.Transaction || req.ClientID != "c1" || req.Seq != 3 || req.ReadOnly || len(req.Statements) != 2 ||
		req.Statements[1].Params[0].Value != int64(1) {
		t.Fatalf("request %+v", req)
	}

	// pretty, timings and text/plain.
	code, _, body = do(t, "POST", ts.URL+"/db/execute?pretty=false&timings", "text/plain", "INSERT INTO t VALUES(1)")
	if code != 200 || !strings.Contains(body, "\n    \"results\": [") || !strings.Contains(body, `"time": `) {
		t.Fatalf("pretty timings: %d %s", code, body)
	}
	if got := store.executed[1].Statements; len(got) != 1 || got[0].SQL != "INSERT INTO t VALUES(1)" {
		t.Fatalf("text/plain statements %+v", got)
	}
}

func TestExecuteResponseErrors(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, nil)
	cases := []struct {
		resp   *api.Response
		err    error
		status int
		want   string
	}{
		{&api.Response{Err: api.ErrSeqSuperseded}, nil, 400,
			`{"results":[],"error":"sequence number already superseded","code":"seq_superseded"}`},
		{&api.Response{Err: api.ErrSessionExpired}, nil, 400,
			`{"results":[],"error":"unknown or expired session","code":"session_expired"}`},
		{&api.Response{Results: []api.Result{{RowsAffected: 1}}, Index: 5, Deduplicated: true}, nil, 200,
			`{"results":[{"rows_affected":1}],"deduplicated":true}`},
		{nil, errors.Join(api.ErrLeadershipLost, errors.New("detail")), 503, `"code":"leadership_lost"`},
		{nil, api.ErrCommitTimeout, 504, `"code":"timeout"`},
		{nil, api.ErrUnknownOutcome, 503, `"code":"unknown_outcome"`},
		{nil, api.ErrUnavailable, 503, `"code":"unavailable"`},
		{nil, errors.New("disk on fire"), 500, `{"results":[],"error":"disk on fire","code":"store_error"}`},
	}
	for i, c := range cases {
		store.set(func(f *fakeStore) {
			f.execFn = func(context.Context, *api.Request) (*api.Response, error) { return c.resp, c.err }
		})
		code, _, body := do(t, "POST", ts.URL+"/db/execute", "", `["X"]`)
		if code != c.status || !strings.Contains(body, c.want) {
			t.Errorf("case %d: %d %s, want %d %s", i, code, body, c.status, c.want)
		}
	}
	// No leader known: 503 leader not found.
	store.set(func(f *fakeStore) {
		f.execFn = func(context.Context, *api.Request) (*api.Response, error) { return nil, api.ErrNoLeader }
	})
	if code, _, body := do(t, "POST", ts.URL+"/db/execute", "", `["X"]`); code != 503 || body != `{"results":[],"error":"leader not found","code":"no_leader"}` {
		t.Errorf("no leader: %d %q", code, body)
	}
}

// jsonError is the body of an error answer.
func jsonError(code, msg string) string {
	b, _ := json.Marshal(struct {
		Results []any  `json:"results"`
		Error   string `json:"error"`
		Code    string `json:"code"`
	}{[]any{}, msg, code})
	return string(b)
}

func TestBadRequests(t *testing.T) {
	_, ts := newTestServer(t, leaderStore(), func(c *Config) { c.MaxBodyBytes = 100 })
	tests := []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"POST", "/db/execute", `not json`, 400, jsonError("bad_request", "invalid JSON body")},
		{"POST", "/db/execute", ``, 400, jsonError("bad_request", "invalid JSON body")},
		{"POST", "/db/execute", `{"a":1}`, 400, jsonError("bad_request", "invalid request")},
		{"POST", "/db/execute", `[]`, 400, jsonError("bad_request", "no statements")},
		{"POST", "/db/execute", `[["X", {"a": {}}]]`, 400, jsonError("bad_request", "unsupported parameter type: nested object")},
		{"POST", "/db/query", `[1]`, 400, jsonError("bad_request", "invalid request")},
		{"POST", "/db/request", `[]`, 400, jsonError("bad_request", "no statements")},
		{"GET", "/db/query?q=", ``, 400, jsonError("bad_request", "query parameter not set")},
		{"POST", "/db/execute", `["` + strings.Repeat("x", 200) + `"]`, 413, jsonError("request_too_large", "request body too large: limit is 100 bytes")},
		{"GET", "/db/query?q=SELECT+1&timeout=soon", ``, 400, jsonError("bad_request", "timeout is not a valid duration")},
		{"GET", "/db/query?q=SELECT+1&freshness=x", ``, 400, jsonError("bad_request", "freshness is not a valid duration")},
		{"GET", "/db/query?q=SELECT+1&freshness_strict", ``, 400, jsonError("bad_request", "freshness_strict requires freshness")},
		{"GET", "/db/query?q=SELECT+1&min_index=-1", ``, 400, jsonError("bad_request", "min_index is not a valid log index")},
		{"POST", "/db/execute?client_id=a&seq=x", `["X"]`, 400, jsonError("bad_request", "seq is not a valid sequence number (1, 2, 3...)")},
		{"POST", "/db/execute?client_id=a", `["X"]`, 400, jsonError("bad_request", "client_id requires seq")},
		{"POST", "/db/execute?seq=1", `["X"]`, 400, jsonError("bad_request", "seq requires client_id")},
		{"POST", "/db/execute?queue&client_id=a&seq=1", `["X"]`, 400, jsonError("bad_request", "client_id and seq cannot be used with queue")},
		{"GET", "/db/query?q=%zz", ``, 400, ""},
	}
	for _, tt := range tests {
		code, hdr, body := do(t, tt.method, ts.URL+tt.path, "", tt.body)
		if code != tt.status || (tt.want != "" && body != tt.want) {
			t.Errorf("%s %s %q = %d %q, want %d %q", tt.method, tt.path, tt.body, code, body, tt.status, tt.want)
		}
		if hdr.Get("Content-Type") != contentTypeJSON || !strings.Contains(body, `"code":"`) {
			t.Errorf("%s %s: %d with Content-Type %q: %q", tt.method, tt.path, code, hdr.Get("Content-Type"), body)
		}
	}
}

func TestUnknownParamsIgnoredAndFlagsPresenceOnly(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&bogus=1&associative=false&level=whatever", "", "")
	if code != 200 || body != `{"results":[{"types":{"n":"integer"},"rows":[{"n":1}]}]}` {
		t.Fatalf("%d %s", code, body)
	}
}

func TestPanicRecovered(t *testing.T) {
	store := leaderStore()
	store.execFn = func(context.Context, *api.Request) (*api.Response, error) { panic("boom") }
	api, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "POST", ts.URL+"/db/execute", "", `["X"]`)
	if code != 500 || !strings.Contains(body, "boom") {
		t.Fatalf("%d %q", code, body)
	}
	if testutil.ToFloat64(api.metrics.panics) != 1 {
		t.Fatal("panic not counted")
	}
	// The server still works.
	if code, _, _ := do(t, "GET", ts.URL+"/status", "", ""); code != 200 {
		t.Fatalf("after panic: %d", code)
	}
}

func TestDBRequestRouting(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "POST", ts.URL+"/db/request?client_id=c&seq=1", "", `["SELECT 1", "SELECT 2"]`)
	if code != 200 || store.queriedCount() != 1 || store.executedCount() != 0 {
		t.Fatalf("read-only request: %d %s q=%d e=%d", code, body, store.queriedCount(), store.executedCount())
	}
	store.set(func(f *fakeStore) {
		f.execFn = func(_ context.Context, req *api.Request) (*api.Response, error) {
			return &api.Response{Results: []api.Result{{LastInsertID: 3, RowsAffected: 1},
				{Columns: []string{"c"}, Types: []string{"integer"}, Rows: [][]api.Value{{int64(1)}}}}}, nil
		}
	})
	code, _, body = do(t, "POST", ts.URL+"/db/request?associative", "", `["INSERT INTO t VALUES(1)", "SELECT COUNT(*) AS c FROM t"]`)
	want := `{"results":[{"last_insert_id":3,"rows_affected":1,"rows":null},{"types":{"c":"integer"},"rows":[{"c":1}]}]}`
	if code != 200 || body != want {
		t.Fatalf("mixed request: %d %s\nwant %s", code, body, want)
	}
	// Unclassifiable statements go through the log.
	store.set(func(f *fakeStore) {
		f.roFn = func(*api.Request) (bool, error) { return false, errors.New("syntax error") }
	})
	do(t, "POST", ts.URL+"/db/request", "", `["SELEC 1"]`)
	if store.executedCount() != 2 {
		t.Fatalf("unclassifiable request not executed: %d", store.executedCount())
	}
}

func TestReadLevelsOnLeader(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, nil)
	// weak (default): local read.
	if code, _, _ := do(t, "GET", ts.URL+"/db/query?q=SELECT+1", "", ""); code != 200 || store.queriedCount() != 1 {
		t.Fatalf("weak: %d", code)
	}
	// strong: through the log, read-only, without the session.
	code, _, body := do(t, "POST", ts.URL+"/db/query?level=strong&client_id=x&seq=2", "", `["SELECT 1"]`)
	if code != 200 || store.executedCount() != 1 || !store.executed[0].ReadOnly || store.executed[0].ClientID != "" {
		t.Fatalf("strong: %d %s %+v", code, body, store.executed)
	}
	// linearizable: a read index (the leader's commit index), then a local
	// read once it is applied.
	if code, _, _ := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=linearizable", "", ""); code != 200 || store.readIndexes != 1 || store.queriedCount() != 2 || store.waited[0] != 7 {
		t.Fatalf("linearizable: %d read indexes=%d waited=%v", code, store.readIndexes, store.waited)
	}
	// min_index waits before the read.
	if code, _, _ := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=none&min_index=12", "", ""); code != 200 || store.waited[1] != 12 {
		t.Fatalf("min_index: %d %v", code, store.waited)
	}
	// min_index that never arrives: 504 with code timeout, bounded by ?timeout.
	store.set(func(f *fakeStore) {
		f.waitFn = func(ctx context.Context, _ uint64) error { <-ctx.Done(); return ctx.Err() }
	})
	start := time.Now()
	code, _, body = do(t, "GET", ts.URL+"/db/query?q=SELECT+1&min_index=99&timeout=100ms", "", "")
	if code != 504 || body != `{"results":[],"error":"timeout waiting for log index 99 to be applied","code":"timeout"}` {
		t.Fatalf("min_index timeout: %d %s", code, body)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("min_index timeout took %v", d)
	}
}

func TestLinearizableWithReadIndexOnFollower(t *testing.T) {
	store := &fakeStore{leaderID: "2", leaderAPI: "http://127.0.0.1:1", readIndexFn: func(context.Context) (uint64, error) { return 31, nil }}
	_, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=linearizable&min_index=5", "", "")
	if code != 200 || len(store.waited) != 1 || store.waited[0] != 31 || store.queriedCount() != 1 {
		t.Fatalf("%d %s waited=%v", code, body, store.waited)
	}
}

func TestStaleRead(t *testing.T) {
	store := &fakeStore{leaderID: "2", leaderAPI: "http://127.0.0.1:1"}
	_, ts := newTestServer(t, store, nil)
	const read, strict = "/db/query?q=SELECT+1&level=none&freshness=", "&freshness_strict"
	code, _, body := do(t, "GET", ts.URL+read+"1s", "", "")
	if code != 503 || body != `{"results":[],"error":"stale read","code":"stale_read"}` {
		t.Fatalf("never contacted: %d %s", code, body)
	}
	store.set(func(f *fakeStore) { f.lastContact = time.Now().Add(-15 * time.Millisecond) })
	if code, _, body := do(t, "GET", ts.URL+read+"1s", "", ""); code != 200 {
		t.Fatalf("fresh: %d %s", code, body)
	}
	if code, _, _ := do(t, "GET", ts.URL+read+"10ms", "", ""); code != 503 {
		t.Fatalf("too old: %d", code)
	}
	// Strict: in contact and caught up is fresh, however long ago the
	// database last changed.
	store.set(func(f *fakeStore) { f.caughtUp = true })
	if code, _, body := do(t, "GET", ts.URL+read+"1s"+strict, "", ""); code != 200 {
		t.Fatalf("strict, caught up: %d %s", code, body)
	}
	// Behind the commit index: fresh only while entries keep being applied.
	store.set(func(f *fakeStore) { f.caughtUp, f.appliedAt = false, time.Now().Add(-100*time.Millisecond) })
	if code, _, body := do(t, "GET", ts.URL+read+"1s"+strict, "", ""); code != 200 {
		t.Fatalf("strict, behind but applying: %d %s", code, body)
	}
	if code, _, body := do(t, "GET", ts.URL+read+"50ms"+strict, "", ""); code != 503 || !strings.Contains(body, "stale_read") {
		t.Fatalf("strict, behind and stuck: %d %s", code, body)
	}
	// Non-strict ignores how current the database is.
	if code, _, body := do(t, "GET", ts.URL+read+"50ms", "", ""); code != 200 {
		t.Fatalf("non-strict, behind: %d %s", code, body)
	}
	// Without freshness, level=none always reads locally.
	store.set(func(f *fakeStore) { f.lastContact = time.Time{} })
	if code, _, _ := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=none", "", ""); code != 200 {
		t.Fatalf("none: %d", code)
	}
}

func TestAutoLevel(t *testing.T) {
	store := &fakeStore{leaderID: "2", leaderAPI: ""} // follower, no leader URL
	store.nonVoter = true
	_, ts := newTestServer(t, store, nil)
	// A read-only member serves auto locally (none).
	if code, _, body := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=auto", "", ""); code != 200 {
		t.Fatalf("non-voter auto: %d %s", code, body)
	}
	// A voter treats auto as weak: leader-only, and no leader URL is known.
	store.set(func(f *fakeStore) { f.nonVoter = false })
	if code, _, body := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=auto", "", ""); code != 503 || body != `{"results":[],"error":"leader not found","code":"no_leader"}` {
		t.Fatalf("voter auto: %d %q", code, body)
	}
}

func TestMetricsAndExpvar(t *testing.T) {
	_, ts := newTestServer(t, leaderStore(), nil)
	do(t, "POST", ts.URL+"/db/execute", "", `["X", "Y"]`)
	do(t, "GET", ts.URL+"/nope", "", "")
	code, hdr, body := do(t, "GET", ts.URL+"/metrics", "", "")
	if code != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %s", code, hdr.Get("Content-Type"))
	}
	for _, want := range []string{
		`raftlite_http_requests_total{code="200",endpoint="execute"} 1`,
		`raftlite_http_requests_total{code="404",endpoint="other"} 1`,
		`raftlite_http_request_duration_seconds_bucket{endpoint="execute",le="+Inf"} 1`,
		`raftlite_http_request_duration_seconds_count{endpoint="execute"} 1`,
		`raftlite_http_statements_total{endpoint="execute"} 2`,
		`raftlite_build_info{go_version="go`,
		"# TYPE raftlite_http_request_duration_seconds histogram",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	code, hdr, body = do(t, "GET", ts.URL+"/debug/vars", "", "")
	var vars map[string]any
	if code != 200 || json.Unmarshal([]byte(body), &vars) != nil || vars["memstats"] == nil ||
		vars["http"].(map[string]any)["raftlite_http_requests_total.200.execute"] == nil {
		t.Fatalf("debug/vars: %d %.200s", code, body)
	}
	if hdr.Get("Content-Type") != contentTypeJSON {
		t.Fatalf("debug/vars Content-Type %q", hdr.Get("Content-Type"))
	}
	// rqlite's names, which its tests and dashboards read: backed by the
	// counter of the same event (one execute of two statements so far), 0
	// where raftlite has no such event.
	for path, want := range map[string]float64{
		"http.executions": 1, "http.execute_stmts_rx": 2, "store.num_snapshots": 0,
		"store.num_restores": 0, "cluster.num_client_force_new_conn": 0, "cluster.num_join_req": 0,
	} {
		group, name, _ := strings.Cut(path, ".")
		obj, _ := vars[group].(map[string]any)
		if got, ok := obj[name].(float64); !ok || got != want {
			t.Errorf("debug/vars %s = %v, want %v", path, obj[name], want)
		}
	}
	code, _, body = do(t, "GET", ts.URL+"/debug/vars?key=cmdline", "", "")
	vars = nil
	if err := json.Unmarshal([]byte(body), &vars); code != 200 || err != nil || len(vars) != 1 {
		t.Fatalf("debug/vars?key: %d %s", code, body)
	}
}

// TestPprof: Go's profiles are served under /debug/pprof/, as in rqlite.
func TestPprof(t *testing.T) {
	_, ts := newTestServer(t, leaderStore(), nil)
	for path, want := range map[string]string{
		"/debug/pprof/":                  "goroutine",
		"/debug/pprof/goroutine?debug=1": "goroutine profile:",
		"/debug/pprof/cmdline":           "",
	} {
		code, _, body := do(t, "GET", ts.URL+path, "", "")
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d %.200s", path, code, body)
		}
	}
}

// A linearizable read whose read index cannot be had never reads the local
// copy: it fails with a request-level error that says why.
func TestLinearizableReadIndexFailure(t *testing.T) {
	store := &fakeStore{leaderID: "2", leaderAPI: "http://127.0.0.1:1"}
	store.readIndexFn = func(context.Context) (uint64, error) {
		return 0, errors.New("cluster: read index from leader: dial tcp 127.0.0.1:1: i/o timeout")
	}
	_, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=linearizable", "", "")
	want := `{"results":[],"error":"linearizable read: no read index from the leader: cluster: read index from leader: dial tcp 127.0.0.1:1: i/o timeout","code":"unavailable"}`
	if code != 503 || body != want {
		t.Fatalf("unreachable leader: %d %s", code, body)
	}
	if store.queriedCount() != 0 {
		t.Fatal("the local copy was read")
	}

	// A timeout is a timeout.
	store.readIndexFn = func(ctx context.Context) (uint64, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}
	code, _, body = do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=linearizable&timeout=50ms", "", "")
	if code != 504 || !strings.Contains(body, `"code":"timeout"`) || !strings.Contains(body, "linearizable read") {
		t.Fatalf("timeout: %d %s", code, body)
	}
	if store.queriedCount() != 0 {
		t.Fatal("the local copy was read")
	}
}

// While an election is under way the read waits for a leader and asks again.
func TestLinearizableReadIndexWaitsForLeader(t *testing.T) {
	store := &fakeStore{} // no leader known yet
	var calls atomic.Int32
	store.readIndexFn = func(context.Context) (uint64, error) {
		if calls.Add(1) == 1 {
			store.set(func(f *fakeStore) { f.leaderID, f.leaderAPI = "2", "http://127.0.0.1:1" })
			return 0, api.ErrNoLeader
		}
		return 7, nil
	}
	_, ts := newTestServer(t, store, func(c *Config) { c.LeaderWait = 2 * time.Second })
	code, _, body := do(t, "GET", ts.URL+"/db/query?q=SELECT+1&level=linearizable", "", "")
	if code != 200 || calls.Load() != 2 || len(store.waited) != 1 || store.waited[0] != 7 {
		t.Fatalf("%d %s calls=%d waited=%v", code, body, calls.Load(), store.waited)
	}

	// Still no leader after the wait: 503 leader not found.
	store.set(func(f *fakeStore) { f.leaderID, f.leaderAPI = "", "" })
	store.readIndexFn = func(context.Context) (uint64, error) { return 0, api.ErrNoLeader }
	_, ts2 := newTestServer(t, store, func(c *Config) { c.LeaderWait = 50 * time.Millisecond })
	if code, _, body := do(t, "GET", ts2.URL+"/db/query?q=SELECT+1&level=linearizable", "", ""); code != 503 || body != `{"results":[],"error":"leader not found","code":"no_leader"}` {
		t.Fatalf("no leader: %d %q", code, body)
	}
}
