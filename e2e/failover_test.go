//go:build linux

package e2e

import (
	"fmt"
	"sync"
	"sync/atomic"
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

	// Writes through every node: followers forward to the leader.
	acked := 0
	for _, n := range c.nodes {
		for range 5 {
			acked++
			if err := insertRow([]*node{n}, acked, waitTimeout); err != nil {
				t.Fatal(err)
			}
		}
	}
	waitIdentical(t, acked, c.nodes...)

	var survivors []*node
	for _, n := range c.nodes {
		if n != oldLeader {
			survivors = append(survivors, n)
		}
	}

	// A writer keeps going through the survivors while the leader dies.
	var (
		lastAcked atomic.Int64 // the writer's last acknowledged id
		writerWG  sync.WaitGroup
		stop      = make(chan struct{})
		writeErr  error
	)
	lastAcked.Store(int64(acked))
	writerWG.Add(1)
	go func() {
		defer writerWG.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			id := int(lastAcked.Load()) + 1
			if err := insertRow(survivors, id, waitTimeout); err != nil {
				writeErr = err
				return
			}
			lastAcked.Store(int64(id))
		}
	}()
	stopWriter := func() int {
		close(stop)
		writerWG.Wait()
		if writeErr != nil {
			t.Fatal(writeErr)
		}
		return int(lastAcked.Load())
	}

	// Let some writes land before the kill.
	waitFor(t, waitTimeout, "writes before the kill", func() error {
		return atLeast(&lastAcked, acked+10)
	})
	t.Logf("SIGKILL leader %s", oldLeader.name)
	oldLeader.kill(t)
	newLeader := c.waitLeader()
	if newLeader == oldLeader {
		t.Fatalf("killed node %s is still the leader", oldLeader.name)
	}
	t.Logf("new leader %s", newLeader.name)
	afterElection := int(lastAcked.Load())
	waitFor(t, waitTimeout, "writes after the election", func() error {
		return atLeast(&lastAcked, afterElection+20)
	})
	acked = stopWriter()
	t.Logf("%d writes acknowledged", acked)

	// The killed node comes back with its own command line and catches up.
	killedAt := time.Now()
	oldLeader.start(t)
	waitReady(t, oldLeader)
	for range 5 {
		acked++
		if err := insertRow([]*node{oldLeader}, acked, waitTimeout); err != nil {
			t.Fatal(err)
		}
	}
	waitIdentical(t, acked, c.nodes...)
	t.Logf("restarted node caught up in %v", time.Since(killedAt).Round(time.Millisecond))
	for _, n := range c.nodes {
		if !n.alive() {
			t.Errorf("%s exited", n.name)
		}
	}
}

// atLeast is nil once v has reached want.
func atLeast(v *atomic.Int64, want int) error {
	if got := v.Load(); got < int64(want) {
		return fmt.Errorf("at %d, want %d", got, want)
	}
	return nil
}
