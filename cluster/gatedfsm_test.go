package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// TestGatedFSMAppliesOnlyDurableEntries: the state machine raft drives
// applies a leader's entries only once they are on its disk, and after a
// failed sync applies nothing and halts the node.
func TestGatedFSMAppliesOnlyDurableEntries(t *testing.T) {
	f := openLeadingFixture(t)
	sm, _ := openMem("", nil, nil)
	halted := make(chan error, 1)
	g := gatedFSM{StateMachine: sm, wal: f.wal, halt: func(err error) { halted <- err }, committed: func() {}}

	data, err := fsm.EncodeCommand(&fsm.Command{Type: fsm.CmdExecute, Request: &api.Request{Statements: []api.Statement{stmt("INSERT 1")}}})
	if err != nil {
		t.Fatal(err)
	}
	logs := walTestLogs(1, 2, 0)
	for _, l := range logs {
		l.Data = data
	}
	if err := f.wal.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	done := make(chan []any, 1)
	go func() { done <- g.ApplyBatch(logs) }()
	select {
	case <-done:
		t.Fatal("applied before the entries were durable")
	case <-time.After(50 * time.Millisecond):
	}
	if sm.AppliedIndex() != 0 {
		t.Fatalf("applied index %d before the sync", sm.AppliedIndex())
	}
	f.release <- struct{}{}
	for _, r := range <-done {
		if err, ok := r.(error); ok {
			t.Fatal(err)
		}
	}
	if sm.AppliedIndex() != 2 {
		t.Fatalf("applied index %d after the sync; want 2", sm.AppliedIndex())
	}

	f.fail = errors.New("injected EIO")
	more := walTestLogs(3, 3, 0)
	more[0].Data = logs[0].Data
	if err := f.wal.StoreLogs(more); err != nil {
		t.Fatal(err)
	}
	f.release <- struct{}{}
	for _, r := range g.ApplyBatch(more) {
		if err, ok := r.(error); !ok || !errors.Is(err, f.fail) {
			t.Fatalf("entry after a failed sync answered %v; want the sync's error", r)
		}
	}
	if sm.AppliedIndex() != 2 {
		t.Fatalf("applied index %d after a failed sync; want 2", sm.AppliedIndex())
	}
	if err := <-halted; !errors.Is(err, f.fail) {
		t.Fatalf("halted with %v", err)
	}
	if got := (gatedFSM{StateMachine: sm, wal: f.wal, committed: func() {}}).ApplyBatch(nil); len(got) != 0 {
		t.Fatalf("empty batch answered %v", got)
	}
}
