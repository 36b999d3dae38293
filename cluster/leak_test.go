package cluster

import (
	"runtime"
	"testing"
	"time"
)

// TestCloseLeavesNoGoroutines runs a cluster's whole life and checks that
// closing it ends every goroutine it started.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		nodes := startCluster(t, 3, nil)
		leader := waitLeader(t, nodes...)
		createTable(t, leader)
		idx := insertRows(t, leader, 0, 5)
		waitSame(t, idx, nodes...)
		if _, err := followers(leader, nodes...)[0].ReadIndex(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			n.stop()
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines before, %d after close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
