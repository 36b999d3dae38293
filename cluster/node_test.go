package cluster

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

func TestSingleNodeBootstrapExecuteQuery(t *testing.T) {
	logger := testLogger(t)
	n := start(t, testConfig(t, "solo", listen(t)), logger)
	waitLeader(t, n)

	if err := n.Ready(); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	createTable(t, n)
	idx := insertRows(t, n, 0, 10)
	if idx == 0 {
		t.Fatal("execute response has no raft index")
	}
	if got := waitSame(t, idx, n); got != 10 {
		t.Fatalf("rows = %d, want 10", got)
	}
	if err := n.VerifyLeader(ctxT(t)); err != nil {
		t.Fatalf("VerifyLeader: %v", err)
	}
	if err := n.StepDown(ctxT(t), ""); !errors.Is(err, api.ErrBadRequest) || !n.IsLeader() {
		t.Fatalf("StepDown with no other voter = %v (leader %v), want api.ErrBadRequest and still leader", err, n.IsLeader())
	}
	ri, err := n.ReadIndex(ctxT(t))
	if err != nil || ri < idx {
		t.Fatalf("ReadIndex = %d, %v; want >= %d", ri, err, idx)
	}

	ms, err := n.Members()
	if err != nil || len(ms) != 1 {
		t.Fatalf("Members = %+v, %v", ms, err)
	}
	if m := ms[0]; m.ID != "solo" || m.RaftAddr != n.RaftAddr() || m.APIAddr != n.cfg.APIAdvAddr || !m.Voter || !m.Leader {
		t.Fatalf("member = %+v", m)
	}
	if !n.IsVoter() {
		t.Fatal("IsVoter = false on the only voter")
	}

	// Stats: the keys /status clients read, numbers as numbers.
	s := n.Stats()
	if s["node_id"] != "solo" || s["dir"] != n.cfg.Dir {
		t.Fatalf("stats identity: %v %v", s["node_id"], s["dir"])
	}
	if fi, ok := s["fsm_index"].(uint64); !ok || fi < idx {
		t.Fatalf("stats fsm_index = %#v", s["fsm_index"])
	}
	leader := s["leader"].(map[string]any)
	if leader["node_id"] != "solo" || leader["addr"] != n.RaftAddr() {
		t.Fatalf("stats leader = %v", leader)
	}
	rs := s["raft"].(map[string]any)
	if rs["state"] != "Leader" || rs["voter"] != true {
		t.Fatalf("stats raft state/voter = %v/%v", rs["state"], rs["voter"])
	}
	for _, k := range []string{"term", "commit_index", "applied_index", "last_log_index", "last_snapshot_index"} {
		if _, ok := rs[k].(uint64); !ok {
			t.Fatalf("stats raft.%s = %#v, want uint64", k, rs[k])
		}
	}
	if _, ok := s["sqlite3"].(map[string]any); !ok {
		t.Fatalf("stats sqlite3 = %#v", s["sqlite3"])
	}

	// A restart finds its state: no bootstrap, same data, leader again,
	// writes continue.
	n = n.restart()
	waitLeader(t, n)
	if got := waitSame(t, idx, n); got != 10 {
		t.Fatalf("rows after restart = %d, want 10", got)
	}
	idx = insertRows(t, n, 10, 1)
	if got := waitSame(t, idx, n); got != 11 {
		t.Fatalf("rows = %d, want 11", got)
	}
}

