package cluster

import (
	"strconv"
	"testing"
	"time"
)

// TestWALSizeTriggersSnapshot: with Raft's entry threshold out of reach,
// a WAL grown past SnapshotWALSize still brings a snapshot, and the WAL is
// truncated after it.
func TestWALSizeTriggersSnapshot(t *testing.T) {
	nodes := startCluster(t, 1, func(c *Config) {
		c.SnapshotThreshold = 1 << 30
		c.SnapshotWALSize = 256 << 10
	})
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	exec(t, leader, stmt("CREATE TABLE pad (b BLOB)"))
	for range 10 {
		exec(t, leader, stmt("INSERT INTO pad SELECT randomblob(50000)"))
	}
	waitFor(t, 10*time.Second, "a WAL-size snapshot", func() bool {
		idx, _ := strconv.ParseUint(leader.raft.Stats()["last_snapshot_index"], 10, 64)
		return idx > 0 && leader.fsm.WALSize() < 256<<10
	})
}
