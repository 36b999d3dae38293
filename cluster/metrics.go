package cluster

import (
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// metrics are the node's measurements. The counters are atomics so that
// /status ("counters", see Counters) and Prometheus read the same values;
// register exports each of them, and the node's latency and size
// histograms, in Config.Metrics under raftlite_raft_* and
// raftlite_cluster_* names (see register). hashicorp/raft additionally reports its own
// metrics through go-metrics' global sink, which raftlite does not export.
type metrics struct {
	executes          atomic.Uint64
	executeErrors     atomic.Uint64
	executeNotLeader  atomic.Uint64
	executeAmbiguous  atomic.Uint64
	executeNanos      atomic.Uint64
	leaderChanges     atomic.Uint64
	joinsHandled      atomic.Uint64
	removesHandled    atomic.Uint64
	promotesHandled   atomic.Uint64
	metaUpdates       atomic.Uint64
	readIndexes       atomic.Uint64
	readIndexRounds   atomic.Uint64
	leaseReads        atomic.Uint64
	forwarded         atomic.Uint64
	notifiesReceived  atomic.Uint64
	snapshotsRestored atomic.Uint64
	snapshotsDamaged  atomic.Uint64
	logSizeSnapshots  atomic.Uint64
	reaped            atomic.Uint64
	reapsFailed       atomic.Uint64

	// commitSeconds is the leader's time from proposing an entry to its
	// being applied locally (Execute and the other proposals).
	commitSeconds prometheus.Observer
	// readRoundSeconds is the time of one read-index round, by role.
	readRoundSeconds *prometheus.HistogramVec
	// appendEntries and storeLogsSeconds measure each StoreLogs call of the
	// log store (see meteredLogStore), by the node's role: on the leader
	// one call is one replication round's local append. logSyncs counts
	// the log store's fdatasyncs, by kind (see walLogStore).
	appendEntries    *prometheus.HistogramVec
	storeLogsSeconds *prometheus.HistogramVec
	logSyncs         *prometheus.CounterVec
	// replicateSeconds and replicateEntries measure, on the leader, each
	// AppendEntries RPC that carries entries: the follower's decoding,
	// log append and answer, and the network both ways.
	replicateSeconds prometheus.Observer
	replicateEntries prometheus.Observer
	// proposeWaitSeconds is the time a write waits in the proposal batcher
	// before its entry is handed to raft, and proposalRequests the requests
	// each proposed entry carries (see proposer).
	proposeWaitSeconds prometheus.Observer
	proposalRequests   prometheus.Observer
}

// Roles label the log store's metrics.
const (
	roleLeader   = "leader"
	roleFollower = "follower"
)

// counter is one of the node's counters: its key in Counters, its
// Prometheus name (empty: not exported, a histogram covers it) and help.
type counter struct {
	key, name, help string
	v               *atomic.Uint64
}

func (m *metrics) counters() []counter {
	return []counter{
		{"execute_total", "raftlite_cluster_executes_total", "Write requests proposed by Execute on this node.", &m.executes},
		{"execute_errors_total", "raftlite_cluster_execute_errors_total", "Execute calls that failed.", &m.executeErrors},
		{"execute_not_leader_total", "raftlite_cluster_execute_not_leader_total", "Execute calls refused because this node is not the leader.", &m.executeNotLeader},
		{"execute_ambiguous_total", "raftlite_cluster_execute_ambiguous_total", "Execute calls whose outcome is unknown (leadership lost, commit timeout).", &m.executeAmbiguous},
		{"execute_duration_ns_total", "", "", &m.executeNanos},
		{"leader_changes_total", "raftlite_raft_leader_changes_total", "Leader changes this node observed.", &m.leaderChanges},
		{"joins_handled_total", "raftlite_cluster_joins_total", "Join requests this node handled as leader.", &m.joinsHandled},
		{"removes_handled_total", "raftlite_cluster_removes_total", "Remove requests this node handled as leader.", &m.removesHandled},
		{"promotes_handled_total", "raftlite_cluster_promotions_total", "Learners this node promoted to voters as leader.", &m.promotesHandled},
		{"meta_updates_total", "raftlite_cluster_meta_updates_total", "Member metadata updates proposed.", &m.metaUpdates},
		{"read_index_total", "raftlite_raft_read_index_total", "Read indexes requested (linearizable reads).", &m.readIndexes},
		{"read_index_rounds_total", "raftlite_raft_read_index_rounds_total", "Read-index rounds run (one serves every read waiting for it).", &m.readIndexRounds},
		{"read_index_lease_total", "raftlite_raft_lease_reads_total", "Read indexes served from the leader's read lease, without a round.", &m.leaseReads},
		{"forwarded_total", "raftlite_cluster_joins_forwarded_total", "Join requests forwarded to the leader.", &m.forwarded},
		{"bootstrap_notifies_total", "raftlite_cluster_bootstrap_notifies_total", "Bootstrap notifications received from other nodes.", &m.notifiesReceived},
		{"startup_snapshot_restores_total", "raftlite_raft_startup_snapshot_restores_total", "Starts that restored the latest snapshot because the database was older.", &m.snapshotsRestored},
		{"snapshots_refused_corrupt_total", "raftlite_raft_snapshots_refused_corrupt_total", "Snapshots a follower refused as corrupt (replaced by a new one).", &m.snapshotsDamaged},
		{"snapshots_by_log_size_total", "raftlite_raft_snapshots_by_log_size_total", "Snapshots taken because the log passed SnapshotLogSize.", &m.logSizeSnapshots},
		{"nodes_reaped_total", "raftlite_cluster_nodes_reaped_total", "Unreachable members this node removed as leader (reap timeouts or POST /reap).", &m.reaped},
		{"nodes_reaped_failed_total", "raftlite_cluster_nodes_reaped_failed_total", "Removals of unreachable members that failed.", &m.reapsFailed},
	}
}

// register registers the node's counters and histograms in reg (nil:
// nowhere).
func (m *metrics) register(reg prometheus.Registerer) {
	f := promauto.With(reg)
	for _, c := range m.counters() {
		if c.name != "" {
			f.NewCounterFunc(prometheus.CounterOpts{Name: c.name, Help: c.help}, func() float64 { return float64(c.v.Load()) })
		}
	}
	m.commitSeconds = f.NewHistogram(prometheus.HistogramOpts{Name: "raftlite_raft_commit_seconds",
		Help: "Time from proposing an entry on the leader to its being applied there.", Buckets: fsm.DurationBuckets})
	m.readRoundSeconds = f.NewHistogramVec(prometheus.HistogramOpts{Name: "raftlite_raft_read_index_round_seconds",
		Help: "Time of one read-index round, by this node's role.", Buckets: fsm.DurationBuckets}, []string{"role"})
	m.appendEntries = f.NewHistogramVec(prometheus.HistogramOpts{Name: "raftlite_raft_append_entries",
		Help:    "Log entries written by each append to the log store, by role (on the leader: entries per replication round).",
		Buckets: fsm.CountBuckets}, []string{"role"})
	m.storeLogsSeconds = f.NewHistogramVec(prometheus.HistogramOpts{Name: "raftlite_raft_store_logs_seconds",
		Help: "Time of each append to the log store, by role: a follower's includes its fdatasync, the leader's not (it syncs while the followers store the entries).", Buckets: fsm.DurationBuckets}, []string{"role"})
	m.logSyncs = f.NewCounterVec(prometheus.CounterOpts{Name: "raftlite_raft_log_syncs_total",
		Help: "fdatasync calls of the log store, by kind: append (the write-ahead file's; a follower's append waits for it, the leader's runs beside replication) and flush (BoltDB's two per write transaction, in the background)."},
		[]string{"kind"})
	m.replicateSeconds = f.NewHistogram(prometheus.HistogramOpts{Name: "raftlite_raft_replicate_seconds",
		Help:    "Time of each AppendEntries RPC carrying entries, on the leader: network, the follower's decoding and log append.",
		Buckets: fsm.DurationBuckets})
	m.replicateEntries = f.NewHistogram(prometheus.HistogramOpts{Name: "raftlite_raft_replicate_entries",
		Help: "Entries carried by each AppendEntries RPC that carries any, on the leader.", Buckets: fsm.CountBuckets})
	m.proposeWaitSeconds = f.NewHistogram(prometheus.HistogramOpts{Name: "raftlite_cluster_propose_wait_seconds",
		Help:    "Time a write waits on the leader before its log entry is handed to raft (gathering concurrent writes into one entry).",
		Buckets: fsm.DurationBuckets})
	m.proposalRequests = f.NewHistogram(prometheus.HistogramOpts{Name: "raftlite_cluster_proposal_requests",
		Help: "Write requests carried by each proposed log entry.", Buckets: fsm.CountBuckets})
}

// registerGauges registers the node's raft state, read at scrape time, once
// raft runs.
func (n *Node) registerGauges(reg prometheus.Registerer) {
	f := promauto.With(reg)
	gauge := func(name, help string, v func() uint64) {
		f.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(v()) })
	}
	gauge("raftlite_raft_term", "The current raft term.", n.raft.CurrentTerm)
	gauge("raftlite_raft_commit_index", "The highest log index this node knows to be committed.", n.raft.CommitIndex)
	gauge("raftlite_raft_applied_index", "The highest log index the state machine reflects (see Node.appliedIndex).", n.appliedIndex)
	gauge("raftlite_raft_last_log_index", "The last index in this node's log.", n.raft.LastIndex)
	gauge("raftlite_raft_log_bytes_since_snapshot", "Bytes of log entries stored since the latest snapshot (an upper bound).",
		func() uint64 { return uint64(n.logs.pendingBytes()) })
	gauge("raftlite_raft_leader", "1 while this node is the leader, else 0.", func() uint64 {
		if n.IsLeader() {
			return 1
		}
		return 0
	})
}

