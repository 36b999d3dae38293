package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

// uploadFile returns an upload, another cluster's backup holding rows
// 1..30 of table foo, and those rows.
func uploadFile(t *testing.T) ([]byte, [][]api.Value) {
	t.Helper()
	src := startCluster(t, 1, nil)
	createTable(t, src[0])
	insertRows(t, src[0], 100, 30)
	var file bytes.Buffer
	if err := src[0].Backup(ctxT(t), &file, api.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	return file.Bytes(), rows(t, src[0])
}

// linearizableRows reads table foo on n at level linearizable.
func linearizableRows(t *testing.T, n *testNode) [][]api.Value {
	t.Helper()
	idx, err := n.ReadIndex(ctxT(t))
	if err != nil {
		t.Fatalf("read index on %s: %v", n.id, err)
	}
	if err := n.WaitApplied(ctxT(t), idx); err != nil {
		t.Fatalf("wait for index %d on %s: %v", idx, n.id, err)
	}
	return rows(t, n)
}

// TestLoadThroughUserSnapshot loads a database on the leader: every node
// ends up with it at the same applied index, Raft's snapshot index, the
// member metadata survives, writes go on, and a restarted follower reuses
// its database instead of restoring the snapshot again.
func TestLoadThroughUserSnapshot(t *testing.T) {
	file, want := uploadFile(t)

	// Started last, so that testLogs has this cluster's lines.
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	waitMeta(t, nodes...)
	createTable(t, leader)
	insertRows(t, leader, 0, 10)

	for _, f := range followers(leader, nodes...) {
		if err := f.Load(ctxT(t), bytes.NewReader(file)); !errors.Is(err, api.ErrNotLeader) {
			t.Fatalf("load on a follower: %v", err)
		}
	}
	if err := leader.Load(ctxT(t), bytes.NewReader(file[:len(file)/2])); !errors.Is(err, api.ErrInvalidLoad) {
		t.Fatalf("truncated load: %v", err)
	}
	if err := leader.Load(ctxT(t), bytes.NewReader(file)); err != nil {
		t.Fatal(err)
	}
	index := leader.AppliedIndex()
	assertNoLoadPending(t, leader)
	if got := leader.raft.Stats()["last_snapshot_index"]; got != strconv.FormatUint(index, 10) {
		t.Errorf("fsm applied index %d, raft snapshot index %s", index, got)
	}
	waitSame(t, index, nodes...)
	if got := rows(t, nodes[1]); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows after load: %v, want %v", got, want)
	}
	for _, n := range nodes {
		if len(n.fsm.Nodes()) != 3 {
			t.Errorf("%s: member metadata after load: %v", n.id, n.fsm.Nodes())
		}
	}
	idx := insertRows(t, leader, 200, 5)
	waitSame(t, idx, nodes...)

	f := followers(leader, nodes...)[0]
	f.stop()
	f = f.restart()
	waitSame(t, idx, leader, f)
	if got := f.metrics.snapshotsRestored.Load(); got != 0 {
		t.Errorf("restarted follower restored %d snapshots, want to reuse its database", got)
	}
	// The load drops the leader's log, so raft finds the entries before
	// it gone and sends the followers the snapshot: expected, no ERROR.
	for _, line := range strings.Split(testLogs(t), "\n") {
		if strings.Contains(line, "level=ERROR") && strings.Contains(line, "failed to get log") {
			t.Errorf("an expected missing entry logged as an error: %s", line)
		}
	}
}

