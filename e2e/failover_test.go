//go:build linux

package e2e

import (
	"syscall"
	"testing"
	"time"
)

// TestProcfileClusterFailover is the acceptance test: the Procfile's cluster
// elects a leader, accepts writes through every node, survives the SIGKILL of
// its leader without losing an acknowledged write, and takes the killed node
// back with its own command line until all three hold identical data.
func TestProcfileClusterFailover(t *testing.T) {
	c := startProcfileCluster(t)
	if len(c.nodes) != 3 {
		t.Fatalf("the Procfile runs %d nodes, this test expects 3", len(c.nodes))
	}
	oldLeader := c.waitLeader()
	waitReady(t, c.nodes...)
	createTable(t, c.nodes[0])
	acked := writeThroughEach(t, c.nodes, 0)
	waitIdentical(t, acked, c.nodes...)

	// A writer keeps going through the other two while the leader dies.
	w := startWriter(c.others(oldLeader), acked)
	w.waitAcked(t, 10, "before the kill")
	t.Logf("SIGKILL leader %s", oldLeader.name)
	oldLeader.kill(t)
	newLeader := c.waitLeader()
	if newLeader == oldLeader {
		t.Fatalf("killed node %s is still the leader", oldLeader.name)
	}
	t.Logf("new leader %s", newLeader.name)
	w.waitAcked(t, 20, "after the election")
	acked = w.finish(t)
	t.Logf("%d writes acknowledged", acked)

	// The killed node comes back with its own command line and catches up.
	restartedAt := time.Now()
	oldLeader.start(t)
	waitReady(t, oldLeader)
	acked = writeThroughEach(t, []*node{oldLeader}, acked)
	waitIdentical(t, acked, c.nodes...)
	t.Logf("restarted node caught up in %v", time.Since(restartedAt).Round(time.Millisecond))
	requireAlive(t, c.nodes...)
}

// TestPausedLeaderAndFullRestart pauses the leader (SIGSTOP) while writes go
// on, so that it comes back (SIGCONT) as a deposed leader that must step down
// and catch up; then kills every node and restarts the whole cluster from
// the Procfile's command lines: nothing acknowledged may be lost.
func TestPausedLeaderAndFullRestart(t *testing.T) {
	c := startProcfileCluster(t)
	paused := c.waitLeader()
	waitReady(t, c.nodes...)
	createTable(t, c.nodes[0])
	acked := writeThroughEach(t, c.nodes, 0)

	w := startWriter(c.others(paused), acked)
	w.waitAcked(t, 10, "before the pause")
	t.Logf("SIGSTOP leader %s", paused.name)
	paused.signal(t, syscall.SIGSTOP)
	pausedAt := time.Now()
	newLeader := c.waitLeader()
	t.Logf("new leader %s after %v", newLeader.name, time.Since(pausedAt).Round(time.Millisecond))
	w.waitAcked(t, 20, "after the election")
	paused.signal(t, syscall.SIGCONT)
	w.waitAcked(t, 10, "after the old leader resumed")
	acked = w.finish(t)
	if l := c.waitLeader(); l == paused {
		t.Logf("%s was elected again after resuming", paused.name)
	}
	acked = writeThroughEach(t, c.nodes, acked)
	waitIdentical(t, acked, c.nodes...)

	for _, n := range c.nodes {
		n.kill(t)
	}
	restartedAt := time.Now()
	for _, n := range c.nodes {
		n.start(t)
	}
	c.waitLeader()
	waitReady(t, c.nodes...)
	waitIdentical(t, acked, c.nodes...)
	t.Logf("full restart: %d rows back on every node in %v", acked, time.Since(restartedAt).Round(time.Millisecond))
	acked = writeThroughEach(t, c.nodes, acked)
	waitIdentical(t, acked, c.nodes...)
}

// writeThroughEach writes rows after+1, after+2, ... through each node in
// turn (followers forward them to the leader) and returns the last id.
func writeThroughEach(t testing.TB, nodes []*node, after int) int {
	t.Helper()
	for _, n := range nodes {
		for range 5 {
			after++
			if err := insertRow([]*node{n}, after, waitTimeout); err != nil {
				t.Fatal(err)
			}
		}
	}
	return after
}
