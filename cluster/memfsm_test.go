package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// memFSM is an in-memory StateMachine: a statement log. Every statement of
// an execute entry is appended to the log, and a query answers the log so
// far, one row per statement. It keeps member metadata as the real FSM
// does, so nodes find each other's API addresses, and snapshots to JSON.
// Cluster tests that are about Raft (replication, failover, membership)
// run on it, without SQLite; its state lives only as long as the process,
// so a restarted node gets it back from the log and snapshots.
type memFSM struct {
	mu        sync.Mutex
	state     memState
	appliedAt time.Time
	// changed is closed, and replaced, whenever the applied index moves.
	changed   chan struct{}
	checksums map[uint64]string
}

// memState is what memFSM replicates, and its snapshot.
type memState struct {
	Index uint64                  `json:"index"`
	Log   []string                `json:"log"`
	Nodes map[string]fsm.NodeMeta `json:"nodes"`
}

// errMemUnsupported answers what only a database can do.
var errMemUnsupported = errors.New("memFSM: not supported by the in-memory state machine")

// openMem is a stateMachineOpener for memFSM.
func openMem(string, *slog.Logger, *commitHold) (closableStateMachine, error) {
	return &memFSM{state: memState{Nodes: map[string]fsm.NodeMeta{}}, changed: make(chan struct{}), checksums: map[uint64]string{}}, nil
}

func (m *memFSM) Apply(l *raft.Log) any { return m.ApplyBatch([]*raft.Log{l})[0] }

func (m *memFSM) ApplyBatch(logs []*raft.Log) []any {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]any, len(logs))
	for i, l := range logs {
		if l.Index <= m.state.Index {
			out[i] = &api.Response{Index: l.Index}
			continue
		}
		m.state.Index = l.Index
		if l.Type != raft.LogCommand {
			continue
		}
		cmd, err := fsm.DecodeCommand(l.Data)
		if err != nil {
			out[i] = fmt.Errorf("memFSM: entry %d: %w", l.Index, err)
			continue
		}
		resp := &api.Response{Index: l.Index}
		switch cmd.Type {
		case fsm.CmdExecute:
			resp = m.execute(l.Index, cmd.Request)
		case fsm.CmdBatch:
			resps := make(fsm.BatchResponse, len(cmd.Requests))
			for j, req := range cmd.Requests {
				resps[j] = m.execute(l.Index, req)
			}
			out[i] = resps
			continue
		case fsm.CmdChunk:
			out[i] = errMemUnsupported
			continue
		case fsm.CmdSetNode:
			m.state.Nodes[cmd.Node.ID] = *cmd.Node
		case fsm.CmdRemoveNode:
			delete(m.state.Nodes, cmd.Node.ID)
		case fsm.CmdChecksum:
			m.checksums[l.Index] = m.sum()
		}
		out[i] = resp
	}
	m.appliedAt = time.Now()
	close(m.changed)
	m.changed = make(chan struct{})
	return out
}

// execute appends req's statements to the log. The caller holds m.mu.
func (m *memFSM) execute(index uint64, req *api.Request) *api.Response {
	resp := &api.Response{Index: index}
	for _, st := range req.Statements {
		m.state.Log = append(m.state.Log, st.SQL)
		resp.Results = append(resp.Results, api.Result{RowsAffected: 1})
	}
	return resp
}

// sum is the checksum of the log. The caller holds m.mu.
func (m *memFSM) sum() string {
	h := sha256.New()
	for _, s := range m.state.Log {
		fmt.Fprintf(h, "%d:%s", len(s), s)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (m *memFSM) Snapshot() (raft.FSMSnapshot, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, err := json.Marshal(m.state)
	if err != nil {
		return nil, fmt.Errorf("memFSM: snapshot: %w", err)
	}
	return memSnapshot(data), nil
}

func (m *memFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var st memState
	if err := json.NewDecoder(rc).Decode(&st); err != nil {
		return fmt.Errorf("memFSM: restore: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = st
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

// Discard empties the state, as a restart does.
func (m *memFSM) Discard() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.state = memState{Nodes: map[string]fsm.NodeMeta{}}
	close(m.changed)
	m.changed = make(chan struct{})
	return nil
}

// PrepareRestore has nothing to prepare: Restore decodes the snapshot.
func (m *memFSM) PrepareRestore(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

func (m *memFSM) AppliedIndex() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return m.state.Index }
func (m *memFSM) AppliedAt() time.Time { m.mu.Lock(); defer m.mu.Unlock(); return m.appliedAt }

func (m *memFSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		m.mu.Lock()
		applied, changed := m.state.Index, m.changed
		m.mu.Unlock()
		if applied >= index {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("memFSM: wait for index %d (applied %d): %w", index, applied, ctx.Err())
		}
	}
}

func (m *memFSM) Err() error { return nil }

func (m *memFSM) Nodes() map[string]fsm.NodeMeta {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.state.Nodes)
}

// Query answers each statement with the log, one row per statement.
func (m *memFSM) Query(_ context.Context, req *api.Request) ([]api.Result, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]api.Result, len(req.Statements))
	for i := range out {
		out[i].Columns, out[i].Types = []string{"statement"}, []string{"text"}
		for _, s := range m.state.Log {
			out[i].Rows = append(out[i].Rows, []api.Value{s})
		}
	}
	return out, nil
}

