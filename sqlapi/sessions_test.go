package sqlapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// sessStore is a leader over a real state machine (golden_test.go's
// fsmStore) that records the requests it executes.
type sessStore struct {
	*fsmStore
	mu       sync.Mutex
	executed []*api.Request
}

func newSessStore(t *testing.T) *sessStore {
	t.Helper()
	f, err := fsm.Open(fsm.Config{Dir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return &sessStore{fsmStore: &fsmStore{f: f}}
}

func (s *sessStore) Execute(ctx context.Context, req *api.Request) (*api.Response, error) {
	s.mu.Lock()
	s.executed = append(s.executed, req)
	s.mu.Unlock()
	return s.fsmStore.Execute(ctx, req)
}

func (s *sessStore) requests() []*api.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*api.Request(nil), s.executed...)
}

// A write sent to the leader and then, with the same client_id and seq, to
// a follower (which forwards it) is applied once; the second answer is the
// first one, marked deduplicated.
func TestSessionThroughLeaderThenFollower(t *testing.T) {
	leader := newSessStore(t)
	rec := &recorder{}
	lapi, lts := newTestServer(t, leader, nil)
	lts.Config.Handler = rec.wrap(lapi)
	follower := &fakeStore{leaderID: "1", leaderAPI: strings.TrimPrefix(lts.URL, "http://")}
	_, fts := newTestServer(t, follower, nil)

	if code, _, body := do(t, "POST", lts.URL+"/db/execute", "", `["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]`); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	const q = "/db/execute?client_id=abc&seq=1&raft_index"
	stmt := `[["INSERT INTO t(v) VALUES(?)", "once"]]`
	code, _, first := do(t, "POST", lts.URL+q, "", stmt)
	if code != 200 || first != `{"results":[{"last_insert_id":1,"rows_affected":1}],"raft_index":2}` {
		t.Fatalf("first: %d %s", code, first)
	}
	code, hdr, second := do(t, "POST", fts.URL+q, "", stmt)
	if code != 200 || second != `{"results":[{"last_insert_id":1,"rows_affected":1}],"raft_index":2,"deduplicated":true}` {
		t.Fatalf("second via follower: %d %s", code, second)
	}
	if hdr.Get(servedByHeader) != lts.URL {
		t.Fatalf("second not served by the leader: %v", hdr)
	}
	if in := rec.last(); in.URL.Query().Get("client_id") != "abc" || in.URL.Query().Get("seq") != "1" {
		t.Fatalf("forwarded request lost its session: %s", in.URL)
	}
	if reqs := leader.requests(); reqs[len(reqs)-1].ClientID != "abc" || reqs[len(reqs)-1].Seq != 1 {
		t.Fatalf("leader executed %+v", reqs[len(reqs)-1])
	}
	code, _, body := do(t, "GET", lts.URL+"/db/query?q=SELECT+COUNT(*)+FROM+t", "", "")
	if code != 200 || !strings.Contains(body, `"values":[[1]]`) {
		t.Fatalf("count: %d %s", code, body)
	}
	// /db/request writes carry the session too.
	code, _, body = do(t, "POST", fts.URL+"/db/request?client_id=abc&seq=2", "", `["INSERT INTO t(v) VALUES('r')"]`)
	if code != 200 || strings.Contains(body, "deduplicated") {
		t.Fatalf("request: %d %s", code, body)
	}
	code, _, body = do(t, "POST", fts.URL+"/db/request?client_id=abc&seq=2", "", `["INSERT INTO t(v) VALUES('r')"]`)
	if code != 200 || !strings.Contains(body, `"deduplicated":true`) {
		t.Fatalf("request retry: %d %s", code, body)
	}

	// Session errors from the state machine, through the follower too.
	for _, c := range []struct {
		base, q, want string
	}{
		{lts.URL, "client_id=abc&seq=1", `{"results":[],"error":"sequence number already superseded","code":"seq_superseded"}`},
		{fts.URL, "client_id=abc&seq=1", `{"results":[],"error":"sequence number already superseded","code":"seq_superseded"}`},
		{lts.URL, "client_id=nobody&seq=5", `{"results":[],"error":"unknown or expired session","code":"session_expired"}`},
		{fts.URL, "client_id=nobody&seq=5", `{"results":[],"error":"unknown or expired session","code":"session_expired"}`},
	} {
		code, _, body := do(t, "POST", c.base+"/db/execute?"+c.q, "", stmt)
		if code != 400 || body != c.want {
			t.Fatalf("%s: %d %s, want 400 %s", c.q, code, body, c.want)
		}
	}
	code, _, body = do(t, "GET", lts.URL+"/db/query?q=SELECT+COUNT(*)+FROM+t", "", "")
	if code != 200 || !strings.Contains(body, `"values":[[2]]`) {
		t.Fatalf("count: %d %s", code, body)
	}
}

