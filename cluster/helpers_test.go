package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// syncBuffer collects a test's log lines; they are printed only if the test
// fails (and lines logged after the test ended go nowhere).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testLogBuffers holds each test's log buffer (testLogger), by test.
var testLogBuffers sync.Map

// testLogs returns what t's loggers have logged so far.
func testLogs(t *testing.T) string {
	if buf, ok := testLogBuffers.Load(t); ok {
		return buf.(*syncBuffer).String()
	}
	return ""
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	buf := &syncBuffer{}
	testLogBuffers.Store(t, buf)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("CLUSTER_TEST_LOGS") != "" {
			t.Logf("logs:\n%s", buf.String())
		}
		testLogBuffers.Delete(t)
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testNode is one node of an in-process cluster.
type testNode struct {
	t      *testing.T
	cfg    Config
	logger *slog.Logger
	fsm    closableStateMachine // nil once stopped
	// newSM opens the node's state machine (SQLite or in memory), again at
	// a restart.
	newSM stateMachineOpener
	g     *group
	// hold can stop the node's FSM between a batch's commit and the
	// publication of its index (fsm.Config.AfterCommit).
	hold *commitHold
	*Node
}

// commitHold holds an FSM's next batch in the window after its commit,
// once armed, until released.
type commitHold struct {
	mu      sync.Mutex
	armed   bool
	held    chan uint64   // receives the held batch's index
	release chan struct{} // closed to let it go
}

// arm makes the next batch stop after its commit.
func (h *commitHold) arm() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.armed = true
	h.held = make(chan uint64, 1)
	h.release = make(chan struct{})
}

// afterCommit is the FSM's hook.
func (h *commitHold) afterCommit(index uint64) {
	h.mu.Lock()
	armed, held, release := h.armed, h.held, h.release
	h.armed = false
	h.mu.Unlock()
	if !armed {
		return
	}
	held <- index
	<-release
}

// awaitHeld waits for the armed hold to stop a batch and returns its
// index and a release that may be called more than once (and is, at the
// test's end).
func (h *commitHold) awaitHeld(t *testing.T) (uint64, func()) {
	t.Helper()
	var index uint64
	select {
	case index = <-h.held:
	case <-time.After(10 * time.Second):
		t.Fatal("the FSM never reached the held batch")
	}
	var once sync.Once
	release := func() { once.Do(func() { close(h.release) }) }
	t.Cleanup(release)
	return index, release
}

// group is the set of nodes of one test cluster, so that helpers can find
// the current leader again after an election.
type group struct {
	mu    sync.Mutex
	nodes []*testNode
}

func (g *group) add(ns ...*testNode) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range ns {
		n.g = g
		g.nodes = append(g.nodes, n)
	}
}

// live returns the nodes that are not stopped.
func (g *group) live() []*testNode {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []*testNode
	for _, n := range g.nodes {
		if n.fsm != nil {
			out = append(out, n)
		}
	}
	return out
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	return ln
}

// testConfig returns a config with timings fast enough for tests yet safe
// under the race detector, listening on ln.
func testConfig(t *testing.T, id string, ln net.Listener) Config {
	t.Helper()
	return Config{
		NodeID:     id,
		Listener:   ln,
		APIAdvAddr: "http://api-" + id + ".test:4001",
		Dir:        t.TempDir(),
		// The production timings: under the race detector on a small
		// machine, shorter leases cause spurious elections.
		JoinInterval: 200 * time.Millisecond,
		RaftLogLevel: "info",
		CloseTimeout: 5 * time.Second,
	}
}

// start opens the FSM and the node for cfg.
func start(t *testing.T, cfg Config, logger *slog.Logger) *testNode {
	t.Helper()
	tn, err := tryStart(t, cfg, logger)
	if err != nil {
		t.Fatalf("open node %s: %v", cfg.NodeID, err)
	}
	return tn
}

func tryStart(t *testing.T, cfg Config, logger *slog.Logger) (*testNode, error) {
	t.Helper()
	return startWith(t, cfg, logger, Open, openSQLite)
}

// closableStateMachine is a state machine the test closes after its node.
type closableStateMachine interface {
	StateMachine
	Close() error
}

// stateMachineOpener opens the state machine of a node whose data is in
// dir; hold may pause it after a commit (the SQLite one only).
type stateMachineOpener func(dir string, l *slog.Logger, hold *commitHold) (closableStateMachine, error)

// openSQLite opens the product's state machine.
func openSQLite(dir string, l *slog.Logger, hold *commitHold) (closableStateMachine, error) {
	return fsm.Open(fsm.Config{Dir: filepath.Join(dir, "db"), Logger: l, AfterCommit: hold.afterCommit})
}

