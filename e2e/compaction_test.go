//go:build linux

package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestJoinAfterCompaction writes enough single-statement writes for the
// cluster to snapshot and compact its log, then starts a brand-new node with
// -join: it can only catch up from a snapshot, and must end up with the same
// rows. The leader gathers concurrent writes into entries, so the writers go
// on until the log holds more than the trailing logs, and the nodes
// snapshot only past them (-raft-snap).
func TestJoinAfterCompaction(t *testing.T) {
	const (
		clients = 16
		// trailingLogs is cluster.DefaultTrailingLogs: how many entries a
		// snapshot leaves in the log.
		trailingLogs = 10240
		// logEntries is how far the writers take the log, and snapThreshold
		// the entries that trigger a snapshot: the first snapshot is past
		// the trailing logs, so compaction removes the log's start.
		logEntries    = trailingLogs + 1500
		snapThreshold = trailingLogs + 500
		// compactionTimeout covers two randomized snapshot checks (10-20 s
		// each, cluster.DefaultSnapshotInterval) plus writing the snapshot.
		compactionTimeout = 50 * time.Second
	)
	c := startProcfileCluster(t, "-raft-snap", fmt.Sprint(snapThreshold))
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	createTable(t, leader)

	began := time.Now()
	var (
		lastID atomic.Int64
		stop   atomic.Bool
		wg     sync.WaitGroup
		errs   = make(chan error, clients)
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if err := insertRow([]*node{leader}, int(lastID.Add(1)), waitTimeout); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	waitFor(t, 5*time.Minute, fmt.Sprintf("%d entries in the leader's log", logEntries), func() error {
		if len(errs) > 0 {
			return nil
		}
		return above(leader, "store.raft.last_log_index", logEntries)
	})
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rows := int(lastID.Load())
	t.Logf("%d single-statement writes by %d clients in %v", rows, clients, time.Since(began).Round(time.Millisecond))

	// The leader must have snapshotted past its trailing logs, so that the
	// start of its log is gone. Raft checks every 10-20 s.
	leader = c.waitLeader()
	waitFor(t, compactionTimeout, leader.name+" to compact its log", func() error {
		return above(leader, "store.raft.last_snapshot_index", trailingLogs)
	})

	snap, err := leader.statusUint("store.raft.last_snapshot_index")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s snapshotted at index %d", leader.name, snap)

	joinedAt := time.Now()
	joiner := c.addJoiner("node4", "4", c.nodes[0])
	joiner.start(t)
	waitReady(t, joiner)
	waitIdentical(t, rows, c.nodes...)
	t.Logf("%s joined and caught up in %v", joiner.name, time.Since(joinedAt).Round(time.Millisecond))
	// The joiner's log starts at the snapshot it was sent.
	if err := above(joiner, "store.raft.last_snapshot_index", 0); err != nil {
		t.Errorf("the new node did not catch up from a snapshot: %v", err)
	}
	members, err := joiner.members()
	if err != nil {
		t.Fatal(err)
	}
	if m, ok := members[joiner.id]; len(members) != 4 || !ok || !m.Voter || !m.Reachable {
		t.Errorf("/nodes on %s = %+v, want 4 members with %s a reachable voter", joiner.name, members, joiner.id)
	}
	requireAlive(t, c.nodes...)
}

// above is nil when the integer at path of n's /status exceeds floor.
func above(n *node, path string, floor uint64) error {
	v, err := n.statusUint(path)
	if err != nil {
		return err
	}
	if v <= floor {
		return fmt.Errorf("%s: %s is %d, want more than %d", n.name, path, v, floor)
	}
	return nil
}
