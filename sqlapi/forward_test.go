package sqlapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

// recorder remembers the requests a server received.
type recorder struct {
	mu   sync.Mutex
	reqs []*http.Request
}

func (r *recorder) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs = append(r.reqs, req.Clone(context.Background()))
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	})
}

func (r *recorder) last() *http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reqs) == 0 {
		return nil
	}
	return r.reqs[len(r.reqs)-1]
}

func (r *recorder) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.reqs) }

// pair is a leader and a follower that knows the leader's URL.
type pair struct {
	leader, follower       *fakeStore
	leaderTS, followerTS   *httptest.Server
	leaderRec, followerRec *recorder
}

func newPair(t *testing.T, mod func(*Config)) *pair {
	t.Helper()
	p := &pair{leader: leaderStore(), leaderRec: &recorder{}, followerRec: &recorder{}}
	api, ts := newTestServer(t, p.leader, mod)
	ts.Config.Handler = p.leaderRec.wrap(api)
	p.leaderTS = ts
	p.follower = &fakeStore{leaderID: "1", leaderAPI: strings.TrimPrefix(ts.URL, "http://")}
	fapi, fts := newTestServer(t, p.follower, mod)
	fts.Config.Handler = p.followerRec.wrap(fapi)
	p.followerTS = fts
	return p
}

func TestFollowerForwardsWrites(t *testing.T) {
	p := newPair(t, nil)
	code, hdr, body := do(t, "POST", p.followerTS.URL+"/db/execute?raft_index&timings", "application/json",
		`[["INSERT INTO t VALUES(?)", 7]]`, "Authorization", "Basic Zm9vOmJhcg==", "X-Custom", "yes")
	if code != 200 || !strings.HasPrefix(body, `{"results":[{"last_insert_id":1,"rows_affected":1}],"time":`) ||
		!strings.HasSuffix(body, `,"raft_index":42}`) {
		t.Fatalf("forwarded write: %d %s", code, body)
	}
	if p.follower.executedCount() != 0 || p.leader.executedCount() != 1 {
		t.Fatalf("executed on follower %d, leader %d", p.follower.executedCount(), p.leader.executedCount())
	}
	if got := p.leader.executed[0].Statements[0].Params[0].Value; got != int64(7) {
		t.Fatalf("leader got param %#v", got)
	}
	in := p.leaderRec.last()
	if in.Header.Get(forwardedHeader) != "1" || in.Header.Get("Authorization") != "Basic Zm9vOmJhcg==" ||
		in.Header.Get("X-Custom") != "yes" || in.URL.RawQuery != "raft_index&timings" || in.Method != "POST" {
		t.Fatalf("leader saw %s %s headers %v", in.Method, in.URL, in.Header)
	}
	if hdr.Get(servedByHeader) != p.leaderTS.URL || hdr.Get("Content-Type") != contentTypeJSON || hdr.Get(versionHeader) != "v-test" {
		t.Fatalf("answer headers %v", hdr)
	}
}

func TestFollowerForwardsLeaderReads(t *testing.T) {
	p := newPair(t, nil)
	for _, q := range []string{"level=weak", "level=strong", "level=linearizable", "level=bogus", ""} {
		code, _, body := do(t, "GET", p.followerTS.URL+"/db/query?q=SELECT+1&"+q, "", "")
		if code != 200 || body != `{"results":[{"columns":["n"],"types":["integer"],"values":[[1]]}]}` {
			t.Fatalf("%s: %d %s", q, code, body)
		}
	}
	if p.follower.queriedCount() != 0 {
		t.Fatalf("follower read locally %d times", p.follower.queriedCount())
	}
	// level=none is served locally.
	if code, _, _ := do(t, "GET", p.followerTS.URL+"/db/query?q=SELECT+1&level=none", "", ""); code != 200 || p.follower.queriedCount() != 1 {
		t.Fatalf("none: %d", code)
	}
	// A read-only /db/request on a follower goes to the leader too.
	if code, _, _ := do(t, "POST", p.followerTS.URL+"/db/request", "", `["SELECT 1"]`); code != 200 || p.follower.queriedCount() != 1 {
		t.Fatalf("request: %d", code)
	}
}

