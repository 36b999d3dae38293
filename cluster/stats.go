package cluster

import (
	"strconv"

	"github.com/hashicorp/raft"
)

// Stats returns the "store" object of /status: node identity, the leader,
// raft's state and counters (numbers as uint64; raft.applied_index is
// appliedIndex), the FSM's applied index (fsm_index, the index reads wait
// on), the configuration in force, the
// FSM's statistics under "sqlite3" and its client session counters under
// "sessions".
func (n *Node) Stats() map[string]any {
	leaderAddr, leaderID := "", ""
	if !n.closed.Load() {
		a, id := n.raft.LeaderWithID()
		leaderAddr, leaderID = string(a), string(id)
	}
	s := map[string]any{
		"node_id":  n.id,
		"addr":     n.advAddr,
		"api_addr": n.cfg.APIAdvAddr,
		"dir":      n.cfg.Dir,
		"leader": map[string]any{
			"node_id": leaderID,
			"addr":    leaderAddr,
		},
		"fsm_index":          n.fsm.AppliedIndex(),
		"ready":              n.Ready() == nil,
		"apply_timeout":      n.cfg.ApplyTimeout.String(),
		"heartbeat_timeout":  n.cfg.HeartbeatTimeout.String(),
		"election_timeout":   n.cfg.ElectionTimeout.String(),
		"lease_timeout":      n.cfg.LeaderLeaseTimeout.String(),
		"commit_timeout":     n.cfg.CommitTimeout.String(),
		"snapshot_threshold": n.cfg.SnapshotThreshold,
		"snapshot_interval":  n.cfg.SnapshotInterval.String(),
		"trailing_logs":      n.cfg.TrailingLogs,
		"snapshot_log_size":  n.cfg.SnapshotLogSize,
		// An upper bound, by less than SnapshotLogSize/64.
		"log_bytes_since_snapshot": n.logs.pendingBytes(),
		"max_append_entries":       uint64(n.cfg.MaxAppendEntries),
		"counters":                 n.Counters(),
		"sqlite3":                  n.fsm.Stats(),
		"sessions":                 n.fsm.SessionStats(),
	}
	if n.snaps != nil {
		s["snapshot_store"] = n.snaps.Stats()
	}
	if n.closed.Load() || n.raft.State() == raft.Shutdown {
		s["raft"] = map[string]any{"state": raft.Shutdown.String(), "voter": false}
		return s
	}

	rs := make(map[string]any)
	for k, v := range n.raft.Stats() {
		if u, err := strconv.ParseUint(v, 10, 64); err == nil {
			rs[k] = u
		} else {
			rs[k] = v
		}
	}
	rs["applied_index"] = n.appliedIndex()
	rs["state"] = n.raft.State().String()
	voter := false
	if members, err := n.Members(); err == nil {
		nodes := make([]map[string]any, 0, len(members))
		for _, m := range members {
			if m.ID == n.id {
				voter = m.Voter
			}
			nodes = append(nodes, map[string]any{
				"id": m.ID, "addr": m.RaftAddr, "api_addr": m.APIAddr, "voter": m.Voter, "leader": m.Leader,
			})
		}
		s["nodes"] = nodes
	}
	rs["voter"] = voter
	s["raft"] = rs
	return s
}

// appliedIndex is the highest log index the state machine reflects: raft's
// applied index, or the FSM's when that is higher. Raft's own starts from
// the latest snapshot's index (or 0) at every start and reaches the FSM's
// only once a leader has told it the commit index and it has re-delivered
// the entries in between, which the FSM skips; until then the database
// already holds every entry up to the FSM's index. Past it, raft's may run
// ahead by entries the FSM never sees (no-ops, barriers).
func (n *Node) appliedIndex() uint64 {
	return max(n.raft.AppliedIndex(), n.fsm.AppliedIndex())
}
