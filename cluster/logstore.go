package cluster

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// meteredLogStore is the raft.LogStore raft runs on: the cached BoltDB
// store, measured on the way in and out.
//
// It counts the bytes of the entries stored since the latest snapshot.
// Raft's own snapshot trigger counts entries (SnapshotThreshold), so a few
// hundred large entries (one 1 MB INSERT each) grow the log by hundreds of
// megabytes without a snapshot, and a restart then reads every one of them
// twice: raft.NewRaft scans each entry after the latest snapshot for
// configuration changes before it returns, and raft then re-delivers them
// all to the FSM (which skips those it has applied). watchLogSize takes a
// snapshot once these bytes pass Config.SnapshotLogSize, which bounds what
// a restart reads. (The TrailingLogs entries that compaction keeps before
// the snapshot's index are not read at a restart.)
//
// It also counts the entries and bytes read while Open scans the log, to
// report the start's progress, and measures every append: the entries it
// writes and its time, a follower's sync included (raftlite_raft_append_entries,
// raftlite_raft_store_logs_seconds).
type meteredLogStore struct {
	raft.LogStore
	limit int64 // Config.SnapshotLogSize; <= 0: never due
	// due is signalled (capacity 1, never blocking) when the bytes since the
	// latest snapshot pass limit.
	due chan struct{}

	mu sync.Mutex
	// spans are the entries stored since the latest snapshot, oldest first,
	// in spans of at least spanBytes: a span counts until a snapshot covers
	// its last entry, so the total errs high by less than a span.
	spans     []logSpan
	spanBytes int64
	pending   int64  // the bytes of spans
	snapIndex uint64 // the latest snapshot's index

	// scan, while set, counts the entries and bytes GetLog reads.
	scan atomic.Pointer[Startup]

	// metrics measure each StoreLogs call, by role; role, once set,
	// says which this node has (roleFollower until raft runs).
	metrics *metrics
	role    atomic.Pointer[func() string]
}

// logSpan is a run of stored entries ending at index last.
type logSpan struct {
	last  uint64
	bytes int64
}

// minSpanBytes is the smallest span granularity: fine enough for any
// useful limit, coarse enough that spans stay few.
const minSpanBytes = 64 << 10

func newMeteredLogStore(store raft.LogStore, limit int64, m *metrics) *meteredLogStore {
	return &meteredLogStore{
		LogStore:  store,
		metrics:   m,
		limit:     limit,
		due:       make(chan struct{}, 1),
		spanBytes: max(limit/64, minSpanBytes),
	}
}

// entryBytes is what an entry adds to the log, near enough: its payload.
func entryBytes(l *raft.Log) int64 { return int64(len(l.Data) + len(l.Extensions)) }

func (m *meteredLogStore) GetLog(index uint64, l *raft.Log) error {
	err := m.LogStore.GetLog(index, l)
	if p := m.scan.Load(); p != nil && err == nil {
		p.scanned(entryBytes(l))
	}
	return err
}

func (m *meteredLogStore) StoreLog(l *raft.Log) error {
	return m.StoreLogs([]*raft.Log{l})
}

func (m *meteredLogStore) StoreLogs(logs []*raft.Log) error {
	start := time.Now()
	role := m.currentRole()
	if err := m.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	m.metrics.storeLogsSeconds.WithLabelValues(role).Observe(time.Since(start).Seconds())
	m.metrics.appendEntries.WithLabelValues(role).Observe(float64(len(logs)))
	if len(logs) == 0 {
		return nil
	}
	var n int64
	for _, l := range logs {
		n += entryBytes(l)
	}
	m.stored(logs[len(logs)-1].Index, n)
	return nil
}

// currentRole labels a measurement by this node's role.
func (m *meteredLogStore) currentRole() string {
	if f := m.role.Load(); f != nil {
		return (*f)()
	}
	return roleFollower
}

// stored counts n bytes of entries up to index last as not yet in a
// snapshot.
func (m *meteredLogStore) stored(last uint64, n int64) {
	m.mu.Lock()
	if k := len(m.spans); k > 0 && m.spans[k-1].bytes < m.spanBytes {
		m.spans[k-1] = logSpan{last: max(last, m.spans[k-1].last), bytes: m.spans[k-1].bytes + n}
	} else {
		m.spans = append(m.spans, logSpan{last: last, bytes: n})
	}
	m.pending += n
	over := m.limit > 0 && m.pending > m.limit
	m.mu.Unlock()
	if over {
		select {
		case m.due <- struct{}{}:
		default:
		}
	}
}

// snapshotted forgets the entries up to index, which a completed snapshot
// now holds: a restart scans the log only after it.
func (m *meteredLogStore) snapshotted(index uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snapIndex = max(m.snapIndex, index)
	i := 0
	for i < len(m.spans) && m.spans[i].last <= index {
		m.pending -= m.spans[i].bytes
		i++
	}
	m.spans = append(m.spans[:0], m.spans[i:]...)
}

// pendingBytes returns the bytes of the entries stored since the latest
// snapshot (an upper bound; see spans).
func (m *meteredLogStore) pendingBytes() int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pending
}

// snapshotIndex returns the latest snapshot's index.
func (m *meteredLogStore) snapshotIndex() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.snapIndex
}

// overLimit reports whether a snapshot by log size is due.
func (m *meteredLogStore) overLimit() bool {
	return m.limit > 0 && m.pendingBytes() > m.limit
}