// TestLoadVisibleToReadsThatFollow checks the guarantee an acknowledged
// load gives: a read that starts after Load returned sees the loaded
// database, on the leader at every level (local, read index, through the
// log) and on a follower through the read index, with all three nodes up
// and with one of them down.
func TestLoadVisibleToReadsThatFollow(t *testing.T) {
	file, want := uploadFile(t)

	for _, down := range []bool{false, true} {
		t.Run(fmt.Sprintf("one_down=%v", down), func(t *testing.T) {
			nodes := startCluster(t, 3, nil)
			leader := waitLeader(t, nodes...)
			waitMeta(t, nodes...)
			createTable(t, leader)
			insertRows(t, leader, 0, 10)
			fs := followers(leader, nodes...)
			up := fs[0]
			if down {
				fs[1].stop()
			} else {
				waitSame(t, leader.AppliedIndex(), nodes...)
			}
			for round := range 3 {
				if err := leader.Load(ctxT(t), bytes.NewReader(file)); err != nil {
					t.Fatal(err)
				}
				if got := rows(t, leader); !reflect.DeepEqual(got, want) {
					t.Fatalf("round %d: leader's local read right after the load: %d rows, want %d", round, len(got), len(want))
				}
				for _, n := range []*testNode{leader, up} {
					if got := linearizableRows(t, n); !reflect.DeepEqual(got, want) {
						t.Fatalf("round %d: linearizable read on %s right after the load: %d rows, want %d", round, n.id, len(got), len(want))
					}
				}
				resp, err := leader.Execute(ctxT(t), &api.Request{ReadOnly: true, Statements: []api.Statement{stmt("SELECT COUNT(*) FROM foo")}})
				if err != nil {
					t.Fatalf("round %d: strong read right after the load: %v", round, err)
				}
				if got := resp.Results[0].Rows[0][0]; fmt.Sprint(got) != strconv.Itoa(len(want)) {
					t.Fatalf("round %d: strong read right after the load: %v rows, want %d", round, got, len(want))
				}
				// Make the next load replace something.
				insertRows(t, leader, 500, 3)
			}
		})
	}
}

// restoreGate holds the snapshot restores of the state machines opened by
// its opener in chosen directories until released.
type restoreGate struct {
	mu   sync.Mutex
	held map[string]chan struct{} // by data directory
}

// opener opens SQLite state machines whose Restore waits at the gate.
func (g *restoreGate) opener(dir string, l *slog.Logger, hold *commitHold) (closableStateMachine, error) {
	sm, err := openSQLite(dir, l, hold)
	if err != nil {
		return nil, err
	}
	return gatedRestore{sm, g, dir}, nil
}

// hold makes the restores of n's state machine wait until the returned
// function is called.
func (g *restoreGate) hold(n *testNode) (release func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch := make(chan struct{})
	g.held[n.cfg.Dir] = ch
	var once sync.Once
	return func() { once.Do(func() { close(ch) }) }
}

