package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// Operations an operator asks for (rqlite's operations surface): a snapshot
// now, reaping unreachable members, handing leadership over and leaving
// the cluster on a graceful stop, and recovering a cluster that lost its
// quorum from raft/peers.json.

// snapshotMu serialises user snapshots on this node: a snapshot with a
// trailing-log count changes raft's reloadable configuration until it is
// done.
var snapshotMu sync.Mutex

// Snapshot takes a snapshot of this node's state now and compacts its log
// (rqlite's POST /snapshot). With trailing > 0 that many entries stay in
// the log behind the snapshot for this one snapshot (rqlite's ?trailing),
// else Config.TrailingLogs. Any node takes its own snapshot; nothing is
// replicated. A node with nothing applied since its latest snapshot keeps
// that one, which is no error. It returns the index of the latest snapshot.
func (n *Node) Snapshot(ctx context.Context, trailing uint64) (uint64, error) {
	if n.closed.Load() {
		return 0, api.ErrClosed
	}
	snapshotMu.Lock()
	defer snapshotMu.Unlock()
	if trailing > 0 {
		rc := n.raft.ReloadableConfig()
		keep := rc.TrailingLogs
		rc.TrailingLogs = trailing
		if err := n.raft.ReloadConfig(rc); err != nil {
			return 0, fmt.Errorf("cluster: snapshot: set trailing logs: %w", err)
		}
		defer func() {
			rc.TrailingLogs = keep
			if err := n.raft.ReloadConfig(rc); err != nil {
				n.logger.Error("restoring trailing logs after a user snapshot", "error", err)
			}
		}()
	}
	start := time.Now()
	f := n.raft.Snapshot()
	err := n.wait(ctx, f)
	switch {
	case err == nil:
		meta, rc, err := f.Open()
		if err != nil {
			return 0, fmt.Errorf("cluster: snapshot: %w", err)
		}
		rc.Close()
		n.logger.Info("snapshot taken on request", "index", meta.Index, "trailing", trailing, "took", time.Since(start).Round(time.Millisecond))
		return meta.Index, nil
	case errors.Is(err, raft.ErrNothingNewToSnapshot):
		index, perr := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
		if perr != nil {
			return 0, fmt.Errorf("cluster: snapshot: latest snapshot index: %w", perr)
		}
		return index, nil
	case ctx.Err() != nil:
		return 0, fmt.Errorf("cluster: snapshot: %w", err)
	}
	return 0, fmt.Errorf("cluster: snapshot: %w", mapError(err))
}

// reapAuto removes, on the leader, the members unreachable for longer than
// their timeout (Config.ReapTimeout for voters, ReapReadOnlyTimeout for
// non-voters; zero never). Called from the reconciliation loop.
func (n *Node) reapAuto(ctx context.Context) {
	if n.cfg.ReapTimeout <= 0 && n.cfg.ReapReadOnlyTimeout <= 0 {
		return
	}
	if _, err := n.reap(ctx, func(voter bool, down time.Duration) bool {
		limit := n.cfg.ReapReadOnlyTimeout
		if voter {
			limit = n.cfg.ReapTimeout
		}
		return limit > 0 && down > limit
	}); err != nil {
		n.logger.Warn("reaping unreachable members failed", "error", err)
	}
}

// Reap removes now, on the leader, every member whose heartbeats have been
// failing for at least minUnreachable, whatever the reap timeouts (POST
// /reap), and reports them. The minimum keeps a member that missed a few
// heartbeats (a restart, a network blip) from being removed by an operator
// who meant the dead ones. Elsewhere it returns api.ErrNotLeader.
func (n *Node) Reap(ctx context.Context, minUnreachable time.Duration) ([]api.ReapedMember, error) {
	if n.closed.Load() {
		return nil, api.ErrClosed
	}
	if !n.IsLeader() {
		return nil, api.ErrNotLeader
	}
	reaped, err := n.reap(ctx, func(_ bool, down time.Duration) bool { return down >= minUnreachable })
	if err != nil {
		return reaped, fmt.Errorf("cluster: reap: %w", err)
	}
	return reaped, nil
}

// reap removes the unreachable members for which due says so, given
// whether each is a voter and how long it has been unreachable.
func (n *Node) reap(ctx context.Context, due func(voter bool, down time.Duration) bool) ([]api.ReapedMember, error) {
	ctx, servers, release, err := n.lockMembership(ctx)
	if err != nil {
		return nil, err
	}
	defer release()
	reaped := []api.ReapedMember{}
	for _, s := range servers {
		since, ok := n.reach.since(s.ID)
		if !ok || string(s.ID) == n.id {
			continue
		}
		voter, down := s.Suffrage == raft.Voter, time.Since(since)
		if !due(voter, down) {
			continue
		}
		if err := n.removeLocked(ctx, servers, string(s.ID)); err != nil {
			n.metrics.reapsFailed.Add(1)
			return reaped, fmt.Errorf("remove %s: %w", s.ID, err)
		}
		n.reach.forgetPeer(s.ID)
		n.metrics.reaped.Add(1)
		n.logger.Warn("reaped unreachable member", "id", s.ID, "addr", s.Address, "voter", voter,
			"unreachable_for", down.Round(time.Millisecond))
		reaped = append(reaped, api.ReapedMember{ID: string(s.ID), Voter: voter, Unreachable: down})
	}
	return reaped, nil
}

