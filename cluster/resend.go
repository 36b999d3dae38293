package cluster

import (
	"context"
	"time"

	"github.com/hashicorp/raft"
)

// resendAppends is snapshotSendCheck, except
// that an AppendEntries carrying entries (or probing a follower's log) that
// fails is sent again, every resendPause, for as long as it is still wanted,
// instead of failing back to raft at once.
//
// Why: hashicorp/raft backs off after each failed AppendEntries to a
// follower before it tries again, doubling from 10 ms up to 10.24 s, and
// nothing wakes it early (a heartbeat that succeeds again does not). A
// follower that was down for 6-10 s therefore waited up to another 10 s
// after it restarted before the leader sent it anything, and its reads
// (level none, min_index, read-index waits) stayed that far behind. Raft
// sees one slow call instead of a run of failures, so it never backs off,
// and the follower hears from the leader within resendPause of being back.
//
// A call is wanted while this node leads in the request's term, the
// follower is still in the configuration at the same address, and no
// leadership transfer is under way; otherwise the last error goes back to
// raft, which then stops replicating to it, or retries, as before. (During
// a transfer raft hands its replication goroutine a deferred error through
// a one-slot channel that only the goroutine's own loop empties: a resend
// holding the goroutine would leave a second transfer blocked forever, and
// with it raft's "leadership transfer in progress" flag.) Resending is
// safe: AppendEntries is idempotent. Heartbeats, which raft sends on its
// own schedule with a short capped backoff, and snapshots pass through.
type resendAppends struct {
	*snapshotSendCheck
	// send is snapshotSendCheck's AppendEntries (a fake in tests).
	send   func(raft.ServerID, raft.ServerAddress, *raft.AppendEntriesRequest, *raft.AppendEntriesResponse) error
	ctx    context.Context // the node's: ends the resending on Close
	wanted func(term uint64, peer raft.ServerID, addr raft.ServerAddress) bool
	reach  *followerReachability
}

// resendPause is how long a failed AppendEntries waits before it is sent
// again: the most a returning follower waits to hear from the leader.
const resendPause = 50 * time.Millisecond

func (r *resendAppends) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := r.send(id, target, args, resp)
	if err == nil || isHeartbeat(args) {
		return err
	}
	start := time.Now()
	r.reach.failed(id, target, err.Error())
	r.reach.logger.Debug("AppendEntries failed; resending until the follower answers", "peer", id, "addr", target, "error", err)
	for {
		select {
		case <-r.ctx.Done():
			return err
		case <-time.After(resendPause):
		}
		if !r.wanted(args.Term, id, target) {
			return err
		}
		if err = r.send(id, target, args, resp); err == nil {
			r.reach.answered(id)
			r.reach.logger.Debug("resent AppendEntries got through", "peer", id, "after", time.Since(start).Round(time.Millisecond))
			return nil
		}
	}
}

// isHeartbeat reports whether req is one of raft's heartbeats (the test
// raft's NetworkTransport applies for its heartbeat fast path).
func isHeartbeat(req *raft.AppendEntriesRequest) bool {
	return req.PrevLogEntry == 0 && req.PrevLogTerm == 0 && len(req.Entries) == 0 && req.LeaderCommitIndex == 0
}

// replicationWanted reports whether this node still leads in term, peer is
// still in the configuration at addr, and no leadership transfer is under
// way: whether a failed AppendEntries to it should be sent again.
func (n *Node) replicationWanted(term uint64, peer raft.ServerID, addr raft.ServerAddress) bool {
	if n.closed.Load() || n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term || n.lease.transferring() {
		return false
	}
	servers, err := n.servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if s.ID == peer {
			return s.Address == addr
		}
	}
	return false
}