func TestThreeNodeBootstrapExpect(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	waitMeta(t, nodes...)
	for _, n := range nodes {
		ms := memberIDs(t, n)
		if len(ms) != 3 {
			t.Fatalf("%s sees %d members: %v", n.id, len(ms), ms)
		}
		for _, o := range nodes {
			m := ms[o.id]
			if m.RaftAddr != o.RaftAddr() || m.APIAddr != o.cfg.APIAdvAddr || !m.Voter || m.Leader != (o == leader) {
				t.Fatalf("%s's view of %s: %+v", n.id, o.id, m)
			}
		}
	}

	createTable(t, leader)
	idx := insertRows(t, leader, 0, 5)
	waitSame(t, idx, nodes...)

	// Followers refuse writes without proposing them.
	leader = waitLeader(t, nodes...)
	for _, f := range followers(leader, nodes...) {
		_, err := f.Execute(ctxT(t), &api.Request{Statements: []api.Statement{stmt("INSERT INTO foo(v) VALUES(1)")}})
		if !errors.Is(err, api.ErrNotLeader) {
			t.Fatalf("Execute on follower %s: %v, want api.ErrNotLeader", f.id, err)
		}
		if api.IsAmbiguous(err) {
			t.Fatal("ErrNotLeader must not be ambiguous")
		}
		if err := f.VerifyLeader(ctxT(t)); !errors.Is(err, api.ErrNotLeader) {
			t.Fatalf("VerifyLeader on follower: %v", err)
		}
		if err := f.StepDown(ctxT(t), ""); !errors.Is(err, api.ErrNotLeader) {
			t.Fatalf("StepDown on follower: %v", err)
		}
	}

	// Concurrent writes pipeline and all succeed with distinct indexes.
	const writers = 40
	var wg sync.WaitGroup
	indexes := make([]uint64, writers)
	errs := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := tryExec(leader, insertStmt(1000+i))
			if err == nil {
				indexes[i] = resp.Index
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	seen := make(map[uint64]bool)
	var maxIdx uint64
	for i, err := range errs {
		if err != nil {
			t.Fatalf("concurrent write %d: %v", i, err)
		}
		if seen[indexes[i]] {
			t.Fatalf("index %d returned twice", indexes[i])
		}
		seen[indexes[i]] = true
		maxIdx = max(maxIdx, indexes[i])
	}
	if got := waitSame(t, maxIdx, nodes...); got != 5+writers {
		t.Fatalf("rows = %d, want %d", got, 5+writers)
	}

	// Linearizable follower read: the read index covers the last write.
	f := followers(leader, nodes...)[0]
	last := insertRow(t, leader, 2000)
	ri, err := f.ReadIndex(ctxT(t))
	if err != nil || ri < last {
		t.Fatalf("follower ReadIndex = %d, %v; want >= %d", ri, err, last)
	}
	if err := f.WaitApplied(ctxT(t), ri); err != nil {
		t.Fatalf("WaitApplied(%d): %v", ri, err)
	}
	if got := len(rows(t, f)); got != 6+writers {
		t.Fatalf("follower rows after read index = %d, want %d", got, 6+writers)
	}
}

func TestSnapshotCatchUp(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) {
		c.SnapshotThreshold = 16
		c.TrailingLogs = 4
		c.SnapshotInterval = 50 * time.Millisecond
	})
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	idx := insertRows(t, leader, 0, 100)
	waitSame(t, idx, nodes...)
	waitFor(t, 10*time.Second, "the leader to compact its log", func() bool {
		rs := leader.Stats()["raft"].(map[string]any)
		snap, _ := rs["last_snapshot_index"].(uint64)
		return snap >= idx-20
	})

	// A new node (that never snapshots itself) must be sent a snapshot:
	// the log no longer starts at 1.
	cfg := testConfig(t, "late", listen(t))
	cfg.Join = []string{leader.RaftAddr()}
	late := start(t, cfg, nodes[0].logger)
	nodes[0].g.add(late)
	all := append(nodes[:3:3], late)
	if got := waitSame(t, idx, all...); got != 100 {
		t.Fatalf("rows = %d, want 100", got)
	}
	// Raft records the installed snapshot just after the FSM restored it.
	waitFor(t, 5*time.Second, "the late node to record an installed snapshot", func() bool {
		rs := late.Stats()["raft"].(map[string]any)
		snap, _ := rs["last_snapshot_index"].(uint64)
		return snap > 0
	})
	idx = insertRows(t, leader, 100, 5)
	waitSame(t, idx, all...)

	// Restart the late node: it starts from its database without
	// restoring the snapshot, and keeps up.
	late = late.restart()
	all = append(nodes[:3:3], late)
	waitLeader(t, all...)
	if got := late.Counters()["startup_snapshot_restores_total"]; got != 0 {
		t.Fatalf("restart with a current database restored a snapshot")
	}
	idx = insertRows(t, leader, 105, 5)
	if got := waitSame(t, idx, all...); got != 110 {
		t.Fatalf("rows = %d, want 110", got)
	}

	// A node that lost its database but kept its Raft state rebuilds it
	// from its latest snapshot and the log after it.
	f := followers(waitLeader(t, all...), all...)[0]
	f.stop()
	if err := os.RemoveAll(filepath.Join(f.cfg.Dir, "db")); err != nil {
		t.Fatal(err)
	}
	f = f.restart()
	if got := f.Counters()["startup_snapshot_restores_total"]; got != 1 {
		t.Fatalf("node without its database did not restore its snapshot")
	}
	all = f.g.live()
	idx = insertRows(t, leader, 110, 5)
	if got := waitSame(t, idx, all...); got != 115 {
		t.Fatalf("rows = %d, want 115", got)
	}
}