func TestForwardedStatusAndBodyUnchanged(t *testing.T) {
	p := newPair(t, nil)
	// A 400 from the leader (it validates again) comes back as is.
	p.follower.set(func(f *fakeStore) {}) // follower parses first, so send something only the leader rejects
	code, _, body := do(t, "POST", p.followerTS.URL+"/db/execute?queue&wait&timeout=2s", "", `[]`)
	if code != 200 || !strings.Contains(body, `"sequence_number":`) {
		t.Fatalf("queued flush marker via leader: %d %s", code, body)
	}
	if p.leaderRec.count() != 1 {
		t.Fatalf("leader saw %d requests", p.leaderRec.count())
	}
}

func TestRedirect(t *testing.T) {
	p := newPair(t, nil)
	code, hdr, _ := do(t, "POST", p.followerTS.URL+"/db/execute?redirect&transaction", "", `["X"]`)
	if code != http.StatusMovedPermanently || hdr.Get("Location") != p.leaderTS.URL+"/db/execute?redirect&transaction" {
		t.Fatalf("redirect: %d %q", code, hdr.Get("Location"))
	}
	if p.leaderRec.count() != 0 {
		t.Fatal("redirect forwarded the request")
	}
	code, hdr, _ = do(t, "GET", p.followerTS.URL+"/db/query?q=SELECT+1&redirect", "", "")
	if code != http.StatusMovedPermanently || hdr.Get("Location") != p.leaderTS.URL+"/db/query?q=SELECT+1&redirect" {
		t.Fatalf("read redirect: %d %q", code, hdr.Get("Location"))
	}
}

func TestForwardLoopPrevented(t *testing.T) {
	p := newPair(t, nil)
	// The "leader" lost leadership and believes the follower leads: a
	// forwarded request must not bounce back. It refuses with not_leader
	// (nothing proposed), so the follower waits for another leader, and
	// when none appears answers not_leader itself.
	p.leader.set(func(f *fakeStore) { f.leader = false; f.leaderAPI = p.followerTS.URL })
	code, _, body := do(t, "POST", p.followerTS.URL+"/db/execute", "", `["X"]`)
	if code != 503 || !strings.Contains(body, `"code":"not_leader"`) {
		t.Fatalf("loop: %d %q", code, body)
	}
	if p.leaderRec.count() != 1 || p.followerRec.count() != 1 {
		t.Fatalf("requests: leader %d follower %d", p.leaderRec.count(), p.followerRec.count())
	}
}

func TestNoLeaderAnd503(t *testing.T) {
	store := &fakeStore{}
	_, ts := newTestServer(t, store, nil)
	for _, path := range []string{"/db/execute", "/db/query", "/db/request"} {
		code, hdr, body := do(t, "POST", ts.URL+path, "", `["INSERT INTO t VALUES(1)"]`)
		if code != 503 || body != `{"results":[],"error":"leader not found","code":"no_leader"}` || hdr.Get(versionHeader) == "" {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	// The leader's URL is ours (stale metadata): refuse rather than loop.
	api, ts2 := newTestServer(t, store, nil)
	store.set(func(f *fakeStore) { f.leaderAPI = api.cfg.AdvAddr })
	if code, _, body := do(t, "POST", ts2.URL+"/db/execute", "", `["X"]`); code != 503 || body != `{"results":[],"error":"not leader","code":"not_leader"}` {
		t.Errorf("self as leader: %d %q", code, body)
	}
}

func TestForwardFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	store := &fakeStore{leaderID: "9", leaderAPI: dead}
	_, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "POST", ts.URL+"/db/execute", "", `["X"]`)
	if code != 502 || !strings.Contains(body, `"code":"forward_failed"`) || !strings.HasPrefix(body, `{"results":[],"error":"forwarding to the leader at http://`+dead) {
		t.Fatalf("%d %s", code, body)
	}

	// A leader that never answers: 504 within the request's timeout.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body) // lets the server notice the client going away
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}))
	defer hang.Close()
	store.set(func(f *fakeStore) { f.leaderAPI = hang.URL })
	start := time.Now()
	code, _, body = do(t, "POST", ts.URL+"/db/execute?timeout=200ms", "", `["X"]`)
	if code != 504 || !strings.Contains(body, `"code":"timeout"`) {
		t.Fatalf("hang: %d %s", code, body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("forward timeout took %v", d)
	}
}

