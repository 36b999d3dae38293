package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

const (
	// reconcileInterval is how often a node re-checks, besides on every
	// leadership change, that the replicated metadata is right.
	reconcileInterval = time.Second
	// reconcileTimeout bounds one reconciliation.
	reconcileTimeout = 5 * time.Second
	// metaWarnInterval limits repeated warnings about failed metadata
	// updates.
	metaWarnInterval = 30 * time.Second
)

// watch runs until Close: on leadership changes and every
// reconcileInterval it reconciles the replicated metadata.
func (n *Node) watch() {
	defer n.wg.Done()
	obsCh := make(chan raft.Observation, 16)
	obs := raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.LeaderObservation, raft.RaftState, raft.ResumedHeartbeatObservation:
			return true
		}
		return false
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	ticker := time.NewTicker(reconcileInterval)
	defer ticker.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case o := <-obsCh:
			switch d := o.Data.(type) {
			case raft.LeaderObservation:
				n.metrics.leaderChanges.Add(1)
				n.reach.forget()
				n.logger.Info("leader changed", "leader_id", string(d.LeaderID), "leader_addr", string(d.LeaderAddr))
			case raft.ResumedHeartbeatObservation:
				n.reach.answered(d.PeerID)
				continue // no reason to reconcile
			}
		case <-ticker.C:
		}
		if n.raft.State() == raft.Shutdown {
			n.logger.Info("raft has shut down (this node was removed, or is closing)")
			n.markRaftDown()
			return
		}
		n.reconcile()
	}
}

// reconcile makes the replicated metadata match the cluster. The leader
// establishes its term (a barrier, see readIndex), records its own API
// address and forgets metadata of nodes no longer in the configuration. A
// follower whose own metadata is missing or stale (its HTTP address changed
// across a restart) asks the leader to record it.
func (n *Node) reconcile() {
	if n.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, reconcileTimeout)
	defer cancel()

	switch n.raft.State() {
	case raft.Leader:
		if cause := n.fsm.Err(); cause != nil {
			n.handOffHalted(ctx, cause)
			return
		}
		if err := n.establishLeadership(ctx); err != nil {
			n.logger.Debug("leader barrier failed", "error", err)
			return
		}
		n.reconcileMeta(ctx)
		n.reapAuto(ctx)
	case raft.Follower:
		if meta, ok := n.fsm.Nodes()[n.id]; ok && meta.APIAddr == n.cfg.APIAdvAddr {
			return
		}
		if n.LeaderID() == "" {
			return
		}
		if err := n.setMeta(ctx, metaRequest{ID: n.id, APIAddr: n.cfg.APIAdvAddr}, 0); err != nil {
			// Retried every reconcileInterval; say so now and then.
			if time.Since(n.lastMetaWarn) > metaWarnInterval {
				n.lastMetaWarn = time.Now()
				n.logger.Warn("asking the leader to record this node's API address failed; retrying", "error", err)
			}
		}
	}
}

// reconcileMeta makes the leader's replicated metadata match the
// configuration: its own API address recorded, none of non-members.
func (n *Node) reconcileMeta(ctx context.Context) {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	if err := n.setMetaLocked(ctx, n.id, n.cfg.APIAdvAddr); err != nil {
		n.logger.Warn("record own metadata", "error", err)
		return
	}
	if err := n.pruneMetaLocked(ctx); err != nil {
		n.logger.Warn("prune metadata", "error", err)
	}
}

// handOffHalted makes a leader whose state machine has halted (a batch of
// entries could not be committed: disk full, I/O error; see fsm.FSM.Err)
// hand its leadership to another voter. Raft keeps a leader for as long as
// its log store works, but a halted state machine applies nothing more: as
// the leader it would answer every write with an error although raft
// commits the write and the other nodes apply it, and reads waiting for its
// applied index would time out, until an operator restarted it, while the
// other nodes could go on as a healthy majority. A halted follower can win
// a later election; the next reconciliation then hands off again. Without
// another voter (a single node) there is no one to hand off to.
func (n *Node) handOffHalted(ctx context.Context, cause error) {
	err := n.StepDown(ctx, "")
	switch {
	case err == nil:
		n.logger.Warn("state machine halted: handed leadership to another node", "cause", cause)
	case errors.Is(err, api.ErrBadRequest): // no other voter
	default:
		n.logger.Warn("state machine halted: handing leadership to another node failed; retrying", "error", err)
	}
}