// timedRound wraps a read-index round to measure it under role.
func (m *metrics) timedRound(role string, round func() (uint64, error)) func() (uint64, error) {
	obs := m.readRoundSeconds.WithLabelValues(role)
	return func() (uint64, error) {
		start := time.Now()
		defer func() { obs.Observe(time.Since(start).Seconds()) }()
		return round()
	}
}

// countSyncs counts n log-store syncs of kind.
func (m *metrics) countSyncs(kind string, n int) { m.logSyncs.WithLabelValues(kind).Add(float64(n)) }

// timedAppend wraps the leader's AppendEntries to measure those that carry
// entries (replication rounds; heartbeats and probes are not measured).
func (m *metrics) timedAppend(send appendFunc) appendFunc {
	return func(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
		if len(args.Entries) == 0 {
			return send(id, target, args, resp)
		}
		start := time.Now()
		err := send(id, target, args, resp)
		if err == nil {
			m.replicateSeconds.Observe(time.Since(start).Seconds())
			m.replicateEntries.Observe(float64(len(args.Entries)))
		}
		return err
	}
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
// counters, keyed by their /status name.
func (n *Node) Counters() map[string]uint64 {
	cs := n.metrics.counters()
	out := make(map[string]uint64, len(cs))
	for _, c := range cs {
		out[c.key] = c.v.Load()
	}
	return out
}
