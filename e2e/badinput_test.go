//go:build linux

package e2e

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestBadInput feeds malformed, oversized and misdirected requests to the
// nodes of a Procfile cluster, then takes the cluster's quorum away, and
// checks that every answer is a prompt, well-formed refusal and that no node
// ever crashes.
func TestBadInput(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	createTable(t, leader)
	followers := c.others(leader)

	t.Run("malformed", func(t *testing.T) {
		const js = "application/json"
		cases := []struct {
			name, method, path, ctype, body string
			code                            int
			reason                          string // part of the answer, lower case
		}{
			{"not JSON", "POST", "/db/execute", js, `{not json`, 400, "invalid json"},
			{"truncated JSON", "POST", "/db/execute", js, `["SELECT 1"`, 400, ""},
			{"empty body", "POST", "/db/execute", js, ``, 400, ""},
			{"object", "POST", "/db/execute", js, `{"statements":["SELECT 1"]}`, 400, "invalid request"},
			{"bare string", "POST", "/db/execute", js, `"SELECT 1"`, 400, "invalid request"},
			{"number element", "POST", "/db/execute", js, `[1]`, 400, "invalid request"},
			{"bool element", "POST", "/db/execute", js, `[true]`, 400, "invalid request"},
			{"null element", "POST", "/db/execute", js, `[null]`, 400, "invalid request"},
			{"empty statement", "POST", "/db/execute", js, `[[]]`, 400, ""},
			{"SQL not a string", "POST", "/db/execute", js, `[[1, 2]]`, 400, "invalid request"},
			{"object parameter", "POST", "/db/execute", js, `[["SELECT :a", {"a": {"b": 1}}]]`, 400, ""},
			{"array parameter not bytes", "POST", "/db/execute", js, `[["SELECT ?", [1, "x"]]]`, 400, ""},
			{"byte out of range", "POST", "/db/execute", js, `[["SELECT ?", [256]]]`, 400, ""},
			{"no statements: execute", "POST", "/db/execute", js, `[]`, 400, "no statements"},
			{"no statements: query", "POST", "/db/query", js, `[]`, 400, "no statements"},
			{"no statements: request", "POST", "/db/request", js, `[]`, 400, "no statements"},
			{"wrong types: query", "POST", "/db/query", js, `[{"q":"SELECT 1"}]`, 400, "invalid request"},
			{"unknown endpoint", "GET", "/nope", "", ``, 404, ""},
			{"unknown db endpoint", "POST", "/db/nope", js, `["SELECT 1"]`, 404, ""},
			{"GET execute", "GET", "/db/execute", "", ``, 405, ""},
			{"DELETE query", "DELETE", "/db/query", "", ``, 405, ""},
			{"PUT request", "PUT", "/db/request", js, `["SELECT 1"]`, 405, ""},
			{"POST status", "POST", "/status", js, `{}`, 405, ""},
		}
		for _, n := range c.nodes {
			for _, tc := range cases {
				code, body, err := n.call(tc.method, tc.path, strings.NewReader(tc.body), tc.ctype)
				if err != nil {
					t.Errorf("%s: %s: %v", n.name, tc.name, err)
					continue
				}
				if code != tc.code || !strings.Contains(strings.ToLower(string(body)), tc.reason) {
					t.Errorf("%s: %s: %s %s %q = %d %q, want %d containing %q",
						n.name, tc.name, tc.method, tc.path, tc.body, code, body, tc.code, tc.reason)
				}
			}
		}
		requireAlive(t, c.nodes...)
	})

	t.Run("statement errors", func(t *testing.T) {
		for _, n := range c.nodes {
			r, err := n.sql("/db/execute", "SELEC nonsense")
			if err != nil || !strings.Contains(r.Results[0].Error, "syntax error") {
				t.Errorf("%s: bad SQL = %+v, %v; want 200 with a syntax error", n.name, r, err)
			}
			r, err = n.sql("/db/query", "SELECT * FROM nosuchtable")
			if err != nil || !strings.Contains(r.Results[0].Error, "no such table") {
				t.Errorf("%s: missing table = %+v, %v; want 200 with 'no such table'", n.name, r, err)
			}
			r, err = n.sql("/db/query?level=none", "INSERT INTO t(via) VALUES('x')")
			if err != nil || !strings.Contains(r.Results[0].Error, "attempt to change database via query operation") {
				t.Errorf("%s: write via query = %+v, %v; want 200 with a statement error", n.name, r, err)
			}
		}
		// Without ?transaction, a failing statement does not stop the others.
		r, err := leader.sql("/db/execute",
			[]any{"INSERT INTO t(id, via) VALUES(?, ?)", 1, "a"},
			"BOGUS",
			[]any{"INSERT INTO t(id, via) VALUES(?, ?)", 2, "b"})
		if err != nil {
			t.Fatalf("mixed request: %v", err)
		}
		if r.Results[0].Error != "" || r.Results[1].Error == "" || r.Results[2].Error != "" || r.Results[2].RowsAffected != 1 {
			t.Errorf("mixed request results = %+v, want ok, error, ok", r.Results)
		}
		waitIdentical(t, 2, c.nodes...)
		requireAlive(t, c.nodes...)
	})

	t.Run("huge body", func(t *testing.T) {
		const size = 100 << 20
		n := followers[0]
		began := time.Now()
		// A well-formed statement list, so that only its size can refuse it.
		body := &statementStream{size: size}
		code, answer, err := n.call("POST", "/db/execute", body, "application/json")
		elapsed := time.Since(began)
		switch {
		case err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)):
			t.Logf("the node closed the connection after %d bytes: %v", body.sent.Load(), err)
		case err != nil:
			t.Errorf("huge body: %v", err)
		case code != http.StatusRequestEntityTooLarge && code != http.StatusBadRequest:
			t.Errorf("huge body = %d %q, want 413 or 400", code, bytes.TrimSpace(answer))
		}
		if elapsed > 10*time.Second {
			t.Errorf("huge body took %v to refuse", elapsed)
		}
		t.Logf("huge body refused (%d) after %v, %d MB sent", code, elapsed.Round(time.Millisecond), body.sent.Load()>>20)
		requireAlive(t, c.nodes...)
		waitReady(t, n)
		if _, err := n.count("none"); err != nil {
			t.Errorf("%s after the huge body: %v", n.name, err)
		}
	})

	t.Run("one node stopped", func(t *testing.T) {
		// SIGSTOP a follower: the other two still make a quorum.
		paused := followers[1]
		paused.signal(t, syscall.SIGSTOP)
		if err := insertRow([]*node{followers[0]}, 3, 10*time.Second); err != nil {
			t.Errorf("write with one follower stopped: %v", err)
		}
		paused.signal(t, syscall.SIGCONT)
		waitIdentical(t, 3, c.nodes...)
		requireAlive(t, c.nodes...)
	})

	t.Run("quorum lost", func(t *testing.T) {
		for _, f := range followers {
			f.kill(t)
		}
		const timeout = 2 * time.Second
		const slack = 3 * time.Second
		bounded := func(what, path string, stmts ...any) {
			t.Helper()
			began := time.Now()
			r, err := leader.sql(path, stmts...)
			elapsed := time.Since(began)
			if err == nil {
				t.Errorf("%s without a quorum succeeded: %+v", what, r)
			}
			var he *httpError
			if errors.As(err, &he) && he.Code != http.StatusServiceUnavailable {
				t.Logf("%s without a quorum: HTTP %d (503 preferred): %s", what, he.Code, he.Body)
			}
			if elapsed > timeout+slack {
				t.Errorf("%s without a quorum took %v, want at most timeout %v + %v", what, elapsed, timeout, slack)
			}
			t.Logf("%s without a quorum: %v after %v", what, err, elapsed.Round(time.Millisecond))
		}
		// Right after the kill the node may still think it leads.
		bounded("write (fresh)", "/db/execute?timeout=2s", "INSERT INTO t(via) VALUES('no quorum')")
		bounded("linearizable read", "/db/query?level=linearizable&timeout=2s", "SELECT COUNT(*) FROM t")
		waitReadyz(t, http.StatusServiceUnavailable, leader)
		bounded("write (no leader)", "/db/execute?timeout=2s", "INSERT INTO t(via) VALUES('no quorum')")
		bounded("weak read (no leader)", "/db/query?level=weak&timeout=2s", "SELECT COUNT(*) FROM t")
		if got, err := leader.count("none"); err != nil || got != 3 {
			t.Errorf("local read without a quorum = %d, %v; want the 3 committed rows", got, err)
		}
		requireAlive(t, leader)
	})
}

// statementChunk is a run of statements for statementStream.
var statementChunk = bytes.Repeat([]byte(`,"SELECT 1"`), 4096)

// statementStream is a well-formed JSON statement list of at least size
// bytes, made on the fly: ["SELECT 1","SELECT 1",...]. sent is atomic
// because the HTTP transport may still be reading after Do returned.
type statementStream struct {
	size int64
	sent atomic.Int64
	buf  []byte
	done bool
}

func (s *statementStream) Read(p []byte) (int, error) {
	if len(s.buf) == 0 {
		switch {
		case s.done:
			return 0, io.EOF
		case s.sent.Load() == 0:
			s.buf = []byte(`["SELECT 1"`)
		case s.sent.Load() >= s.size:
			s.buf, s.done = []byte(`]`), true
		default:
			s.buf = statementChunk
		}
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	s.sent.Add(int64(n))
	return n, nil
}
