package cluster

import (
	"context"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadIndexThroughput measures read-index calls per second with 8 and
// 32 concurrent callers on the leader and on a follower, next to the
// previous implementation (a barrier check, the applied index and raft's
// VerifyLeader on every call, no batching). It only logs; run it with
//
//	RAFTLITE_READ_BENCH=1 go test -run TestReadIndexThroughput -v ./cluster/
//
// RAFTLITE_READ_ROUNDS=n sets how many rounds may overlap (readMaxRounds).
func TestReadIndexThroughput(t *testing.T) {
	if os.Getenv("RAFTLITE_READ_BENCH") == "" {
		t.Skip("set RAFTLITE_READ_BENCH=1 to measure")
	}
	if v := os.Getenv("RAFTLITE_READ_ROUNDS"); v != "" {
		old := readMaxRounds
		readMaxRounds, _ = strconv.Atoi(v)
		defer func() { readMaxRounds = old }()
	}
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	insertRows(t, leader, 0, 3)
	f := followers(leader, nodes...)[0]
	verifyPerCall := func(ctx context.Context) (uint64, error) {
		if err := leader.establishLeadership(ctx); err != nil {
			return 0, err
		}
		idx := leader.fsm.AppliedIndex()
		return idx, leader.VerifyLeader(ctx)
	}
	measure := func(clients int, fn func(context.Context) (uint64, error)) float64 {
		var ops atomic.Int64
		deadline := time.Now().Add(2 * time.Second)
		var wg sync.WaitGroup
		for range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					if _, err := fn(context.Background()); err != nil {
						t.Error(err)
						return
					}
					ops.Add(1)
				}
			}()
		}
		wg.Wait()
		return float64(ops.Load()) / 2
	}
	for _, clients := range []int{1, 8, 32} {
		for range 2 {
			l := measure(clients, leader.ReadIndex)
			fo := measure(clients, f.ReadIndex)
			v := measure(clients, verifyPerCall)
			t.Logf("c%d: leader %.0f/s, follower %.0f/s, leader with VerifyLeader per call %.0f/s", clients, l, fo, v)
		}
	}
}
