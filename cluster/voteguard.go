package cluster

import (
	"context"
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
type voteGuard struct {
	*raft.NetworkTransport
	until time.Time
	rpcs  chan raft.RPC
}

// newVoteGuard starts the guard; it forwards RPCs until ctx ends.
func newVoteGuard(ctx context.Context, t *raft.NetworkTransport, hold time.Duration) *voteGuard {
	g := &voteGuard{NetworkTransport: t, until: time.Now().Add(hold), rpcs: make(chan raft.RPC)}
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