// handOverTimeout bounds a leadership transfer on a graceful stop: a
// round trip and an election normally, two election timeouts at worst.
func (n *Node) handOverTimeout() time.Duration { return 2*n.cfg.ElectionTimeout + time.Second }

// HandOver makes a leader hand its leadership to another voter, if there is
// one, so that a planned stop costs a round trip rather than an election
// timeout (rqlite's -raft-shutdown-stepdown). Elsewhere it does nothing.
// It returns once the transfer succeeded, failed or ctx (further bounded by
// two election timeouts) ended.
func (n *Node) HandOver(ctx context.Context) error {
	if n.closed.Load() || n.raft.State() != raft.Leader {
		return nil
	}
	servers, err := n.servers()
	if err != nil || !hasOtherVoter(servers, n.id) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, n.handOverTimeout())
	defer cancel()
	start := time.Now()
	if err := n.transferLeadership(ctx, n.raft.LeadershipTransfer); err != nil {
		return fmt.Errorf("cluster: hand leadership over: %w", err)
	}
	_, to := n.raft.LeaderWithID()
	n.logger.Info("handed leadership over", "to", string(to), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// Leave removes this node from the cluster (rqlite's
// -raft-cluster-remove-shutdown), so that the others stop contacting it
// and the quorum shrinks. A leader hands its leadership over first, then
// asks the new leader like any member. The only member stays: a cluster
// cannot remove its last voter. It returns once removed or when ctx ends.
func (n *Node) Leave(ctx context.Context) error {
	servers, err := n.servers()
	if err != nil {
		return err
	}
	member := false
	for _, s := range servers {
		member = member || string(s.ID) == n.id
	}
	switch {
	case !member:
		return nil
	case len(servers) == 1:
		n.logger.Info("not leaving the cluster: this node is its only member")
		return nil
	}
	if err := n.HandOver(ctx); err != nil {
		return err
	}
	for {
		err := n.remove(ctx, n.id, 0)
		if err == nil {
			n.logger.Info("left the cluster")
			return nil
		}
		if !errors.Is(err, api.ErrNoLeader) && !errors.Is(err, api.ErrNotLeader) {
			return fmt.Errorf("cluster: leave: %w", err)
		}
		// No leader known yet after the hand-over: wait for one.
		if err := sleepCtx(ctx, leaveRetryPause); err != nil {
			return fmt.Errorf("cluster: leave: no leader to remove this node: %w", err)
		}
	}
}

// leaveRetryPause is how often Leave asks again while no leader is known.
const leaveRetryPause = 50 * time.Millisecond

// PeersFile is where an operator puts the configuration that recovers a
// cluster that lost its quorum, relative to the data directory: a JSON
// array of {"id":..., "address":"host:port", "non_voter":false}, the format
// of hashicorp/raft's ReadConfigJSON and rqlite's peers.json. It is read at
// the start, before raft runs, and renamed to peers.info once applied.
const PeersFile = "raft/peers.json"

// recoverFromPeersFile applies PeersFile if there is one: it forces the
// configuration it lists onto this node's Raft state with raft's
// RecoverCluster (which also commits every entry the log holds, as the
// recovered cluster's history), then renames the file to peers.info. The
// caller runs it before raft starts, with the stores open.
func (n *Node) recoverFromPeersFile(hlog *slogHCLog, logs raft.LogStore, snaps raft.SnapshotStore) error {
	path := filepath.Join(n.cfg.Dir, PeersFile)
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	configuration, err := raft.ReadConfigJSON(path)
	if err != nil {
		return fmt.Errorf("cluster: read %s: %w", path, err)
	}
	n.logger.Warn("recovering the cluster from a peers file", "path", path, "servers", fmt.Sprintf("%v", configuration.Servers))
	n.startup.SetPhase(PhaseRecovering)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.Logger = hlog
	if err := raft.RecoverCluster(rc, n.fsm, logs, n.store, snaps, n.transport, configuration); err != nil {
		return fmt.Errorf("cluster: recover from %s: %w", path, err)
	}
	info := filepath.Join(filepath.Dir(path), "peers.info")
	if err := os.Rename(path, info); err != nil {
		return fmt.Errorf("cluster: recovered, but renaming %s: %w", path, err)
	}
	n.logger.Warn("cluster configuration recovered; the peers file is now peers.info", "path", info)
	return nil
}
