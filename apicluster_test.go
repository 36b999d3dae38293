package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/fsm"
	"github.com/raftlite/raftlite/sqlapi"
)

// apiNode is one node of an in-process cluster wired as serve wires it: an
// FSM, a cluster node over real TCP and the HTTP API on a real listener.
type apiNode struct {
	t    *testing.T
	id   string
	url  string
	db   *fsm.FSM
	node *cluster.Node
	api  *sqlapi.Server
	srv  *http.Server
	// intercept, when set, serves a request instead of the API (a test's
	// way of making this node misbehave at a precise moment).
	intercept atomic.Pointer[func(http.ResponseWriter, *http.Request)]
	killOnce  sync.Once
}

// ServeHTTP serves the API unless an interception is installed.
func (n *apiNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h := n.intercept.Load(); h != nil {
		(*h)(w, r)
		return
	}
	n.api.ServeHTTP(w, r)
}

// kill stops the node as abruptly as the process dying would: the HTTP
// listener and every connection first, then Raft without a leadership
// hand-over.
func (n *apiNode) kill() {
	n.killOnce.Do(func() {
		if err := n.srv.Close(); err != nil {
			n.t.Errorf("close HTTP server of %s: %v", n.id, err)
		}
		if err := n.api.Close(); err != nil {
			n.t.Errorf("close API of %s: %v", n.id, err)
		}
		if err := n.node.Close(); err != nil {
			n.t.Errorf("close cluster node %s: %v", n.id, err)
		}
		if err := n.db.Close(); err != nil {
			n.t.Errorf("close FSM of %s: %v", n.id, err)
		}
	})
}

// testLog collects a test's log lines and prints them only if it fails.
type testLog struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// String returns what was written so far.
func (l *testLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newTestLogger(t *testing.T) *slog.Logger {
	l := &testLog{}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("RAFTLITE_TEST_LOGS") != "" {
			l.mu.Lock()
			t.Logf("logs:\n%s", l.buf.String())
			l.mu.Unlock()
		}
	})
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// startAPICluster starts size nodes with -bootstrap-expect size and waits
// until all of them know the leader's API address.
func startAPICluster(t *testing.T, size int, auth *sqlapi.Auth) []*apiNode {
	t.Helper()
	logger := newTestLogger(t)
	raftLns := make([]net.Listener, size)
	httpLns := make([]net.Listener, size)
	var joins []string
	for i := range size {
		raftLns[i], httpLns[i] = listenLocal(t), listenLocal(t)
		joins = append(joins, raftLns[i].Addr().String())
	}
	nodes := make([]*apiNode, size)
	errs := make([]error, size)
	var wg sync.WaitGroup
	for i := range size {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = openAPINode(t, fmt.Sprintf("node%d", i+1), raftLns[i], httpLns[i], joins, auth, logger)
		}()
	}
	wg.Wait()
	for i, n := range nodes {
		if n != nil {
			t.Cleanup(n.kill)
		} else {
			httpLns[i].Close()
		}
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	waitLeader(t, nodes)
	return nodes
}

func openAPINode(t *testing.T, id string, raftLn, httpLn net.Listener, joins []string, auth *sqlapi.Auth, logger *slog.Logger) (*apiNode, error) {
	dir := t.TempDir()
	logger = logger.With("test_node", id)
	db, err := fsm.Open(fsm.Config{Dir: filepath.Join(dir, "db"), Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open FSM of %s: %w", id, err)
	}
	url := apiURL(httpLn.Addr().String(), "http")
	node, err := cluster.Open(cluster.Config{
		NodeID: id, Listener: raftLn, APIAdvAddr: url, Dir: dir,
		Join: joins, BootstrapExpect: len(joins), CloseTimeout: 5 * time.Second,
	}, db, logger)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open cluster node %s: %w", id, err)
	}
	n := &apiNode{t: t, id: id, url: url, db: db, node: node}
	n.api = sqlapi.New(sqlapi.Config{
		Addr: httpLn.Addr().String(), AdvAddr: url, Version: "v-test", Logger: logger,
		Auth: auth,
	}, node)
	n.srv = &http.Server{Handler: n, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = n.srv.Serve(httpLn) }()
	return n, nil
}

