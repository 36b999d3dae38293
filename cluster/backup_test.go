package cluster

import (
	"bytes"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// TestLoadThroughUserSnapshot loads a database on the leader: every node
// ends up with it at the same applied index, Raft's snapshot index, the
// member metadata survives, writes go on, and a restarted follower reuses
// its database instead of restoring the snapshot again.
func TestLoadThroughUserSnapshot(t *testing.T) {
	// The upload: another cluster's backup holding rows 1..30.
	src := startCluster(t, 1, nil)
	createTable(t, src[0])
	insertRows(t, src[0], 100, 30)
	var file bytes.Buffer
	if err := src[0].Backup(ctxT(t), &file, api.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	want := rows(t, src[0])

	// Started last, so that testLogs has this cluster's lines.
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	waitMeta(t, nodes...)
	createTable(t, leader)
	insertRows(t, leader, 0, 10)

	for _, f := range followers(leader, nodes...) {
		if err := f.Load(ctxT(t), bytes.NewReader(file.Bytes())); !errors.Is(err, api.ErrNotLeader) {
			t.Fatalf("load on a follower: %v", err)
		}
	}
	if err := leader.Load(ctxT(t), bytes.NewReader(file.Bytes()[:file.Len()/2])); !errors.Is(err, api.ErrInvalidLoad) {
		t.Fatalf("truncated load: %v", err)
	}
	if err := leader.Load(ctxT(t), bytes.NewReader(file.Bytes())); err != nil {
		t.Fatal(err)
	}
	index := leader.AppliedIndex()
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