// startUnformed opens the FSM and starts the node for cfg without making it
// part of a cluster: the test calls Form.
func startUnformed(t *testing.T, cfg Config, logger *slog.Logger) *testNode {
	t.Helper()
	tn, err := startWith(t, cfg, logger, Start, openSQLite)
	if err != nil {
		t.Fatalf("start node %s: %v", cfg.NodeID, err)
	}
	return tn
}

// startWith opens the state machine (newSM) and the node for cfg with open
// (Open or Start).
func startWith(t *testing.T, cfg Config, logger *slog.Logger, open func(Config, StateMachine, *slog.Logger) (*Node, error),
	newSM stateMachineOpener) (*testNode, error) {
	t.Helper()
	l := logger.With("test_node", cfg.NodeID)
	hold := &commitHold{}
	f, err := newSM(cfg.Dir, l, hold)
	if err != nil {
		return nil, fmt.Errorf("open state machine: %w", err)
	}
	n, err := open(cfg, f, l)
	if err != nil {
		f.Close()
		return nil, err
	}
	tn := &testNode{t: t, cfg: cfg, logger: logger, fsm: f, newSM: newSM, hold: hold, Node: n}
	(&group{}).add(tn)
	t.Cleanup(tn.stop)
	return tn, nil
}

// stop closes the node and its FSM (idempotent).
func (tn *testNode) stop() {
	if err := tn.Node.Close(); err != nil {
		tn.t.Errorf("close node %s: %v", tn.id, err)
	}
	tn.g.mu.Lock()
	f := tn.fsm
	tn.fsm = nil
	tn.g.mu.Unlock()
	if f != nil {
		if err := f.Close(); err != nil {
			tn.t.Errorf("close fsm %s: %v", tn.id, err)
		}
	}
}

// restart stops the node and opens it again with the same directory and
// Raft address.
func (tn *testNode) restart() *testNode {
	t := tn.t
	t.Helper()
	addr := tn.RaftAddr()
	tn.stop()
	cfg := tn.cfg
	cfg.Listener = rebind(t, addr)
	n, err := startWith(t, cfg, tn.logger, Open, tn.newSM)
	if err != nil {
		t.Fatalf("restart node %s: %v", cfg.NodeID, err)
	}
	tn.g.add(n)
	return n
}