// waitLeader waits until every live node knows the same leader and its API
// address, and returns the leader.
func waitLeader(t *testing.T, nodes []*apiNode) *apiNode {
	t.Helper()
	var leader *apiNode
	waitUntil(t, 15*time.Second, "a leader every node agrees on", func() bool {
		leader = nil
		want := ""
		for _, n := range nodes {
			addr := n.node.LeaderAPIAddr()
			if addr == "" || (want != "" && addr != want) {
				return false
			}
			want = addr
			if n.node.IsLeader() {
				leader = n
			}
		}
		return leader != nil && leader.url == want
	})
	return leader
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// apiAnswer is a decoded API response.
type apiAnswer struct {
	status      int
	contentType string
	body        string
	// Error and Code are the top-level "error" and "code" of a JSON body.
	Error        string `json:"error"`
	Code         string `json:"code"`
	Deduplicated bool   `json:"deduplicated"`
	Results      []struct {
		Values [][]any `json:"values"`
		Error  string  `json:"error"`
	} `json:"results"`
}

// call sends one request (user/password for basic auth when not "").
func call(t *testing.T, method, url, body, user, password string) apiAnswer {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	a := apiAnswer{status: resp.StatusCode, contentType: resp.Header.Get("Content-Type"), body: string(raw)}
	if strings.HasPrefix(a.contentType, "application/json") {
		_ = json.Unmarshal(raw, &a)
	}
	return a
}

// mustExecute runs a write through url and fails the test unless it
// succeeded.
func mustExecute(t *testing.T, url, body string) {
	t.Helper()
	if a := call(t, "POST", url+"/db/execute", body, "", ""); a.status != 200 || a.Error != "" || strings.Contains(a.body, `"error"`) {
		t.Fatalf("execute %s at %s: %d %s", body, url, a.status, a.body)
	}
}

// followers returns the nodes other than leader.
func followers(nodes []*apiNode, leader *apiNode) []*apiNode {
	var out []*apiNode
	for _, n := range nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

// TestFreshnessStrictOnFollower: a level=none read with freshness and
// freshness_strict on a follower is served while the follower is in
// contact with the leader and caught up, and refused with stale_read once
// it has not heard from a leader for longer than freshness.
func TestFreshnessStrictOnFollower(t *testing.T) {
	nodes := startAPICluster(t, 3, nil)
	leader := waitLeader(t, nodes)
	mustExecute(t, leader.url, `["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", "INSERT INTO t(v) VALUES('one')"]`)
	follower := followers(nodes, leader)[0]
	waitUntil(t, 10*time.Second, "the follower to apply the write", func() bool {
		return follower.node.AppliedIndex() >= leader.node.AppliedIndex()
	})

	const strictRead = "/db/query?q=SELECT+COUNT(*)+FROM+t&level=none&freshness=1s&freshness_strict"
	for _, path := range []string{strictRead, "/db/query?q=SELECT+COUNT(*)+FROM+t&level=none&freshness=1s"} {
		a := call(t, "GET", follower.url+path, "", "", "")
		if a.status != 200 || len(a.Results) != 1 || len(a.Results[0].Values) != 1 || a.Results[0].Values[0][0] != 1.0 {
			t.Fatalf("follower in contact, %s: %d %s", path, a.status, a.body)
		}
	}

	// Cut the follower off: with the two others gone there is no leader.
	for _, n := range followers(nodes, follower) {
		n.kill()
	}
	cutAt := time.Now()
	waitUntil(t, 10*time.Second, "the cut-off follower to refuse the strict read", func() bool {
		a := call(t, "GET", follower.url+strictRead, "", "", "")
		switch {
		case a.status == 200 && time.Since(cutAt) < time.Second:
			return false // not yet a second without contact
		case a.status == 503 && a.Code == "stale_read":
			return true
		}
		t.Fatalf("strict read %s after the cut: %d %s", time.Since(cutAt), a.status, a.body)
		return false
	})
}

// lastLogIndex is the index of the last entry in n's Raft log.
func lastLogIndex(t *testing.T, n *apiNode) uint64 {
	t.Helper()
	raftStats, _ := n.node.Stats()["raft"].(map[string]any)
	idx, ok := raftStats["last_log_index"].(uint64)
	if !ok {
		t.Fatalf("store.raft.last_log_index of %s: %v", n.id, raftStats["last_log_index"])
	}
	return idx
}

// TestChecksumMarkerNeedsExecute: POST /db/checksum appends a checksum
// marker to the Raft log, so it needs the execute permission, like every
// other request that appends to the log; reading a checksum (GET) needs
// status. Anonymous users granted status only cannot grow the log.
func TestChecksumMarkerNeedsExecute(t *testing.T) {
	auth, err := sqlapi.ParseAuth(strings.NewReader(`[
		{"username": "*", "perms": ["status", "ready"]},
		{"username": "watcher", "password": "w", "perms": ["status"]},
		{"username": "writer", "password": "x", "perms": ["execute"]}
	]`))
	if err != nil {
		t.Fatal(err)
	}
	nodes := startAPICluster(t, 3, auth)
	leader := waitLeader(t, nodes)
	follower := followers(nodes, leader)[0]

	if a := call(t, "GET", follower.url+"/db/checksum", "", "", ""); a.status != 200 {
		t.Fatalf("anonymous GET /db/checksum: %d %s", a.status, a.body)
	}
	before := lastLogIndex(t, leader)
	for _, target := range []*apiNode{leader, follower} {
		for _, user := range []string{"", "watcher"} {
			if a := call(t, "POST", target.url+"/db/checksum", "", user, "w"); a.status != 401 {
				t.Fatalf("POST /db/checksum on %s as %q: %d %s, want 401", target.id, user, a.status, a.body)
			}
		}
	}
	if after := lastLogIndex(t, leader); after != before {
		t.Fatalf("refused checksum requests grew the log from %d to %d", before, after)
	}
	a := call(t, "POST", follower.url+"/db/checksum", "", "writer", "x")
	var reply struct {
		Index    uint64 `json:"index"`
		Checksum string `json:"checksum"`
	}
	if err := json.Unmarshal([]byte(a.body), &reply); a.status != 200 || err != nil || reply.Index <= before || reply.Checksum == "" {
		t.Fatalf("POST /db/checksum as writer: %d %s", a.status, a.body)
	}
}

// countRows counts the rows of t on n with a linearizable read.
func countRows(t *testing.T, n *apiNode) float64 {
	t.Helper()
	a := call(t, "GET", n.url+"/db/query?level=linearizable&q=SELECT+COUNT(*)+FROM+t", "", "", "")
	if a.status != 200 || len(a.Results) != 1 || len(a.Results[0].Values) != 1 {
		t.Fatalf("count rows on %s: %d %s", n.id, a.status, a.body)
	}
	v, _ := a.Results[0].Values[0][0].(float64)
	return v
}

// dieAfterApplying makes leader apply the next write it is sent and then
// die before answering it, as a leader killed at that moment would.
func dieAfterApplying(leader *apiNode) {
	var once sync.Once
	hook := func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/db/execute" {
			leader.api.ServeHTTP(w, r)
			return
		}
		leader.api.ServeHTTP(httptest.NewRecorder(), r)
		once.Do(func() { go leader.kill() })
		<-r.Context().Done() // the connection dies with the node
	}
	leader.intercept.Store(&hook)
}

