package fsm

import (
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// DurationBuckets are the upper bounds, in seconds, of raftlite's latency
// histograms below the HTTP layer: from 50 µs (a small batch on a fast
// disk) to 10 s (a large snapshot).
var DurationBuckets = prometheus.ExponentialBucketsRange(50e-6, 10, 16)

// CountBuckets are the upper bounds of raftlite's entries-per-batch
// histograms: 1 to 1024 (MaxAppendEntries' ceiling) in powers of two.
var CountBuckets = prometheus.ExponentialBuckets(1, 2, 11)

// metrics are the FSM's Prometheus metrics, registered by Open in
// Config.Metrics. They measure the apply path (one observation per batch,
// on raft's FSM goroutine) and snapshots; the session counters are read at
// scrape time from the replicated state.
type metrics struct {
	applySeconds    prometheus.Observer
	batchEntries    prometheus.Observer
	snapshotSeconds prometheus.Observer
	snapshotBytes   prometheus.Observer
	restoreSeconds  prometheus.Observer
	vacuumSeconds   prometheus.Observer
}

func newMetrics(reg prometheus.Registerer, f *FSM) *metrics {
	fac := promauto.With(reg)
	histogram := func(name, help string, buckets []float64) prometheus.Observer {
		return fac.NewHistogram(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets})
	}
	m := &metrics{
		applySeconds: histogram("raftlite_fsm_apply_batch_seconds",
			"Time to apply one batch of committed entries to SQLite, commit included.", DurationBuckets),
		batchEntries: histogram("raftlite_fsm_batch_entries",
			"Log entries in each batch raft hands the FSM.", CountBuckets),
		snapshotSeconds: histogram("raftlite_fsm_snapshot_seconds",
			"Time to write one snapshot of the database (persisted snapshots only).", DurationBuckets),
		snapshotBytes: histogram("raftlite_fsm_snapshot_bytes",
			"Size of each persisted snapshot stream, compressed.", prometheus.ExponentialBuckets(4096, 4, 12)),
		restoreSeconds: histogram("raftlite_fsm_snapshot_restore_seconds",
			"Time to restore one snapshot (received from the leader or at start).", DurationBuckets),
		vacuumSeconds: histogram("raftlite_fsm_vacuum_seconds",
			"Time to rebuild the database file for a VACUUM entry, WAL checkpoint included.", DurationBuckets),
	}
	fac.NewGaugeFunc(prometheus.GaugeOpts{Name: "raftlite_fsm_applied_index",
		Help: "The last log index applied to the database."}, func() float64 { return float64(f.AppliedIndex()) })
	fac.NewGaugeFunc(prometheus.GaugeOpts{Name: "raftlite_fsm_sessions_live",
		Help: "Client sessions (client_id) currently remembered."}, func() float64 { return float64(f.sessions.live.Load()) })
	fac.NewCounterFunc(prometheus.CounterOpts{Name: "raftlite_fsm_sessions_deduplicated_total",
		Help: "Writes answered from a session's remembered response instead of being applied again."},
		func() float64 { return float64(f.sessions.deduplicated.Load()) })
	fac.NewCounterFunc(prometheus.CounterOpts{Name: "raftlite_fsm_sessions_expired_total",
		Help: "Client sessions expired after SessionTTL idle."}, func() float64 { return float64(f.sessions.expired.Load()) })
	return m
}

// observeBatch records one applied batch of n entries that took since start.
func (m *metrics) observeBatch(start time.Time, n int) {
	m.applySeconds.Observe(time.Since(start).Seconds())
	m.batchEntries.Observe(float64(n))
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.Writer.Write(p)
	c.n += int64(n)
	return n, err
}