// rebind listens on addr again, once the node that had it has let go.
func rebind(t *testing.T, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	waitFor(t, 10*time.Second, "rebind "+addr, func() bool {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return ln
}

// startCluster starts n nodes with bootstrap-expect n and waits for a leader.
func startCluster(t *testing.T, n int, tweak func(*Config)) []*testNode {
	t.Helper()
	return startClusterOf(t, n, tweak, openSQLite)
}

// startClusterOf is startCluster with the nodes' state machines opened by
// newSM.
func startClusterOf(t *testing.T, n int, tweak func(*Config), newSM stateMachineOpener) []*testNode {
	t.Helper()
	logger := testLogger(t)
	lns := make([]net.Listener, n)
	var addrs []string
	for i := range lns {
		lns[i] = listen(t)
		addrs = append(addrs, lns[i].Addr().String())
	}
	nodes := make([]*testNode, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		cfg := testConfig(t, fmt.Sprintf("node%d", i+1), lns[i])
		cfg.BootstrapExpect = n
		cfg.Join = addrs
		if tweak != nil {
			tweak(&cfg)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = startWith(t, cfg, logger, Open, newSM)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start node%d: %v", i+1, err)
		}
	}
	(&group{}).add(nodes...)
	waitLeader(t, nodes...)
	return nodes
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !eventually(timeout, cond) {
		t.Fatalf("timed out after %s waiting for %s", timeout, what)
	}
}

// eventually polls cond until it holds (true) or timeout has passed (false).
func eventually(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// waitLeader waits until exactly one of nodes leads and all of them agree
// on it and know its API address, and returns it.
func waitLeader(t *testing.T, nodes ...*testNode) *testNode {
	t.Helper()
	leader, err := findLeader(nodes...)
	if err != nil {
		t.Fatal(err)
	}
	return leader
}

// findLeader is waitLeader for any goroutine.
func findLeader(nodes ...*testNode) (*testNode, error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		var leader *testNode
		agreed := true
		for _, n := range nodes {
			if n.IsLeader() {
				if leader != nil {
					agreed = false
				}
				leader = n
			}
		}
		if leader != nil && agreed {
			for _, n := range nodes {
				if n.LeaderID() != leader.id || n.LeaderAPIAddr() != leader.cfg.APIAdvAddr {
					agreed = false
				}
			}
			if agreed {
				return leader, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("timed out waiting for a leader known to all nodes")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitMeta waits until every node knows every node's API address.
func waitMeta(t *testing.T, nodes ...*testNode) {
	t.Helper()
	waitFor(t, 10*time.Second, "every member's API address on every node", func() bool {
		for _, n := range nodes {
			meta := n.fsm.Nodes()
			for _, o := range nodes {
				if meta[o.id].APIAddr != o.cfg.APIAdvAddr {
					return false
				}
			}
		}
		return true
	})
}

func followers(leader *testNode, nodes ...*testNode) []*testNode {
	var out []*testNode
	for _, n := range nodes {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func stmt(sql string, args ...any) api.Statement {
	s := api.Statement{SQL: sql}
	for _, a := range args {
		s.Params = append(s.Params, api.Param{Value: a})
	}
	return s
}

// exec runs idempotent statements on n, or on the current leader of n's
// group if leadership moved (a spurious election on a loaded machine is
// legitimate), and fails the test on any other error.
func exec(t *testing.T, n *testNode, stmts ...api.Statement) *api.Response {
	t.Helper()
	resp, err := tryExec(n, stmts...)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// tryExec is exec for any goroutine.
func tryExec(n *testNode, stmts ...api.Statement) (*api.Response, error) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := n.Execute(ctx, &api.Request{Statements: stmts})
		cancel()
		retryable := errors.Is(err, api.ErrNotLeader) || errors.Is(err, api.ErrLeadershipTransfer) || api.IsAmbiguous(err)
		if err != nil && retryable && attempt < 10 {
			n.logger.Warn("test: retrying write on the current leader", "node", n.id, "error", err)
			if n, err = findLeader(n.g.live()...); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("execute on %s: %w", n.id, err)
		}
		if resp.Err != nil {
			return nil, fmt.Errorf("execute on %s: %w", n.id, resp.Err)
		}
		for i, r := range resp.Results {
			if r.Error != "" {
				return nil, fmt.Errorf("execute on %s: statement %d: %s", n.id, i, r.Error)
			}
		}
		return resp, nil
	}
}

func createTable(t *testing.T, leader *testNode) {
	t.Helper()
	exec(t, leader, stmt("CREATE TABLE IF NOT EXISTS foo (id INTEGER PRIMARY KEY, v INTEGER)"))
}

// insertRow writes row id (idempotently) and returns the entry's index.
func insertRow(t *testing.T, leader *testNode, id int) uint64 {
	t.Helper()
	return exec(t, leader, insertStmt(id)).Index
}

func insertStmt(id int) api.Statement {
	return stmt("INSERT OR REPLACE INTO foo(id, v) VALUES(?, ?)", int64(id), int64(id*10))
}

// insertRows writes rows from+1..from+count, one entry each, and returns
// the last entry's index.
func insertRows(t *testing.T, leader *testNode, from, count int) uint64 {
	t.Helper()
	var idx uint64
	for i := from; i < from+count; i++ {
		idx = insertRow(t, leader, i+1)
	}
	return idx
}

// rows reads all of table foo from n's local copy.
func rows(t *testing.T, n *testNode) [][]api.Value {
	t.Helper()
	res, err := n.Query(ctxT(t), &api.Request{Statements: []api.Statement{stmt("SELECT id, v FROM foo ORDER BY id")}})
	if err != nil {
		t.Fatalf("query on %s: %v", n.id, err)
	}
	if len(res) != 1 || res[0].Error != "" {
		t.Fatalf("query on %s: %+v", n.id, res)
	}
	return res[0].Rows
}

// waitSame waits until every node has applied index and holds the same
// rows as the first, and returns the number of rows.
func waitSame(t *testing.T, index uint64, nodes ...*testNode) int {
	t.Helper()
	for _, n := range nodes {
		if err := n.WaitApplied(ctxT(t), index); err != nil {
			t.Fatalf("wait for index %d on %s (at %d): %v", index, n.id, n.AppliedIndex(), err)
		}
	}
	want := rows(t, nodes[0])
	for _, n := range nodes[1:] {
		if got := rows(t, n); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s holds %d rows, %s holds %d rows (or different values)", n.id, len(got), nodes[0].id, len(want))
		}
	}
	return len(want)
}

func memberIDs(t *testing.T, n *testNode) map[string]api.Member {
	t.Helper()
	ms, err := n.Members()
	if err != nil {
		t.Fatalf("members on %s: %v", n.id, err)
	}
	out := make(map[string]api.Member, len(ms))
	for _, m := range ms {
		out[m.ID] = m
	}
	return out
}

func isErr(err, target error) bool { return errors.Is(err, target) }
