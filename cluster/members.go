package cluster

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// Members returns the cluster's servers, sorted by ID.
func (n *Node) Members() ([]api.Member, error) {
	servers, err := n.servers()
	if err != nil {
		return nil, err
	}
	nodes := n.fsm.Nodes()
	leader := n.LeaderID()
	out := make([]api.Member, 0, len(servers))
	for _, s := range servers {
		id := string(s.ID)
		out = append(out, api.Member{
			ID:       id,
			RaftAddr: string(s.Address),
			APIAddr:  nodes[id].APIAddr,
			Voter:    s.Suffrage == raft.Voter,
			Leader:   id == leader,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// IsVoter reports whether this node is a voting member of the cluster's
// configuration (level=auto reads are weak on voters, none elsewhere). A
// node not yet in a configuration is not a voter.
func (n *Node) IsVoter() bool {
	servers, err := n.servers()
	if err != nil {
		return false
	}
	for _, s := range servers {
		if string(s.ID) == n.id {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}

// Remove removes node id from the cluster and forgets its metadata. On a
// follower the request is passed to the leader. An id that is not a member
// is refused with api.ErrUnknownNode (404, as rqlite answers), so that a
// typo is not taken for a removal; metadata left of a non-member is pruned
// by the leader's reconciliation anyway. A removed node shuts its Raft down.
func (n *Node) Remove(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("cluster: remove: %w: missing node id", api.ErrBadRequest)
	}
	if err := n.remove(ctx, id, 0); err != nil {
		return fmt.Errorf("cluster: remove %s: %w", id, err)
	}
	return nil
}

func (n *Node) remove(ctx context.Context, id string, hops int) error {
	if id == "" {
		return fmt.Errorf("%w: missing node id", api.ErrBadRequest)
	}
	if !n.IsLeader() {
		return n.forward(ctx, pathRemove, hops, removeRequest{ID: id}, nil)
	}
	ctx, servers, release, err := n.lockMembership(ctx)
	if err != nil {
		return err
	}
	defer release()
	return n.removeLocked(ctx, servers, id)
}

// removeLocked removes member id, given the configuration in force. The
// caller holds memberMu and is the leader.
func (n *Node) removeLocked(ctx context.Context, servers []raft.Server, id string) error {
	i := slices.IndexFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
	if i < 0 {
		return fmt.Errorf("%w: %s is not a member", api.ErrUnknownNode, id)
	}
	if id == n.id {
		// The leader removes itself: forget its metadata while it still
		// can. (Should the removal fail, reconcile records it again.)
		if err := n.removeMetaLocked(ctx, id); err != nil {
			return fmt.Errorf("forget own metadata: %w", err)
		}
	}
	s := servers[i]
	if err := n.configChange(ctx, func(t time.Duration) raft.IndexFuture {
		return n.raft.RemoveServer(s.ID, 0, t)
	}); err != nil {
		return err
	}
	n.metrics.removesHandled.Add(1)
	n.logger.Info("removed member", "id", id, "addr", s.Address)
	if err := n.removeMetaLocked(ctx, id); err != nil {
		// The leader prunes metadata of non-members, so this heals (e.g.
		// when the leader removed itself and stepped down).
		n.logger.Info("forget metadata of removed member (will be pruned later)", "id", id, "error", err)
	}
	return nil
}

// StepDown transfers leadership to targetID, or to the most up-to-date other
// voter when targetID is "". Only the leader can (api.ErrNotLeader elsewhere).
// It returns once the transfer succeeded or failed.
func (n *Node) StepDown(ctx context.Context, targetID string) error {
	if n.closed.Load() {
		return api.ErrClosed
	}
	if !n.IsLeader() {
		return api.ErrNotLeader
	}
	var transfer func() raft.Future
	if targetID == "" {
		servers, err := n.servers()
		if err != nil {
			return err
		}
		if !hasOtherVoter(servers, n.id) {
			return fmt.Errorf("cluster: step down: %w: no other voter to hand leadership to", api.ErrBadRequest)
		}
		transfer = n.raft.LeadershipTransfer
	} else {
		if targetID == n.id {
			return nil
		}
		servers, err := n.servers()
		if err != nil {
			return err
		}
		var target *raft.Server
		for i := range servers {
			if string(servers[i].ID) == targetID {
				target = &servers[i]
			}
		}
		if target == nil {
			return fmt.Errorf("cluster: step down: %w: %s", api.ErrUnknownNode, targetID)
		}
		if target.Suffrage != raft.Voter {
			return fmt.Errorf("cluster: step down: %w: %s is not a voter", api.ErrBadRequest, targetID)
		}
		transfer = func() raft.Future { return n.raft.LeadershipTransferToServer(target.ID, target.Address) }
	}
	if err := n.transferLeadership(ctx, transfer); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: step down: %w", err)
		}
		return fmt.Errorf("cluster: step down: %w", mapError(err))
	}
	return nil
}

// hasOtherVoter reports whether servers holds a voter other than self.
func hasOtherVoter(servers []raft.Server, self string) bool {
	for _, s := range servers {
		if s.Suffrage == raft.Voter && string(s.ID) != self {
			return true
		}
	}
	return false
}

// lockMembership takes memberMu, so that membership changes never
// interleave, bounds ctx by the apply timeout and reads the configuration
// in force. The caller must call release when done.
func (n *Node) lockMembership(ctx context.Context) (_ context.Context, servers []raft.Server, release func(), err error) {
	n.memberMu.Lock()
	ctx, cancel := n.withApplyTimeout(ctx)
	release = func() {
		cancel()
		n.memberMu.Unlock()
	}
	if servers, err = n.servers(); err != nil {
		release()
		return nil, nil, nil, err
	}
	return ctx, servers, release, nil
}

// Progress tells how far this node's database is (see api.Progress).
func (n *Node) Progress() api.Progress {
	committed, err := n.coveringIndex()
	if err != nil {
		// A log read failed: the raw commit index still bounds the
		// database's entries from above.
		committed = n.raft.CommitIndex()
	}
	return api.Progress{AppliedIndex: n.fsm.AppliedIndex(), CommittedIndex: committed}
}

// promoteProbeTimeout bounds the leader's question to a learner about its
// progress: a learner that cannot answer within it is not promoted.
const promoteProbeTimeout = 2 * time.Second

// Promote makes the learner (non-voter) id a voter, once its database is
// at most Config.PromoteMaxLag entries behind the leader's committed index;
// a learner further behind, or one that does not answer, is refused with
// api.ErrLearnerNotReady and stays a learner. It returns promoted false,
// and no error, when id already is a voter, and api.ErrUnknownNode when id
// is not a member. Only the leader can (api.ErrNotLeader elsewhere).
func (n *Node) Promote(ctx context.Context, id string) (promoted bool, err error) {
	if n.closed.Load() {
		return false, api.ErrClosed
	}
	if id == "" {
		return false, fmt.Errorf("cluster: promote: %w: missing node id", api.ErrBadRequest)
	}
	if !n.IsLeader() {
		return false, api.ErrNotLeader
	}
	ctx, servers, release, err := n.lockMembership(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	i := slices.IndexFunc(servers, func(s raft.Server) bool { return string(s.ID) == id })
	if i < 0 {
		return false, fmt.Errorf("cluster: promote: %w: %s is not a member", api.ErrUnknownNode, id)
	}
	learner := servers[i]
	if learner.Suffrage == raft.Voter {
		return false, nil
	}
	if err := n.checkCaughtUp(ctx, learner); err != nil {
		return false, fmt.Errorf("cluster: promote %s: %w", id, err)
	}
	if err := n.configChange(ctx, func(t time.Duration) raft.IndexFuture {
		return n.raft.AddVoter(learner.ID, learner.Address, 0, t)
	}); err != nil {
		return false, fmt.Errorf("cluster: promote %s: %w", id, err)
	}
	n.metrics.promotesHandled.Add(1)
	n.logger.Info("promoted learner to voter", "id", id, "addr", learner.Address)
	return true, nil
}

// checkCaughtUp asks the learner how far its database is and compares that
// with this leader's committed index.
func (n *Node) checkCaughtUp(ctx context.Context, learner raft.Server) error {
	ctx, cancel := context.WithTimeout(ctx, promoteProbeTimeout)
	defer cancel()
	var theirs progressResponse
	if err := n.client.call(ctx, string(learner.Address), pathProgress, 0, struct{}{}, &theirs); err != nil {
		return fmt.Errorf("%w: it did not answer at %s: %v", api.ErrLearnerNotReady, learner.Address, err)
	}
	committed := n.Progress().CommittedIndex
	if lag := committed - min(committed, theirs.AppliedIndex); lag > n.cfg.PromoteMaxLag {
		return fmt.Errorf("%w: its database is %d entries behind the leader's (applied %d, committed %d; at most %d allowed)",
			api.ErrLearnerNotReady, lag, theirs.AppliedIndex, committed, n.cfg.PromoteMaxLag)
	}
	return nil
}
