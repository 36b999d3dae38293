package cluster

import (
	"sync/atomic"
	"time"

	"github.com/raftlite/raftlite/api"
)

// metrics are the node's counters; Counters exposes them for a metrics
// endpoint (e.g. Prometheus counters named raftlite_cluster_<key>).
// hashicorp/raft additionally reports its own metrics through go-metrics'
// global sink.
type metrics struct {
	executes          atomic.Uint64
	executeErrors     atomic.Uint64
	executeNotLeader  atomic.Uint64
	executeAmbiguous  atomic.Uint64
	executeNanos      atomic.Uint64
	leaderChanges     atomic.Uint64
	joinsHandled      atomic.Uint64
	removesHandled    atomic.Uint64
	metaUpdates       atomic.Uint64
	readIndexes       atomic.Uint64
	readIndexRounds   atomic.Uint64
	leaseReads        atomic.Uint64
	forwarded         atomic.Uint64
	notifiesReceived  atomic.Uint64
	snapshotsRestored atomic.Uint64
	snapshotsDamaged  atomic.Uint64
	logSizeSnapshots  atomic.Uint64
}

func (m *metrics) observeExecute(start time.Time, err error) {
	m.executes.Add(1)
	m.executeNanos.Add(uint64(time.Since(start)))
	if err != nil {
		m.executeErrors.Add(1)
		if err == api.ErrNotLeader {
			m.executeNotLeader.Add(1)
		}
		if api.IsAmbiguous(err) {
			m.executeAmbiguous.Add(1)
		}
	}
}

// Counters returns a snapshot of the node's monotonically increasing
// counters, keyed by metric name.
func (n *Node) Counters() map[string]uint64 {
	m := &n.metrics
	return map[string]uint64{
		"execute_total":                   m.executes.Load(),
		"execute_errors_total":            m.executeErrors.Load(),
		"execute_not_leader_total":        m.executeNotLeader.Load(),
		"execute_ambiguous_total":         m.executeAmbiguous.Load(),
		"execute_duration_ns_total":       m.executeNanos.Load(),
		"leader_changes_total":            m.leaderChanges.Load(),
		"joins_handled_total":             m.joinsHandled.Load(),
		"removes_handled_total":           m.removesHandled.Load(),
		"meta_updates_total":              m.metaUpdates.Load(),
		"read_index_total":                m.readIndexes.Load(),
		"read_index_rounds_total":         m.readIndexRounds.Load(),
		"read_index_lease_total":          m.leaseReads.Load(),
		"forwarded_total":                 m.forwarded.Load(),
		"bootstrap_notifies_total":        m.notifiesReceived.Load(),
		"startup_snapshot_restores_total": m.snapshotsRestored.Load(),
		"snapshots_refused_corrupt_total": m.snapshotsDamaged.Load(),
		"snapshots_by_log_size_total":     m.logSizeSnapshots.Load(),
	}
}
