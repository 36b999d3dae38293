//go:build linux

package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/raftlite/raftlite/client"
)

// Exactly-once writes (client sessions, API.md), checked on real processes.

// eoTable is the table the exactly-once tests write.
const eoTable = "CREATE TABLE eo (id INTEGER PRIMARY KEY, v TEXT NOT NULL)"

// post sends a JSON body to path on n and returns the status and the body.
func post(t testing.TB, n *node, path, body string) (int, string) {
	t.Helper()
	code, raw, err := n.call("POST", path, strings.NewReader(body), "application/json")
	if err != nil {
		t.Fatalf("%s: POST %s: %v", n.name, path, err)
	}
	return code, string(bytes.TrimSpace(raw))
}

// waitSameIndex waits until the given nodes have applied the same index,
// at least min, and returns it.
func waitSameIndex(t testing.TB, min uint64, nodes ...*node) uint64 {
	t.Helper()
	var idx uint64
	waitFor(t, waitTimeout, "the same applied index on every node", func() error {
		idx = 0
		for _, n := range nodes {
			i, err := n.statusUint("store.fsm_index")
			if err != nil {
				return err
			}
			if i < min {
				return fmt.Errorf("%s at index %d, want %d", n.name, i, min)
			}
			if idx != 0 && i != idx {
				return fmt.Errorf("%s at index %d, another node at %d", n.name, i, idx)
			}
			idx = i
		}
		return nil
	})
	return idx
}

// sessionStats returns store.sessions.{live,deduplicated,expired} of n.
func sessionStats(t testing.TB, n *node) [3]uint64 {
	t.Helper()
	var out [3]uint64
	for i, k := range []string{"live", "deduplicated", "expired"} {
		v, err := n.statusUint("store.sessions." + k)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = v
	}
	return out
}

// countWhere returns how many rows of eo have v = value on n (read locally).
func countWhere(t testing.TB, n *node, value string) int {
	t.Helper()
	r, err := n.sql("/db/query?level=none", []any{"SELECT COUNT(*) FROM eo WHERE v = ?", value})
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	if e := r.Results[0].Error; e != "" {
		t.Fatalf("%s: %s", n.name, e)
	}
	c, err := strconv.Atoi(fmt.Sprint(r.Results[0].Values[0][0]))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestExactlyOnceLeaderThenFollower: the same (client_id, seq) sent to the
// leader, then to a follower (which forwards it), inserts one row; the
// second answer is the first one, marked deduplicated; the same seq with
// another body is refused with 409 by every node. Every node then agrees
// on the session counters.
func TestExactlyOnceLeaderThenFollower(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, eoTable)
	follower := c.others(leader)[0]

	const q = "/db/execute?client_id=e2e-leader-then-follower&seq=1&raft_index"
	const body = `[["INSERT INTO eo(v) VALUES(?)", "once"]]`
	code, first := post(t, leader, q, body)
	if code != http.StatusOK || !strings.HasPrefix(first, `{"results":[{"last_insert_id":1,"rows_affected":1}],"raft_index":`) {
		t.Fatalf("first, to the leader %s: %d %s", leader.name, code, first)
	}
	code, second := post(t, follower, q, body)
	if want := strings.TrimSuffix(first, "}") + `,"deduplicated":true}`; code != http.StatusOK || second != want {
		t.Fatalf("second, to the follower %s: %d %s, want %s", follower.name, code, second, want)
	}
	// A third time, straight to the leader, with timings: still the
	// remembered answer.
	code, third := post(t, leader, q, body)
	if code != http.StatusOK || third != second {
		t.Fatalf("third: %d %s, want %s", code, third, second)
	}

	// The session moves on; an old or foreign sequence number is refused
	// by whichever node receives it.
	code, next := post(t, follower, "/db/execute?client_id=e2e-leader-then-follower&seq=2", `[["INSERT INTO eo(v) VALUES(?)", "twice"]]`)
	if code != http.StatusOK || strings.Contains(next, "deduplicated") || strings.Contains(next, "error") {
		t.Fatalf("seq 2: %d %s", code, next)
	}
	for _, n := range c.nodes {
		code, got := post(t, n, "/db/execute?client_id=e2e-leader-then-follower&seq=1", body)
		if want := `{"results":[],"error":"sequence number already superseded","code":"seq_superseded"}`; code != http.StatusBadRequest || got != want {
			t.Fatalf("%s: superseded: %d %s", n.name, code, got)
		}
		code, got = post(t, n, "/db/execute?client_id=e2e-nobody&seq=3", body)
		if want := `{"results":[],"error":"unknown or expired session","code":"session_expired"}`; code != http.StatusBadRequest || got != want {
			t.Fatalf("%s: unknown session: %d %s", n.name, code, got)
		}
		// seq 2 again with another body is not a retry of seq 2.
		code, got = post(t, n, "/db/execute?client_id=e2e-leader-then-follower&seq=2", body)
		if want := `{"results":[],"error":"sequence number already used by a different request","code":"seq_reused"}`; code != http.StatusConflict || got != want {
			t.Fatalf("%s: reused seq: %d %s", n.name, code, got)
		}
	}

	waitSameIndex(t, 0, c.nodes...)
	for _, n := range c.nodes {
		if got := countWhere(t, n, "once"); got != 1 {
			t.Fatalf("%s holds %d rows 'once', want 1", n.name, got)
		}
		if got, want := sessionStats(t, n), [3]uint64{1, 2, 0}; got != want {
			t.Fatalf("%s: store.sessions live/deduplicated/expired = %v, want %v", n.name, got, want)
		}
	}
}