// establishLeadership applies a barrier once per term on the leader: when it
// returns, every entry committed by earlier leaders is applied locally.
func (n *Node) establishLeadership(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() == term {
		return nil
	}
	deadline, _ := ctx.Deadline()
	if err := n.wait(ctx, n.raft.Barrier(time.Until(deadline))); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: leader barrier: %w", err)
		}
		return mapError(err)
	}
	n.readyTerm.Store(term)
	return nil
}

// setMeta handles a metadata update: the leader records the API address of
// a current member; other nodes pass the request on to the leader.
func (n *Node) setMeta(ctx context.Context, req metaRequest, hops int) error {
	if req.ID == "" {
		return fmt.Errorf("%w: missing node id", api.ErrBadRequest)
	}
	if err := validateAPIAddr(req.APIAddr); err != nil {
		return err
	}
	if !n.IsLeader() {
		return n.forward(ctx, pathMeta, hops, req, nil)
	}
	ctx, servers, release, err := n.lockMembership(ctx)
	if err != nil {
		return err
	}
	defer release()
	for _, s := range servers {
		if string(s.ID) == req.ID {
			return n.setMetaLocked(ctx, req.ID, req.APIAddr)
		}
	}
	return fmt.Errorf("%w: %s is not a member", api.ErrUnknownNode, req.ID)
}

// setMetaLocked records id's API address unless it already is. The caller
// holds memberMu and is the leader.
func (n *Node) setMetaLocked(ctx context.Context, id, apiAddr string) error {
	if meta, ok := n.fsm.Nodes()[id]; ok && meta.APIAddr == apiAddr {
		return nil
	}
	if err := n.applyMeta(ctx, &fsm.Command{Type: fsm.CmdSetNode, Node: &fsm.NodeMeta{ID: id, APIAddr: apiAddr}}); err != nil {
		return err
	}
	n.metrics.metaUpdates.Add(1)
	n.logger.Info("recorded member metadata", "id", id, "api_addr", apiAddr)
	return nil
}

// removeMetaLocked forgets id's metadata if there is any. The caller holds
// memberMu and is the leader.
func (n *Node) removeMetaLocked(ctx context.Context, id string) error {
	if _, ok := n.fsm.Nodes()[id]; !ok {
		return nil
	}
	if err := n.applyMeta(ctx, &fsm.Command{Type: fsm.CmdRemoveNode, Node: &fsm.NodeMeta{ID: id}}); err != nil {
		return err
	}
	n.metrics.metaUpdates.Add(1)
	n.logger.Info("forgot member metadata", "id", id)
	return nil
}

// pruneMetaLocked forgets the metadata of nodes that are not in the Raft
// configuration (left over when a removal's metadata step failed, e.g.
// because the leader removed itself). The metadata is read before the
// configuration: a join adds the server before its metadata, so metadata
// seen here belongs to a server that the (newer) configuration includes
// unless it was really removed.
func (n *Node) pruneMetaLocked(ctx context.Context) error {
	nodes := n.fsm.Nodes()
	servers, err := n.servers()
	if err != nil {
		return err
	}
	members := make(map[string]bool, len(servers))
	for _, s := range servers {
		members[string(s.ID)] = true
	}
	for id := range nodes {
		if !members[id] {
			if err := n.removeMetaLocked(ctx, id); err != nil {
				return fmt.Errorf("forget %s: %w", id, err)
			}
		}
	}
	return nil
}

// applyMeta proposes a metadata command and checks the FSM's answer.
func (n *Node) applyMeta(ctx context.Context, cmd *fsm.Command) error {
	res, err := n.propose(ctx, cmd)
	if err != nil {
		return err
	}
	switch v := res.(type) {
	case error:
		return fmt.Errorf("FSM: %w", v)
	case *api.Response:
		if v != nil && v.Err != nil {
			return fmt.Errorf("FSM: %w", v.Err)
		}
	}
	return nil
}
