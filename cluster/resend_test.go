package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestResendAppends: a failed AppendEntries with entries is sent again
// until it succeeds, so raft never counts a failure (and never backs off);
// it gives up with the last error once replication is no longer wanted;
// heartbeats fail back at once.
func TestResendAppends(t *testing.T) {
	var calls atomic.Int32
	failFor := int32(5)
	wanted := atomic.Bool{}
	wanted.Store(true)
	refused := errors.New("connection refused")
	r := &resendAppends{
		send: func(raft.ServerID, raft.ServerAddress, *raft.AppendEntriesRequest, *raft.AppendEntriesResponse) error {
			if calls.Add(1) <= failFor {
				return refused
			}
			return nil
		},
		ctx:    context.Background(),
		wanted: func(uint64, raft.ServerID, raft.ServerAddress) bool { return wanted.Load() },
		reach:  newFollowerReachability(testLogger(t)),
	}
	entries := &raft.AppendEntriesRequest{Term: 3, PrevLogEntry: 10, PrevLogTerm: 2, Entries: []*raft.Log{{Index: 11, Term: 3}}, LeaderCommitIndex: 10}
	if err := r.AppendEntries("f", "addr", entries, &raft.AppendEntriesResponse{}); err != nil {
		t.Fatalf("resent AppendEntries: %v", err)
	}
	if n := calls.Load(); n != failFor+1 {
		t.Fatalf("%d calls, want %d", n, failFor+1)
	}

	calls.Store(0)
	failFor = 1 << 30
	heartbeat := &raft.AppendEntriesRequest{Term: 3}
	if err := r.AppendEntries("f", "addr", heartbeat, &raft.AppendEntriesResponse{}); !errors.Is(err, refused) || calls.Load() != 1 {
		t.Fatalf("heartbeat: %v after %d calls, want the error after 1", err, calls.Load())
	}

	calls.Store(0)
	done := make(chan error, 1)
	go func() { done <- r.AppendEntries("f", "addr", entries, &raft.AppendEntriesResponse{}) }()
	waitFor(t, 5*time.Second, "a few resends", func() bool { return calls.Load() >= 3 })
	wanted.Store(false)
	select {
	case err := <-done:
		if !errors.Is(err, refused) {
			t.Fatalf("no longer wanted: %v, want the last error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("resending went on after replication stopped being wanted")
	}
}