// TestExactlyOnceSessionExpiry: sessions expire by the leader's log
// timestamps, at the same index on every node, and whichever node leads
// afterwards answers "unknown or expired session".
func TestExactlyOnceSessionExpiry(t *testing.T) {
	const ttl = 3 * time.Second
	c := newCluster(t)
	for _, e := range rewriteEntries(t, readProcfile(t), filepath.Join(c.dir, "data")) {
		c.add(e.name, withFlag(e.args, "session-ttl", ttl.String())).start(t)
	}
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, eoTable)

	const body = `[["INSERT INTO eo(v) VALUES(?)", "expiring"]]`
	if code, got := post(t, leader, "/db/execute?client_id=e2e-expiry&seq=1", body); code != http.StatusOK {
		t.Fatalf("seq 1: %d %s", code, got)
	}
	if code, got := post(t, leader, "/db/execute?client_id=e2e-expiry&seq=1", body); code != http.StatusOK || !strings.Contains(got, `"deduplicated":true`) {
		t.Fatalf("seq 1 again: %d %s", code, got)
	}
	waitSameIndex(t, 0, c.nodes...)
	for _, n := range c.nodes {
		if got := sessionStats(t, n); got[0] != 1 {
			t.Fatalf("%s: sessions %v before expiry", n.name, got)
		}
	}

	time.Sleep(ttl + 500*time.Millisecond)
	want := `{"results":[],"error":"unknown or expired session","code":"session_expired"}`
	if code, got := post(t, leader, "/db/execute?client_id=e2e-expiry&seq=2", body); code != http.StatusBadRequest || got != want {
		t.Fatalf("after the TTL: %d %s", code, got)
	}
	idx := waitSameIndex(t, 0, c.nodes...)
	for _, n := range c.nodes {
		if got := sessionStats(t, n); got != [3]uint64{0, 1, 1} {
			t.Fatalf("%s: store.sessions live/deduplicated/expired = %v at index %d, want [0 1 1]", n.name, got, idx)
		}
	}

	// Another node takes over: it expired the same session, so it answers
	// alike, directly and through a follower.
	next := c.others(leader)[0]
	if code, raw, err := next.call("POST", "/leader", strings.NewReader(`{"id":"`+next.id+`"}`), "application/json"); err != nil || code != http.StatusOK {
		t.Fatalf("hand leadership to %s: %d %s %v", next.name, code, raw, err)
	}
	waitFor(t, waitTimeout, next.name+" leading", func() error {
		l, err := c.leader()
		if err != nil {
			return err
		}
		if l != next {
			return fmt.Errorf("%s leads", l.name)
		}
		return nil
	})
	for _, n := range c.nodes {
		if code, got := post(t, n, "/db/execute?client_id=e2e-expiry&seq=2", body); code != http.StatusBadRequest || got != want {
			t.Fatalf("%s, with %s leading: %d %s", n.name, next.name, code, got)
		}
	}
	waitSameIndex(t, 0, c.nodes...)
	for _, n := range c.nodes {
		if got := countWhere(t, n, "expiring"); got != 1 {
			t.Fatalf("%s holds %d rows, want 1", n.name, got)
		}
	}
}

