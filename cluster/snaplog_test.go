package cluster

import (
	"strings"
	"testing"
	"time"
)

// TestSnapshotByLogSize writes a few large entries, far fewer than the
// entry threshold but many times the log-size limit in bytes: every node
// must take a snapshot by size, and a restarted node must then scan no
// more than the limit of its log.
func TestSnapshotByLogSize(t *testing.T) {
	const (
		limit      = 1 << 20
		entryBytes = 128 << 10
		entries    = 24 // 3 MiB in all
	)
	nodes := startCluster(t, 3, func(c *Config) {
		c.SnapshotThreshold = 1 << 30
		c.SnapshotLogSize = limit
	})
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	var idx uint64
	for i := range entries {
		idx = exec(t, leader, stmt("INSERT OR REPLACE INTO foo(id, v) VALUES(?, ?)", int64(i), strings.Repeat("x", entryBytes))).Index
	}
	waitSame(t, idx, nodes...)
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.id+" to take a snapshot by log size", func() bool {
			return raftStat(n, "last_snapshot_index") > 0 && n.logs.pendingBytes() <= limit
		})
		if got := n.Counters()["snapshots_by_log_size_total"]; got == 0 {
			t.Errorf("%s: snapshots_by_log_size_total = 0 after a snapshot", n.id)
		}
	}

	f := followers(waitLeader(t, nodes...), nodes...)[0]
	progress := new(Startup)
	f.cfg.Startup = progress
	f = f.restart()
	st := progress.Status()
	t.Logf("restart scanned %d entries, %d bytes (limit %d, written %d)", st.EntriesScanned, st.BytesScanned, limit, entries*entryBytes)
	if st.BytesScanned > limit {
		t.Errorf("restart scanned %d bytes of log, want at most the %d-byte limit", st.BytesScanned, limit)
	}
	// Raft also reads the last entry once more before the scan.
	if st.EntriesScanned < st.EntriesToScan {
		t.Errorf("restart scanned %d entries, announced %d", st.EntriesScanned, st.EntriesToScan)
	}
	waitFor(t, 10*time.Second, f.id+" ready after its restart", func() bool { return f.Ready() == nil })
}

// raftStat returns a numeric field of n's raft stats (0 if absent).
func raftStat(n *testNode, key string) uint64 {
	rs, _ := n.Stats()["raft"].(map[string]any)
	v, _ := rs[key].(uint64)
	return v
}