// TestWriteThroughFollowerWhileLeaderDies: a write sent to a follower while
// the leader dies. With a session (client_id/seq) the follower waits for
// the new leader within the request's timeout and resends it there, and it
// is applied exactly once, also when the old leader had applied it before
// dying. Without a session it is resent only when it certainly never
// reached the old leader; otherwise the client hears that the outcome is
// unknown.
func TestWriteThroughFollowerWhileLeaderDies(t *testing.T) {
	const insert = `["INSERT INTO t(v) VALUES('once')"]`
	setup := func(t *testing.T) (leader, follower *apiNode, count func() float64) {
		nodes := startAPICluster(t, 3, nil)
		leader = waitLeader(t, nodes)
		mustExecute(t, leader.url, `["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"]`)
		survivors := followers(nodes, leader)
		count = func() float64 { return countRows(t, waitLeader(t, survivors)) }
		return leader, survivors[0], count
	}
	sessionCases := []struct {
		name      string
		failure   func(leader *apiNode)
		wantDedup bool // the old leader applied it, so the resend is answered from the session
	}{
		{"session, leader killed just before", (*apiNode).kill, false},
		{"session, leader applied it and died before answering", dieAfterApplying, true},
	}
	for _, tc := range sessionCases {
		t.Run(tc.name, func(t *testing.T) {
			leader, follower, count := setup(t)
			tc.failure(leader)
			a := call(t, "POST", follower.url+"/db/execute?client_id=c1&seq=1&timeout=20s", insert, "", "")
			if a.status != 200 || a.Error != "" || len(a.Results) != 1 || a.Results[0].Error != "" || a.Deduplicated != tc.wantDedup {
				t.Fatalf("session write: %d %s, want 200 with deduplicated=%v", a.status, a.body, tc.wantDedup)
			}
			if n := count(); n != 1 {
				t.Fatalf("%v rows, want 1", n)
			}
		})
	}
	t.Run("no session, leader applied it and died before answering", func(t *testing.T) {
		leader, follower, count := setup(t)
		dieAfterApplying(leader)
		a := call(t, "POST", follower.url+"/db/execute?timeout=20s", insert, "", "")
		if a.status != 502 || a.Code != "forward_failed" || !strings.Contains(a.Error, "may or may not have been applied") {
			t.Fatalf("write without a session whose leader died answering: %d %s, want 502 forward_failed saying the outcome is unknown", a.status, a.body)
		}
		if n := count(); n != 1 {
			t.Fatalf("%v rows, want 1 (applied by the old leader, not resent)", n)
		}
	})
}
