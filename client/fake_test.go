package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeCluster emulates the replicated state of a raftlite cluster closely
// enough for the client: one shared "database" (a list of inserted values),
// the Raft index, and the session table of exactly-once writes (the last seq
// of each client_id and its remembered response). Several fakeNodes serve it,
// like the members of a cluster do.
type fakeCluster struct {
	t *testing.T

	mu          sync.Mutex
	index       uint64
	rows        []any
	sessions    map[string]*fakeSession
	calls       []fakeCall
	inflight    map[string]map[uint64]int // client_id -> seq -> requests being handled
	maxInflight int                       // most distinct seqs of one client_id handled at once

	// unknownSessionStatus is the status of "unknown or expired session"
	// answers (400 by default; 200 puts the error in the body only).
	unknownSessionStatus int
	// writeDelay is how long a write waits between arrival and commit.
	writeDelay time.Duration
}

type fakeSession struct {
	seq  uint64
	resp map[string]any
}

// fakeCall records one request a node received.
type fakeCall struct {
	node   string
	method string
	path   string
	query  url.Values
	body   string
}

// fakeNode is one member serving a fakeCluster, with fault hooks.
type fakeNode struct {
	c    *fakeCluster
	srv  *httptest.Server
	name string

	hookMu sync.Mutex
	// before runs first; when it returns true the request is done (it
	// answered, hung or cut the connection).
	before func(w http.ResponseWriter, r *http.Request) bool
	// afterCommit runs after a write was applied, before its answer is
	// written; when it returns true the request is done.
	afterCommit func(w http.ResponseWriter, r *http.Request) bool
}

func newFakeCluster(t *testing.T) *fakeCluster {
	return &fakeCluster{
		t:                    t,
		sessions:             map[string]*fakeSession{},
		inflight:             map[string]map[uint64]int{},
		unknownSessionStatus: http.StatusBadRequest,
	}
}

func (c *fakeCluster) node(name string) *fakeNode {
	n := &fakeNode{c: c, name: name}
	n.srv = httptest.NewServer(n)
	c.t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) setBefore(f func(w http.ResponseWriter, r *http.Request) bool) {
	n.hookMu.Lock()
	defer n.hookMu.Unlock()
	n.before = f
}

func (n *fakeNode) setAfterCommit(f func(w http.ResponseWriter, r *http.Request) bool) {
	n.hookMu.Lock()
	defer n.hookMu.Unlock()
	n.afterCommit = f
}

func (n *fakeNode) hooks() (before, after func(w http.ResponseWriter, r *http.Request) bool) {
	n.hookMu.Lock()
	defer n.hookMu.Unlock()
	return n.before, n.afterCommit
}

// forgetSessions expires every session, as the server does after idleness.
func (c *fakeCluster) forgetSessions() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sessions = map[string]*fakeSession{}
}

func (c *fakeCluster) rowValues() []any {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]any(nil), c.rows...)
}

func (c *fakeCluster) callLog() []fakeCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]fakeCall(nil), c.calls...)
}

// callsTo returns the recorded calls of one path.
func (c *fakeCluster) callsTo(path string) []fakeCall {
	var out []fakeCall
	for _, call := range c.callLog() {
		if call.path == path {
			out = append(out, call)
		}
	}
	return out
}

func resetConn(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // close with RST: "connection reset by peer"
	}
	conn.Close()
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-RQLITE-VERSION", "v0.0.0-fake")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (n *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := n.c
	c.mu.Lock()
	c.calls = append(c.calls, fakeCall{node: n.name, method: r.Method, path: r.URL.Path, query: r.URL.Query(), body: string(body)})
	c.mu.Unlock()

	before, after := n.hooks()
	if before != nil && before(w, r) {
		return
	}
	switch r.URL.Path {
	case "/db/execute", "/db/request":
		n.serveWrite(w, r, body, after)
	case "/db/query":
		n.serveQuery(w, r, body)
	case "/leader":
		if r.Method == http.MethodPost {
			writeJSON(w, http.StatusOK, map[string]any{})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": "1", "api_addr": "http://127.0.0.1:4001", "addr": "127.0.0.1:4002", "voter": true, "reachable": true, "leader": true, "time": 0.0013})
	case "/nodes":
		nodes := []map[string]any{
			{"id": "1", "api_addr": "http://127.0.0.1:4001", "addr": "127.0.0.1:4002", "voter": true, "reachable": true, "leader": true, "time": 0.001},
			{"id": "2", "api_addr": "http://127.0.0.1:4011", "addr": "127.0.0.1:4012", "voter": true, "reachable": false, "error": "connection refused"},
		}
		if r.URL.Query().Has("ver") {
			writeJSON(w, http.StatusOK, map[string]any{"nodes": nodes})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"2": nodes[1], "1": nodes[0]})
	case "/status":
		writeJSON(w, http.StatusOK, map[string]any{"store": map[string]any{"node_id": "1", "raft": map[string]any{"state": "Leader"}}})
	case "/readyz":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "[+]node ok\n[+]leader ok\n[+]store ok\n")
	case "/remove":
		w.WriteHeader(http.StatusOK)
	default:
		http.NotFound(w, r)
	}
}