// TestExactlyOnceUnderFaults is the fault test: clients of the Go client
// package (sessions on; four of them, each streaming its share, so that
// several writes are in flight whenever a fault strikes) send 2,000
// INSERTs, each with a unique value, while the leader is SIGKILLed three
// times (and restarted each time) and a follower is paused (SIGSTOP,
// SIGCONT). The clients retry every ambiguous failure with the same
// sequence number. At the end every node holds the same rows: every
// acknowledged value exactly once, a value whose write failed with
// ErrUnknownOutcome at most once, nothing else.
func TestExactlyOnceUnderFaults(t *testing.T) {
	const (
		total   = 2000
		writers = 4
	)
	began := time.Now()
	since := func() time.Duration { return time.Since(began).Round(time.Millisecond) }
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, eoTable)

	var addrs []string
	for _, n := range c.nodes {
		addrs = append(addrs, n.httpAddr)
	}
	var (
		progress atomic.Int64 // writes finished, either way
		acked    = make([]bool, total)
		unknown  = make([]bool, total)
		dedups   atomic.Int64
		errs     = make(chan error, writers)
		wg       sync.WaitGroup
	)
	for w := range writers {
		cl, err := client.New(client.Config{
			Nodes:           addrs,
			Timeout:         3 * time.Second,
			MaxRetries:      60,
			RetryBackoff:    20 * time.Millisecond,
			MaxRetryBackoff: 500 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Writer w owns the values i with i % writers == w.
			for i := w; i < total; i += writers {
				ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
				resp, err := cl.Execute(ctx, client.SQL("INSERT INTO eo(v) VALUES(?)", "v"+strconv.Itoa(i)))
				cancel()
				switch {
				case err == nil:
					if len(resp.Results) != 1 || resp.Results[0].Error != "" || resp.Results[0].RowsAffected != 1 {
						errs <- fmt.Errorf("write %d: unexpected response %+v", i, resp)
						return
					}
					acked[i] = true
					if resp.Deduplicated {
						dedups.Add(1)
					}
				case errors.Is(err, client.ErrUnknownOutcome):
					unknown[i] = true
				default:
					errs <- fmt.Errorf("write %d: %w", i, err)
					return
				}
				progress.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	waitProgress := func(n int64) {
		t.Helper()
		waitFor(t, 60*time.Second, fmt.Sprintf("%d writes", n), func() error {
			select {
			case err := <-errs:
				t.Fatalf("a writer stopped: %v", err)
			default:
			}
			if p := progress.Load(); p < n {
				return fmt.Errorf("at %d", p)
			}
			return nil
		})
	}
	killLeader := func() {
		t.Helper()
		l := c.waitLeader()
		t.Logf("%v: SIGKILL leader %s at write %d", since(), l.name, progress.Load())
		l.kill(t)
		t.Logf("%v: %s leads", since(), c.waitLeader().name)
		l.start(t)
		waitReady(t, l)
		t.Logf("%v: %s restarted", since(), l.name)
	}

	waitProgress(250)
	killLeader()
	waitProgress(600)
	killLeader()
	waitProgress(950)
	paused := c.others(c.waitLeader())[0]
	t.Logf("%v: SIGSTOP follower %s at write %d", since(), paused.name, progress.Load())
	paused.signal(t, syscall.SIGSTOP)
	time.Sleep(3 * time.Second)
	paused.signal(t, syscall.SIGCONT)
	t.Logf("%v: SIGCONT %s at write %d", since(), paused.name, progress.Load())
	waitProgress(1300)
	killLeader()
	waitProgress(total)
	<-done
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	nAcked, nUnknown := 0, 0
	for i := range total {
		if acked[i] {
			nAcked++
		}
		if unknown[i] {
			nUnknown++
		}
	}
	t.Logf("%v: %d writes acknowledged (%d of them answered from session memory), %d with unknown outcome",
		since(), nAcked, dedups.Load(), nUnknown)

	// Every node ends up with the same rows.
	var rows [][]any
	waitFor(t, waitTimeout, "identical rows on every node", func() error {
		var first *node
		for _, n := range c.nodes {
			got, err := n.rows("none", "SELECT v, COUNT(*) FROM eo GROUP BY v ORDER BY v")
			if err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			if len(got) < nAcked {
				return fmt.Errorf("%s holds %d values, at least %d acknowledged", n.name, len(got), nAcked)
			}
			if first == nil {
				first, rows = n, got
			} else if !reflect.DeepEqual(got, rows) {
				return fmt.Errorf("%s and %s hold different rows", first.name, n.name)
			}
		}
		return nil
	})
	seen := make(map[int]bool, len(rows))
	for _, r := range rows {
		v, cnt := fmt.Sprint(r[0]), fmt.Sprint(r[1])
		i, err := strconv.Atoi(strings.TrimPrefix(v, "v"))
		if err != nil || !strings.HasPrefix(v, "v") || i < 0 || i >= total {
			t.Fatalf("unexpected value %q", v)
		}
		if cnt != "1" {
			t.Errorf("value %q applied %s times", v, cnt)
		}
		if !acked[i] && !unknown[i] {
			t.Errorf("value %q present but never acknowledged nor ambiguous", v)
		}
		seen[i] = true
	}
	for i := range total {
		if acked[i] && !seen[i] {
			t.Errorf("acknowledged value v%d is missing", i)
		}
	}
	idx := waitSameIndex(t, 0, c.nodes...)
	var st [3]uint64
	for i, n := range c.nodes {
		got := sessionStats(t, n)
		if i > 0 && got != st {
			t.Errorf("%s: store.sessions %v, another node %v at the same index %d", n.name, got, st, idx)
		}
		st = got
	}
	t.Logf("%d rows; store.sessions live/deduplicated/expired %v; %v in all", len(rows), st, since())
	requireAlive(t, c.nodes...)
}

// cutProxy is a TCP proxy in front of one node's HTTP API that, for its
// first cuts connections, forwards the request, waits until the node starts
// answering (by then the write is committed and applied), and closes the
// client's connection without relaying a byte of the answer.
type cutProxy struct {
	ln     net.Listener
	target string
	cuts   atomic.Int32
	cut    atomic.Int32 // connections cut so far
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string, cuts int) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.cuts.Store(int32(cuts))
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		cc, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.handle(cc)
		}()
	}
}