// log is the statement log applied so far.
func (m *memFSM) log() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.state.Log...)
}

func (m *memFSM) AllReadOnly(context.Context, *api.Request) (bool, error) { return false, nil }
func (m *memFSM) PrepareLoad(context.Context, string) error               { return errMemUnsupported }
func (m *memFSM) WatchChanges(context.Context, api.WatchRequest, time.Duration) (api.WatchPage, error) {
	return api.WatchPage{}, errMemUnsupported
}
func (m *memFSM) Backup(context.Context, io.Writer, api.BackupOptions) error {
	return errMemUnsupported
}

func (m *memFSM) Checksum(context.Context) (uint64, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state.Index, m.sum(), nil
}

func (m *memFSM) ChecksumAt(ctx context.Context, index uint64) (string, error) {
	if err := m.WaitApplied(ctx, index); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	sum, ok := m.checksums[index]
	if !ok {
		return "", fmt.Errorf("memFSM: index %d: %w", index, api.ErrNoChecksum)
	}
	return sum, nil
}

func (m *memFSM) WALSize() int64                    { return 0 }
func (m *memFSM) TruncateWAL(context.Context) error { return nil }
func (m *memFSM) Stats() map[string]any             { return map[string]any{"in_memory": true} }
func (m *memFSM) SessionStats() map[string]any      { return map[string]any{} }
func (m *memFSM) Close() error                      { return nil }

// memSnapshot is a memFSM snapshot: its state, in JSON.
type memSnapshot []byte

func (s memSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("memFSM: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (memSnapshot) Release() {}

// The state machine is an interface: three nodes replicate, fail over and
// catch up on the in-memory one. A node restarted with an empty memory
// gets its state back from its own log, and a write made while it was
// down reaches it.
func TestMemFailoverAndRestart(t *testing.T) {
	nodes := startClusterOf(t, 3, nil, openMem)
	leader := waitLeader(t, nodes...)
	idx := insertRows(t, leader, 0, 10)
	waitSame(t, idx, nodes...)

	old := leader
	old.stop()
	rest := followers(old, nodes...)
	leader = waitLeader(t, rest...)
	idx = insertRows(t, leader, 10, 10)
	waitSame(t, idx, rest...)

	back := old.restart()
	all := append(rest, back)
	waitLeader(t, all...)
	if got := waitSame(t, idx, all...); got != 20 {
		t.Fatalf("statements = %d, want 20", got)
	}
	if log := back.fsm.(*memFSM).log(); log[19] != insertStmt(20).SQL {
		t.Fatalf("restarted node's log ends with %q", log[len(log)-1])
	}
}

// A node that joins after the log was compacted is sent a snapshot of the
// in-memory state through the snapshot store, and a removed node leaves
// the configuration.
func TestMemSnapshotJoinAndRemove(t *testing.T) {
	nodes := startClusterOf(t, 3, func(c *Config) {
		c.SnapshotThreshold = 16
		c.TrailingLogs = 4
		c.SnapshotInterval = 50 * time.Millisecond
	}, openMem)
	leader := waitLeader(t, nodes...)
	idx := insertRows(t, leader, 0, 60)
	waitSame(t, idx, nodes...)
	waitFor(t, 10*time.Second, "the leader to compact its log", func() bool {
		snap, _ := leader.Stats()["raft"].(map[string]any)["last_snapshot_index"].(uint64)
		return snap >= idx-20
	})

	cfg := testConfig(t, "late", listen(t))
	cfg.Join = []string{leader.RaftAddr()}
	late, err := startWith(t, cfg, nodes[0].logger, Open, openMem)
	if err != nil {
		t.Fatalf("start late node: %v", err)
	}
	nodes[0].g.add(late)
	all := append(nodes[:3:3], late)
	if got := waitSame(t, idx, all...); got != 60 {
		t.Fatalf("statements = %d, want 60", got)
	}
	// Raft records the installed snapshot just after the FSM restored it.
	waitFor(t, 5*time.Second, "the late node to record an installed snapshot", func() bool {
		snap, _ := late.Stats()["raft"].(map[string]any)["last_snapshot_index"].(uint64)
		return snap > 0
	})

	if err := leader.Remove(ctxT(t), "late"); err != nil {
		t.Fatalf("remove late: %v", err)
	}
	if _, ok := memberIDs(t, leader)["late"]; ok {
		t.Fatal("late is still a member after its removal")
	}
	idx = insertRows(t, leader, 60, 1)
	if got := waitSame(t, idx, nodes...); got != 61 {
		t.Fatalf("statements = %d, want 61", got)
	}
}