func TestStepDownAndRemoveLeader(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)

	// Hand leadership to a named follower.
	target := followers(leader, nodes...)[0]
	if err := leader.StepDown(ctxT(t), target.id); err != nil {
		t.Fatalf("StepDown(%s): %v", target.id, err)
	}
	if got := waitLeader(t, nodes...); got != target {
		t.Fatalf("leader after transfer = %s, want %s", got.id, target.id)
	}
	if err := target.StepDown(ctxT(t), "nobody"); !errors.Is(err, api.ErrUnknownNode) {
		t.Fatalf("StepDown(nobody) = %v", err)
	}
	// Removing a node that is no member is refused as unknown, on the
	// leader and through a follower (the cluster service carries the code).
	for _, via := range []*testNode{target, followers(target, nodes...)[0]} {
		if err := via.Remove(ctxT(t), "nobody"); !errors.Is(err, api.ErrUnknownNode) && !errors.Is(err, api.ErrNotFound) {
			t.Fatalf("Remove(nobody) via %s = %v, want unknown node", via.id, err)
		}
	}

	// Any other voter.
	leader = target
	if err := leader.StepDown(ctxT(t), ""); err != nil {
		t.Fatalf("StepDown: %v", err)
	}
	leader = waitLeader(t, nodes...)
	if leader == target {
		t.Fatal("leadership did not move")
	}

	// The leader removes itself (forgetting its metadata first): the two
	// others carry on.
	gone := leader
	if err := gone.Remove(ctxT(t), gone.id); err != nil {
		t.Fatalf("leader removing itself: %v", err)
	}
	rest := followers(gone, nodes...)
	leader = waitLeader(t, rest...)
	waitFor(t, 10*time.Second, "the removed leader to be forgotten", func() bool {
		for _, n := range rest {
			if _, ok := n.fsm.Nodes()[gone.id]; ok || len(memberIDs(t, n)) != 2 {
				return false
			}
		}
		return true
	})
	createTable(t, leader)
	idx := insertRows(t, leader, 0, 3)
	waitSame(t, idx, rest...)
	if err := gone.Ready(); err == nil {
		waitFor(t, 5*time.Second, "the removed node to stop", func() bool { return gone.Ready() != nil })
	}
}

func TestExecuteErrors(t *testing.T) {
	n := start(t, testConfig(t, "solo", listen(t)), testLogger(t))
	waitLeader(t, n)
	createTable(t, n)

	// An expired context: nothing is proposed.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := n.Execute(ctx, &api.Request{Statements: []api.Statement{stmt("INSERT INTO foo(v) VALUES(1)")}})
	if !errors.Is(err, api.ErrEnqueueTimeout) || api.IsAmbiguous(err) {
		t.Fatalf("Execute with cancelled context = %v", err)
	}
	if _, err := n.Execute(ctxT(t), nil); err == nil {
		t.Fatal("Execute(nil) succeeded")
	}
	// Statement errors are results, not errors.
	resp, err := n.Execute(ctxT(t), &api.Request{Statements: []api.Statement{stmt("INSERT INTO nosuch VALUES(1)")}})
	if err != nil || len(resp.Results) != 1 || resp.Results[0].Error == "" {
		t.Fatalf("statement error: %+v, %v", resp, err)
	}

	if err := n.Node.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := n.Node.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := n.Execute(ctxT(t), &api.Request{Statements: []api.Statement{stmt("SELECT 1")}}); !errors.Is(err, api.ErrClosed) {
		t.Fatalf("Execute after close = %v", err)
	}
	if err := n.Ready(); !errors.Is(err, api.ErrClosed) {
		t.Fatalf("Ready after close = %v", err)
	}
	if s := n.Stats(); s["raft"].(map[string]any)["state"] != "Shutdown" {
		t.Fatalf("stats after close: %v", s["raft"])
	}
	if n.LeaderAPIAddr() != "" || n.IsLeader() {
		t.Fatal("closed node claims a leader")
	}
}

func TestStepDownOnClose(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.StepDownOnClose = true })
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	idx := insertRows(t, leader, 0, 3)
	waitSame(t, idx, nodes...)

	// A planned shutdown hands leadership over instead of leaving the
	// others to time out.
	rest := followers(leader, nodes...)
	leader.stop()
	// Without a hand-over no follower could win an election until a
	// heartbeat timeout after the last heartbeat; with it, the new leader
	// has won by the time Close returns.
	waitFor(t, DefaultHeartbeatTimeout/2, "a new leader right after close", func() bool {
		return rest[0].IsLeader() || rest[1].IsLeader()
	})
	leader = waitLeader(t, rest...)
	idx = insertRows(t, leader, 3, 3)
	waitSame(t, idx, rest...)
}