func (p *cutProxy) handle(cc net.Conn) {
	defer cc.Close()
	uc, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer uc.Close()
	go func() {
		_, _ = io.Copy(uc, cc)
		uc.Close()
	}()
	if p.cuts.Add(-1) >= 0 {
		var b [1]byte
		if _, err := uc.Read(b[:]); err == nil {
			p.cut.Add(1)
		}
		if tc, ok := cc.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as a crashing middlebox would
		}
		return
	}
	_, _ = io.Copy(cc, uc)
}

// TestExactlyOnceLostResponse: the answer to a committed write is lost (the
// connection is cut between leader and client after the write is applied).
// The client retries with the same sequence number, through the same node
// or another one, and gets the original outcome, marked deduplicated; the
// row exists once. Without a session the same loss leaves the client with
// ErrUnknownOutcome (the write was applied, but the client cannot know).
func TestExactlyOnceLostResponse(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, eoTable)
	follower := c.others(leader)[0]

	for _, tc := range []struct {
		name    string
		retryTo *node // nil: the same proxied node
		noSess  bool
	}{
		{name: "retry-same-node"},
		{name: "retry-via-follower", retryTo: follower},
		{name: "no-session", noSess: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newCutProxy(t, leader.httpAddr, 1)
			nodes := []string{p.addr()}
			if tc.retryTo != nil {
				nodes = append(nodes, tc.retryTo.httpAddr)
			}
			cl, err := client.New(client.Config{Nodes: nodes, Timeout: 5 * time.Second, DisableSessions: tc.noSess, MaxRetries: 5})
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			resp, err := cl.Execute(ctx, client.SQL("INSERT INTO eo(v) VALUES(?)", tc.name))
			if p.cut.Load() != 1 {
				t.Fatalf("the proxy cut %d answers, want 1 (err %v)", p.cut.Load(), err)
			}
			if tc.noSess {
				if !errors.Is(err, client.ErrUnknownOutcome) {
					t.Fatalf("without a session: %+v, %v; want ErrUnknownOutcome", resp, err)
				}
			} else {
				if err != nil {
					t.Fatalf("retried write failed: %v", err)
				}
				if !resp.Deduplicated || len(resp.Results) != 1 || resp.Results[0].RowsAffected != 1 || resp.Results[0].Error != "" {
					t.Fatalf("retried write answered %+v, want the original outcome, deduplicated", resp)
				}
				// The remembered last_insert_id is the row's.
				rows, err := leader.rows("weak", "SELECT id FROM eo WHERE v = '"+tc.name+"'")
				if err != nil || len(rows) != 1 || fmt.Sprint(rows[0][0]) != strconv.FormatInt(resp.Results[0].LastInsertID, 10) {
					t.Fatalf("rows %v (%v), last_insert_id %d", rows, err, resp.Results[0].LastInsertID)
				}
			}
			waitSameIndex(t, 0, c.nodes...)
			for _, n := range c.nodes {
				if got := countWhere(t, n, tc.name); got != 1 {
					t.Fatalf("%s holds %d rows %q, want 1", n.name, got, tc.name)
				}
			}
		})
	}
}

