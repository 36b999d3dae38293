package cluster

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// fakeRaftState is a raft in a fixed state and term.
type fakeRaftState struct {
	state raft.RaftState
	term  uint64
}

func (f fakeRaftState) State() raft.RaftState { return f.state }
func (f fakeRaftState) CurrentTerm() uint64   { return f.term }

// TestHeartbeatFastPathOnlyForFollowersInTerm: raft's heartbeat fast path
// runs outside its main loop, and a heartbeat of a later term there turns a
// leader into a follower while its main loop may be stamping client writes
// with the term (two entries with one index and term: the replicas
// diverge). So only a follower in the heartbeat's own term gets the fast
// path; every other heartbeat reaches raft's main loop.
func TestHeartbeatFastPathOnlyForFollowersInTerm(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	target, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	sender, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 2*time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	g := newVoteGuard(ctx, target, 0)
	fast := make(chan struct{}, 1)
	g.SetHeartbeatHandler(func(rpc raft.RPC) {
		fast <- struct{}{}
		rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
	})

	for _, tc := range []struct {
		name     string
		raft     *fakeRaftState
		term     uint64
		wantFast bool
	}{
		{"raft not running yet", nil, 6, false},
		{"leader hears of a later term", &fakeRaftState{raft.Leader, 5}, 6, false},
		{"candidate", &fakeRaftState{raft.Candidate, 6}, 6, false},
		{"follower of an earlier term", &fakeRaftState{raft.Follower, 5}, 6, false},
		{"follower in the heartbeat's term", &fakeRaftState{raft.Follower, 6}, 6, true},
	} {
		if tc.raft != nil {
			var s raftState = *tc.raft
			g.raft.Store(&s)
		}
		done := make(chan error, 1)
		go func() {
			req := &raft.AppendEntriesRequest{Term: tc.term, RPCHeader: raft.RPCHeader{Addr: []byte(sender.LocalAddr())}}
			done <- sender.AppendEntries("target", target.LocalAddr(), req, &raft.AppendEntriesResponse{})
		}()
		select {
		case <-fast:
			if !tc.wantFast {
				t.Fatalf("%s: the heartbeat took the fast path", tc.name)
			}
		case rpc := <-g.Consumer():
			if tc.wantFast {
				t.Fatalf("%s: the heartbeat went to the main loop", tc.name)
			}
			rpc.Respond(&raft.AppendEntriesResponse{Success: true}, nil)
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: the heartbeat reached neither the fast path nor the main loop", tc.name)
		}
		if err := <-done; err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
}
