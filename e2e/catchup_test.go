//go:build linux

package e2e

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestCatchUpBench measures how soon a follower that was down serves the
// writes made while it was away. Run it with
//
//	RAFTLITE_CATCHUP_BENCH=1 go test ./e2e/ -run CatchUpBench -v -timeout 20m
//
// A writer inserts rows one at a time through the leader and the other
// follower (about the rate of one client) while a follower is killed with
// SIGKILL for each of RAFTLITE_OUTAGES (default 6s,7s,8s,9s,10s: raft's
// retry backoff makes the wait after a restart depend on where the restart
// falls in it); then the follower is started again and the bench reports,
// from the process's start, when /readyz answers 200 and when a level=none
// read on it counts every row acknowledged before the restart, and the
// medians and maxima.
func TestCatchUpBench(t *testing.T) {
	if os.Getenv("RAFTLITE_CATCHUP_BENCH") == "" {
		t.Skip("set RAFTLITE_CATCHUP_BENCH=1 to run the catch-up bench")
	}
	var outages []time.Duration
	for _, s := range strings.Split(cmp.Or(os.Getenv("RAFTLITE_OUTAGES"), "6s,7s,8s,9s,10s"), ",") {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		outages = append(outages, d)
	}
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	createTable(t, leader)
	victim := c.others(leader)[0]
	w := startWriter(c.others(victim), 0)
	var readies, caughtUps []time.Duration
	for i, outage := range outages {
		w.waitAcked(t, 20, "before the outage")
		victim.kill(t)
		outageEnd := time.Now().Add(outage)
		w.waitAcked(t, 1, "while the follower is down")
		time.Sleep(time.Until(outageEnd)) // the outage itself, not a wait for a condition
		acked := w.last.Load()
		start := time.Now()
		victim.start(t)
		var ready, caughtUp time.Duration
		waitFor(t, waitTimeout, fmt.Sprintf("%s ready and holding row %d", victim.name, acked), func() error {
			if ready == 0 {
				if code, _, err := victim.call("GET", "/readyz", nil, ""); err == nil && code == 200 {
					ready = time.Since(start)
				}
			}
			if caughtUp == 0 {
				rows, err := victim.rows("none", fmt.Sprintf("SELECT COUNT(*) FROM t WHERE id <= %d", acked))
				if err != nil {
					return err
				}
				if fmt.Sprint(rows[0][0]) != strconv.FormatInt(acked, 10) {
					return fmt.Errorf("%s holds %v of %d rows", victim.name, rows[0][0], acked)
				}
				caughtUp = time.Since(start)
			}
			if ready == 0 {
				return fmt.Errorf("%s not ready", victim.name)
			}
			return nil
		})
		t.Logf("run %d: %v down, %d rows acknowledged before the restart: ready %v, caught up %v",
			i+1, outage, acked, ready.Round(time.Millisecond), caughtUp.Round(time.Millisecond))
		readies = append(readies, ready)
		caughtUps = append(caughtUps, caughtUp)
	}
	w.finish(t)
	t.Logf("%d outages of %v: ready median %v max %v; caught up median %v max %v", len(outages), outages,
		median(readies).Round(time.Millisecond), slices.Max(readies).Round(time.Millisecond),
		median(caughtUps).Round(time.Millisecond), slices.Max(caughtUps).Round(time.Millisecond))
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