// handLeadership makes node to the leader (POST /leader with its id, sent
// to it and forwarded to the current leader) and waits until every serving
// node agrees.
func handLeadership(t *testing.T, c *cluster, to *node) {
	t.Helper()
	waitFor(t, waitTimeout, "leadership moving to "+to.name, func() error {
		if l, err := c.leader(); err == nil && l == to {
			return nil
		}
		code, raw, err := to.call("POST", "/leader", strings.NewReader(`{"id":"`+to.id+`"}`), "application/json")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return &httpError{Code: code, Body: string(bytes.TrimSpace(raw))}
		}
		l, err := c.leader()
		if err != nil {
			return err
		}
		if l != to {
			return fmt.Errorf("%s leads", l.name)
		}
		return nil
	})
}

// TestExactlyOnceSurvivesRestartAndJoin: sessions are replicated database
// state. After every node is killed and restarted, a retry is still
// answered from memory; a node that joins afterwards learns the sessions
// with the data and, once it leads, deduplicates alike. (That sessions
// travel in a snapshot, which is how a joiner catches up once the log is
// compacted, is checked by the fsm unit tests: a snapshot is the database
// file.)
func TestExactlyOnceSurvivesRestartAndJoin(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, eoTable)

	const q = "/db/execute?client_id=e2e-restart&seq=1"
	const body = `[["INSERT INTO eo(v) VALUES(?)", "durable"]]`
	code, first := post(t, leader, q, body)
	if code != http.StatusOK || strings.Contains(first, "deduplicated") {
		t.Fatalf("first: %d %s", code, first)
	}
	want := strings.TrimSuffix(first, "}") + `,"deduplicated":true}`
	waitSameIndex(t, 0, c.nodes...)

	for _, n := range c.nodes {
		n.kill(t)
	}
	for _, n := range c.nodes {
		n.start(t)
	}
	c.waitLeader()
	waitReady(t, c.nodes...)
	for _, n := range c.nodes {
		if code, got := post(t, n, q, body); code != http.StatusOK || got != want {
			t.Fatalf("%s after a full restart: %d %s, want %s", n.name, code, got, want)
		}
	}

	joiner := c.addJoiner("node4", "4", c.nodes[0])
	joiner.start(t)
	waitReady(t, joiner)
	waitSameIndex(t, 0, c.nodes...)
	handLeadership(t, c, joiner)
	for _, n := range c.nodes {
		if code, got := post(t, n, q, body); code != http.StatusOK || got != want {
			t.Fatalf("%s with %s leading: %d %s, want %s", n.name, joiner.name, code, got, want)
		}
	}
	if code, got := post(t, joiner, "/db/execute?client_id=e2e-restart&seq=2", `[["INSERT INTO eo(v) VALUES(?)", "next"]]`); code != http.StatusOK || strings.Contains(got, "deduplicated") {
		t.Fatalf("seq 2 on %s: %d %s", joiner.name, code, got)
	}
	waitSameIndex(t, 0, c.nodes...)
	var st [3]uint64
	for i, n := range c.nodes {
		if got := countWhere(t, n, "durable"); got != 1 {
			t.Fatalf("%s holds %d rows, want 1", n.name, got)
		}
		got := sessionStats(t, n)
		if i > 0 && got != st {
			t.Fatalf("%s: store.sessions %v, another node %v", n.name, got, st)
		}
		st = got
	}
	if st != [3]uint64{1, 7, 0} { // 3 retries after the restart, 4 with the joiner leading
		t.Fatalf("store.sessions live/deduplicated/expired = %v, want [1 7 0]", st)
	}
}
