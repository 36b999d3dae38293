package cluster

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// voteGuard is the raft.Transport raft runs on: the node's NetworkTransport,
// except that for a while after the node starts it refuses every vote and
// pre-vote request itself instead of passing it to raft.
//
// A voter that knows a leader refuses to vote for anyone else; that is what
// makes a leader's read lease safe (see readLease). A voter that has just
// restarted knows no leader, so without the guard it could help elect a new
// leader moments after acknowledging the old one's heartbeat, while the old
// leader still serves reads on its lease. Refusing votes for
// HeartbeatTimeout after starting gives a restarted voter the same delay a
// running one has before it abandons its leader. Elections are not slowed:
// a node's own election timer does not fire before HeartbeatTimeout either.
//
// It also decides which heartbeats take raft's fast path (see
// SetHeartbeatHandler).
type voteGuard struct {
	*raft.NetworkTransport
	ctx   context.Context
	until time.Time
	rpcs  chan raft.RPC
	// raft is the node's raft once it runs (nil before): its state
	// decides whether a heartbeat may take the fast path.
	raft atomic.Pointer[raftState]
}

// raftState is what the heartbeat routing asks of raft.
type raftState interface {
	State() raft.RaftState
	CurrentTerm() uint64
}

// newVoteGuard starts the guard; it forwards RPCs until ctx ends.
func newVoteGuard(ctx context.Context, t *raft.NetworkTransport, hold time.Duration) *voteGuard {
	g := &voteGuard{NetworkTransport: t, ctx: ctx, until: time.Now().Add(hold), rpcs: make(chan raft.RPC)}
	go g.forward(ctx)
	return g
}

// Consumer is the channel raft reads incoming RPCs from.
func (g *voteGuard) Consumer() <-chan raft.RPC { return g.rpcs }

func (g *voteGuard) forward(ctx context.Context) {
	in := g.NetworkTransport.Consumer()
	for {
		select {
		case rpc := <-in:
			if g.refused(rpc) {
				continue
			}
			select {
			case g.rpcs <- rpc:
			case <-ctx.Done():
				rpc.Respond(nil, raft.ErrRaftShutdown)
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// refused answers rpc with a refusal if it asks for a vote while the guard
// holds, and reports whether it did. The refusal carries the candidate's
// own term, which a candidate counts as a vote not granted.
func (g *voteGuard) refused(rpc raft.RPC) bool {
	if !time.Now().Before(g.until) {
		return false
	}
	switch req := rpc.Command.(type) {
	case *raft.RequestVoteRequest:
		rpc.Respond(&raft.RequestVoteResponse{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}, Term: req.Term}, nil)
		return true
	case *raft.RequestPreVoteRequest:
		rpc.Respond(&raft.RequestPreVoteResponse{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax}, Term: req.Term}, nil)
		return true
	}
	return false
}

// SetHeartbeatHandler installs raft's heartbeat fast path behind a check:
// a heartbeat is handed to fn, on the transport's connection goroutine, only
// while raft is a follower in the heartbeat's own term; any other heartbeat
// goes to raft's main loop like every other RPC.
//
// Why: fn is raft's processHeartbeat, which runs appendEntries outside the
// main loop, and appendEntries switches a node that is not a follower, or
// hears of a later term, to follower in that term. On a leader whose main
// loop is dispatching client writes at that moment, the writes are stamped
// with the new term (dispatchLogs reads the current term as it goes) and
// stored at indexes where the new leader's own entries of that term go: two
// different entries with the same index and term, which Raft's log matching
// never repairs. Seen in a selftest run: a leader paused with SIGSTOP, with
// writes queued, resumed just as the new leader's first heartbeat arrived;
// it kept three such entries and its database diverged. In the main loop the
// same heartbeat makes the old leader step down between two dispatches.
// A follower in the heartbeat's term is left a follower in that term by
// appendEntries, and no leader of that term can exist beside the sender, so
// the fast path stays for the heartbeats it is for.
func (g *voteGuard) SetHeartbeatHandler(fn func(raft.RPC)) {
	if fn == nil {
		g.NetworkTransport.SetHeartbeatHandler(nil)
		return
	}
	g.NetworkTransport.SetHeartbeatHandler(func(rpc raft.RPC) {
		if g.fastPathSafe(rpc) {
			fn(rpc)
			return
		}
		select {
		case g.rpcs <- rpc:
		case <-g.ctx.Done():
			rpc.Respond(nil, raft.ErrRaftShutdown)
		}
	})
}

// fastPathSafe reports whether rpc, a heartbeat, may bypass raft's main
// loop: raft runs, is a follower, and is in the heartbeat's term.
func (g *voteGuard) fastPathSafe(rpc raft.RPC) bool {
	p := g.raft.Load()
	req, ok := rpc.Command.(*raft.AppendEntriesRequest)
	if p == nil || !ok {
		return false
	}
	r := *p
	return r.State() == raft.Follower && req.Term == r.CurrentTerm()
}