// The fsm's session errors are recognised by identity, even wrapped, and
// by their message.
func TestSessionErrorsByIdentity(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, nil)
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("entry 9: %w", api.ErrSeqSuperseded), 400, "seq_superseded"},
		{fmt.Errorf("entry 9: %w", api.ErrSessionExpired), 400, "session_expired"},
		{api.ErrBadSequence, 400, "bad_request"},
		{fmt.Errorf("entry 9: %w", api.ErrSeqReused), 409, "seq_reused"},
	} {
		store.set(func(f *fakeStore) {
			f.execFn = func(context.Context, *api.Request) (*api.Response, error) { return &api.Response{Err: c.err}, nil }
		})
		code, _, body := do(t, "POST", ts.URL+"/db/execute?client_id=x&seq=3", "", `["X"]`)
		if code != c.status || !strings.Contains(body, `"code":"`+c.code+`"`) {
			t.Errorf("%v: %d %s", c.err, code, body)
		}
	}
}

// The queue's batches run in the queue's own session: a real state machine
// sees each batch's client_id and consecutive seqs.
func TestQueueUsesItsOwnSession(t *testing.T) {
	leader := newSessStore(t)
	_, ts := newTestServer(t, leader, nil)
	if code, _, body := do(t, "POST", ts.URL+"/db/execute", "", `["CREATE TABLE t (v)"]`); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	for i := range 3 {
		code, _, body := do(t, "POST", ts.URL+"/db/execute?queue&wait", "", fmt.Sprintf(`["INSERT INTO t VALUES(%d)"]`, i))
		if code != 200 {
			t.Fatalf("queued: %d %s", code, body)
		}
	}
	var id string
	for i, req := range leader.requests()[1:] {
		if !strings.HasPrefix(req.ClientID, "queue-") || req.Seq != uint64(i+1) || (id != "" && req.ClientID != id) {
			t.Fatalf("queued batch %d ran as (%q, %d)", i, req.ClientID, req.Seq)
		}
		id = req.ClientID
	}
	if st := leader.f.SessionStats(); st["live"] != int64(1) {
		t.Fatalf("session stats %v", st)
	}
}

// The same client_id and seq with a different body (or a different
// transaction flag) is not a retry: 409 seq_reused, through a follower
// too, and nothing runs. The true retry is still deduplicated.
func TestSessionSeqReusedIsConflict(t *testing.T) {
	leader := newSessStore(t)
	_, lts := newTestServer(t, leader, nil)
	follower := &fakeStore{leaderID: "1", leaderAPI: strings.TrimPrefix(lts.URL, "http://")}
	_, fts := newTestServer(t, follower, nil)
	if code, _, body := do(t, "POST", lts.URL+"/db/execute", "", `["CREATE TABLE t (v)"]`); code != 200 {
		t.Fatalf("create: %d %s", code, body)
	}
	const q = "/db/execute?client_id=reuser&seq=1"
	if code, _, body := do(t, "POST", lts.URL+q, "", `[["INSERT INTO t VALUES(?)", "a"]]`); code != 200 || strings.Contains(body, "error") {
		t.Fatalf("first: %d %s", code, body)
	}
	const want = `{"results":[],"error":"sequence number already used by a different request","code":"seq_reused"}`
	for _, c := range []struct{ base, q, body string }{
		{lts.URL, q, `[["INSERT INTO t VALUES(?)", "b"]]`},
		{fts.URL, q, `[["INSERT INTO t VALUES(?)", "b"]]`},
		{lts.URL, q + "&transaction", `[["INSERT INTO t VALUES(?)", "a"]]`},
		{fts.URL, strings.Replace(q, "execute", "request", 1), `["INSERT INTO t VALUES('a')"]`},
	} {
		code, hdr, body := do(t, "POST", c.base+c.q, "", c.body)
		if code != http.StatusConflict || body != want || !strings.HasPrefix(hdr.Get("Content-Type"), "application/json") {
			t.Fatalf("%s %s %s: %d %s, want 409 %s", c.base, c.q, c.body, code, body, want)
		}
	}
	code, _, body := do(t, "POST", fts.URL+q, "", `[["INSERT INTO t VALUES(?)", "a"]]`)
	if code != 200 || !strings.Contains(body, `"deduplicated":true`) {
		t.Fatalf("true retry: %d %s", code, body)
	}
	// The digest is of the parsed request, not of the body's bytes.
	const named = "/db/execute?client_id=named&seq=1"
	if code, _, body := do(t, "POST", lts.URL+named, "", `[["INSERT INTO t VALUES(:a || :b)", {"a": "p", "b": "q"}]]`); code != 200 || strings.Contains(body, "deduplicated") {
		t.Fatalf("named: %d %s", code, body)
	}
	code, _, body = do(t, "POST", fts.URL+named, "", `[ [ "INSERT INTO t VALUES(:a || :b)",{"b":"q","a":"p"} ] ]`)
	if code != 200 || !strings.Contains(body, `"deduplicated":true`) {
		t.Fatalf("named retry, reordered: %d %s", code, body)
	}
	code, _, body = do(t, "GET", lts.URL+"/db/query?q=SELECT+v+FROM+t", "", "")
	if code != 200 || !strings.Contains(body, `"values":[["a"],["pq"]]`) {
		t.Fatalf("table: %d %s", code, body)
	}
}