func (g *restoreGate) wait(dir string) {
	g.mu.Lock()
	ch := g.held[dir]
	g.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

type gatedRestore struct {
	closableStateMachine
	gate *restoreGate
	dir  string
}

func (s gatedRestore) Restore(rc io.ReadCloser) error {
	s.gate.wait(s.dir)
	return s.closableStateMachine.Restore(rc)
}

// TestLoadNotReadBeforeCommitted: raft's user restore replaces the
// leader's database before any follower holds the load, and the load is
// committed only once a quorum has installed it. A linearizable read on
// the leader in between must not answer from the loaded database: were the
// leader to fail now, the next leader would not have the load, and a later
// read would find the old rows again. Here the only other live voter
// cannot install the snapshot until released.
func TestLoadNotReadBeforeCommitted(t *testing.T) {
	file, want := uploadFile(t)

	gate := &restoreGate{held: map[string]chan struct{}{}}
	nodes := startClusterOf(t, 3, nil, gate.opener)
	leader := waitLeader(t, nodes...)
	waitMeta(t, nodes...)
	createTable(t, leader)
	old := rows(t, leader)
	fs := followers(leader, nodes...)
	waitSame(t, leader.AppliedIndex(), nodes...)
	fs[1].stop()
	release := gate.hold(fs[0])
	defer release()

	before := leader.AppliedIndex()
	loaded := make(chan error, 1)
	go func() { loaded <- leader.Load(context.Background(), bytes.NewReader(file)) }()
	waitFor(t, 10*time.Second, "the leader's database replaced by the load", func() bool { return leader.AppliedIndex() > before })
	loadIndex := leader.AppliedIndex()

	// Give a read every chance to come back: a round takes a few
	// milliseconds on an idle cluster.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	idx, err := leader.ReadIndex(ctx)
	cancel()
	if err == nil {
		if commit := leader.raft.CommitIndex(); commit < idx {
			t.Errorf("the leader handed out read index %d while the load at index %d was not committed (commit index %d)", idx, loadIndex, commit)
		}
	}
	// A read index taken just before the restore would let a reader on
	// the leader into the loaded database: the leader's reads wait.
	ctx, cancel = context.WithTimeout(context.Background(), time.Second)
	res, err := leader.Query(ctx, &api.Request{Statements: []api.Statement{stmt("SELECT id, v FROM foo ORDER BY id")}})
	cancel()
	if err == nil {
		t.Errorf("a read of the leader's database answered %d rows (old %d, loaded %d) while the load at index %d was not committed (commit index %d)",
			len(res[0].Rows), len(old), len(want), loadIndex, leader.raft.CommitIndex())
	}
	select {
	case err := <-loaded:
		t.Fatalf("load returned before the only other live voter installed it: %v", err)
	default:
	}

	release()
	if err := <-loaded; err != nil {
		t.Fatal(err)
	}
	for _, n := range []*testNode{leader, fs[0]} {
		if got := linearizableRows(t, n); !reflect.DeepEqual(got, want) {
			t.Fatalf("linearizable read on %s after the load: %d rows, want %d", n.id, len(got), len(want))
		}
	}
}

// TestLoadNotCommittedBeforeLeaderStops stops a leader whose load has been
// installed on it but not committed (both followers are down, so raft's
// no-op after the user restore cannot commit). The followers come back
// without it, elect a leader at the lower index and take writes; the old
// leader, restarted from its data, must never serve the load and must end
// up with what the cluster committed.
func TestLoadNotCommittedBeforeLeaderStops(t *testing.T) {
	file, loaded := uploadFile(t)

	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	waitMeta(t, nodes...)
	createTable(t, leader)
	waitSame(t, insertRows(t, leader, 0, 10), nodes...)
	fs := followers(leader, nodes...)
	for _, f := range fs {
		f.stop()
	}
	loadErr := leader.Load(ctxT(t), bytes.NewReader(file))
	if leader.AppliedIndex() <= loadIndexGap {
		t.Fatalf("the load was not installed on the leader before it stepped down (load: %v)", loadErr)
	}
	leader.stop()

	for i, f := range fs {
		fs[i] = f.restart()
	}
	newLeader := waitLeader(t, fs...)
	idx := insertRows(t, newLeader, 10, 5)
	waitSame(t, idx, fs...)
	want := rows(t, newLeader)

	old := leader.restart()
	waitFor(t, 30*time.Second, "the old leader to hold the cluster's rows", func() bool {
		res, err := old.Query(ctxT(t), &api.Request{Statements: []api.Statement{stmt("SELECT id, v FROM foo ORDER BY id")}})
		if err != nil || len(res) != 1 || res[0].Error != "" {
			return false // the database is being rebuilt
		}
		if reflect.DeepEqual(res[0].Rows, loaded) {
			t.Fatalf("the restarted old leader serves the load the cluster never committed (applied index %d, cluster at %d)", old.AppliedIndex(), idx)
		}
		return reflect.DeepEqual(res[0].Rows, want)
	})
	waitSame(t, insertRows(t, newLeader, 20, 1), append(fs, old)...)
	assertNoLoadPending(t, old)

	if !errors.Is(loadErr, api.ErrLeadershipLost) {
		t.Errorf("load whose outcome is unknown: %v, want %v", loadErr, api.ErrLeadershipLost)
	}
	select {
	case err := <-leader.Halted():
		t.Logf("the old leader halted: %v", err)
	default:
		t.Error("the old leader did not halt after its load failed once installed")
	}
}

// assertNoLoadPending fails unless n's load-pending marker is gone.
func assertNoLoadPending(t *testing.T, n *testNode) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(n.cfg.Dir, "raft", loadPendingFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s: load-pending marker: %v, want none", n.id, err)
	}
}