// parseStatements decodes a request body the way the server does, enough
// for the fake's needs.
func parseStatements(body []byte) ([][]any, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, fmt.Errorf("invalid JSON body")
	}
	if len(raw) == 0 {
		return nil, fmt.Errorf("no statements")
	}
	var out [][]any
	for _, el := range raw {
		var s string
		if json.Unmarshal(el, &s) == nil {
			out = append(out, []any{s})
			continue
		}
		dec := json.NewDecoder(strings.NewReader(string(el)))
		dec.UseNumber()
		var arr []any
		if err := dec.Decode(&arr); err != nil || len(arr) == 0 {
			return nil, fmt.Errorf("invalid request")
		}
		if _, ok := arr[0].(string); !ok {
			return nil, fmt.Errorf("invalid request")
		}
		out = append(out, arr)
	}
	return out, nil
}

func (n *fakeNode) serveWrite(w http.ResponseWriter, r *http.Request, body []byte, after func(http.ResponseWriter, *http.Request) bool) {
	c := n.c
	q := r.URL.Query()
	stmts, err := parseStatements(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	id := q.Get("client_id")
	var seq uint64
	if id != "" {
		seq, err = strconv.ParseUint(q.Get("seq"), 10, 64)
		if err != nil || seq == 0 {
			http.Error(w, "invalid seq", http.StatusBadRequest)
			return
		}
	}
	c.mu.Lock()
	c.arrive(id, seq)
	c.mu.Unlock()
	if c.writeDelay > 0 {
		time.Sleep(c.writeDelay) // widen the window in which writes overlap
	}

	c.mu.Lock()
	if id != "" {
		s := c.sessions[id]
		switch {
		case s == nil && seq > 1:
			c.settle(id, seq)
			c.mu.Unlock()
			writeJSON(w, c.unknownSessionStatus, map[string]any{"results": []any{}, "error": "unknown or expired session", "code": "session_expired"})
			return
		case s != nil && seq == s.seq:
			resp := map[string]any{}
			for k, v := range s.resp {
				resp[k] = v
			}
			resp["deduplicated"] = true
			c.settle(id, seq)
			c.mu.Unlock()
			writeJSON(w, http.StatusOK, resp)
			return
		case s != nil && seq < s.seq:
			c.settle(id, seq)
			c.mu.Unlock()
			writeJSON(w, http.StatusBadRequest, map[string]any{"results": []any{}, "error": "sequence number already superseded", "code": "seq_superseded"})
			return
		}
	}
	c.index++
	results := []any{}
	for _, st := range stmts {
		sql := st[0].(string)
		switch {
		case strings.HasPrefix(sql, "INSERT"):
			var v any
			if len(st) > 1 {
				v = st[1]
			}
			c.rows = append(c.rows, v)
			results = append(results, map[string]any{"last_insert_id": len(c.rows), "rows_affected": 1})
		case strings.HasPrefix(sql, "FAIL"):
			results = append(results, map[string]any{"error": "no such table: nope"})
		default:
			results = append(results, map[string]any{})
		}
	}
	resp := map[string]any{"results": results}
	if q.Has("raft_index") {
		resp["raft_index"] = c.index
	}
	if id != "" {
		c.sessions[id] = &fakeSession{seq: seq, resp: resp}
	}
	c.settle(id, seq)
	c.mu.Unlock()

	if after != nil && after(w, r) {
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// arrive and settle bracket a session write from its arrival to its commit
// or rejection: a retry may overlap its own earlier attempt (same seq), but
// two different seqs of one session must never be in flight together.
// The caller holds c.mu.
func (c *fakeCluster) arrive(id string, seq uint64) {
	if id == "" {
		return
	}
	if c.inflight[id] == nil {
		c.inflight[id] = map[uint64]int{}
	}
	c.inflight[id][seq]++
	c.maxInflight = max(c.maxInflight, len(c.inflight[id]))
}

func (c *fakeCluster) settle(id string, seq uint64) {
	if id == "" {
		return
	}
	if c.inflight[id][seq]--; c.inflight[id][seq] == 0 {
		delete(c.inflight[id], seq)
	}
}

func (n *fakeNode) serveQuery(w http.ResponseWriter, r *http.Request, body []byte) {
	if _, err := parseStatements(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rows := n.c.rowValues()
	values := make([][]any, len(rows))
	for i, v := range rows {
		values[i] = []any{v}
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": []any{
		map[string]any{"columns": []string{"v"}, "types": []string{"text"}, "values": values},
	}})
}