func TestForwardWaitsForNewLeader(t *testing.T) {
	// The known leader's port is closed (it died; the request cannot have
	// reached it), and a new leader is elected while the request waits:
	// the write goes to the new leader, once.
	p := newPair(t, func(c *Config) { c.LeaderWait = 5 * time.Second })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	newLeader := strings.TrimPrefix(p.leaderTS.URL, "http://")
	p.follower.set(func(f *fakeStore) { f.leaderAPI = dead })
	go func() {
		// The election: the dead leader is replaced once the follower has
		// tried it and looks for another (its second lookup).
		for p.follower.leaderLookups() < 2 {
			runtime.Gosched()
		}
		p.follower.set(func(f *fakeStore) { f.leaderAPI = newLeader })
	}()
	code, _, body := do(t, "POST", p.followerTS.URL+"/db/execute?timeout=5s", "", `["X"]`)
	if code != 200 || p.leader.executedCount() != 1 {
		t.Fatalf("%d %s, executed %d", code, body, p.leader.executedCount())
	}

	// No leader at all: 503 once LeaderWait has passed, not a hang.
	q := newPair(t, func(c *Config) { c.LeaderWait = 50 * time.Millisecond })
	q.follower.set(func(f *fakeStore) { f.leaderAPI = "" })
	code, _, body = do(t, "POST", q.followerTS.URL+"/db/execute", "", `["X"]`)
	if code != 503 || !strings.Contains(body, "leader not found") {
		t.Fatalf("no leader: %d %s", code, body)
	}
}

func TestForwardGivesUpOnReplacedLeader(t *testing.T) {
	// The known leader accepts the request and never answers (paused);
	// meanwhile a new leader is elected. Without a session the client
	// learns at once that the outcome is unknown; with one, the request
	// goes to the new leader, which is safe because the state machine
	// answers a duplicate (client_id, seq) from memory.
	p := newPair(t, nil)
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		<-r.Context().Done()
	}))
	defer hang.Close()
	newLeader := strings.TrimPrefix(p.leaderTS.URL, "http://")
	for _, tc := range []struct {
		query string
		code  int
		want  string
	}{
		{"", 503, `"code":"leadership_lost"`},
		{"&client_id=c1&seq=1", 200, `"rows_affected":1`},
	} {
		p.follower.set(func(f *fakeStore) { f.leaderAPI = hang.URL; f.leaderAPICalls = 0 })
		go func() {
			for p.follower.leaderLookups() < 2 {
				runtime.Gosched()
			}
			p.follower.set(func(f *fakeStore) { f.leaderAPI = newLeader })
		}()
		start := time.Now()
		code, _, body := do(t, "POST", p.followerTS.URL+"/db/execute?timeout=20s"+tc.query, "", `["X"]`)
		if code != tc.code || !strings.Contains(body, tc.want) {
			t.Fatalf("%q: %d %s", tc.query, code, body)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%q: took %v, the whole timeout", tc.query, d)
		}
	}
}

func TestForwardNotLeaderFromExecute(t *testing.T) {
	// The store believed it led but Execute refused (nothing proposed):
	// the request is forwarded.
	p := newPair(t, nil)
	p.follower.set(func(f *fakeStore) { f.leader = true })
	p.follower.set(func(f *fakeStore) {
		f.execFn = func(context.Context, *api.Request) (*api.Response, error) { return nil, api.ErrNotLeader }
	})
	code, _, body := do(t, "POST", p.followerTS.URL+"/db/execute", "", `["X"]`)
	if code != 200 || p.leader.executedCount() != 1 {
		t.Fatalf("%d %s", code, body)
	}
}

// The node's errors are api's: a wrapped "not leader" is forwarded, and a
// cause (api.ErrHalted) answers its outcome's status and code with its own
// message.
func TestErrorMapping(t *testing.T) {
	p := newPair(t, nil)
	// The follower believes it leads, but its Execute says that it does
	// not: the write goes to the leader.
	p.follower.set(func(f *fakeStore) {
		f.leader = true
		f.execFn = func(context.Context, *api.Request) (*api.Response, error) {
			return nil, fmt.Errorf("execute: %w", api.ErrNotLeader)
		}
	})
	if code, _, body := do(t, "POST", p.followerTS.URL+"/db/execute", "", `["X"]`); code != 200 || p.leader.executedCount() != 1 {
		t.Fatalf("wrapped not-leader: %d %s", code, body)
	}
	p.follower.set(func(f *fakeStore) {
		f.execFn = func(context.Context, *api.Request) (*api.Response, error) {
			return nil, fmt.Errorf("cluster: execute: %w", api.ErrHalted)
		}
	})
	code, _, body := do(t, "POST", p.followerTS.URL+"/db/execute", "", `["X"]`)
	if code != 503 || body != `{"results":[],"error":"cluster: execute: state machine halted on this node","code":"unavailable"}` {
		t.Fatalf("halted: %d %s", code, body)
	}
}
