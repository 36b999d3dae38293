package selftest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

// The faults the nemesis can inject ("-nemesis" lists them).
const (
	faultKill      = "kill"      // SIGKILL a random node, restart it after a while
	faultPause     = "pause"     // SIGSTOP the leader beyond the election timeout, then SIGCONT
	faultPartition = "partition" // cut the leader or a follower off from the others, then heal
	faultTransfer  = "transfer"  // move leadership to a random follower (POST /leader)
)

// allFaults is the default nemesis, in the order it cycles through them.
var allFaults = []string{faultKill, faultPause, faultPartition, faultTransfer}

// parseFaults reads a comma-separated fault list; "none" is no faults.
func parseFaults(s string) ([]string, error) {
	if s == "none" || s == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		switch f {
		case faultKill, faultPause, faultPartition, faultTransfer:
			out = append(out, f)
		default:
			return nil, fmt.Errorf("unknown fault %q (want some of %s, or none)", f, strings.Join(allFaults, ","))
		}
	}
	return out, nil
}

// Fault timing: each fault lasts longer than an election timeout (350-700
// ms), so that it forces elections; the quiet time after each lets the
// cluster settle, which is when reads race a steady flow of writes.
const (
	faultDuration = 2 * time.Second
	quietDuration = time.Second
)

// nemesis injects faults into a cluster, one at a time.
type nemesis struct {
	c      *cluster
	h      *history
	rng    *rand.Rand
	faults []string
	done   map[string]int // faults injected, by kind
	cycle  int
}

// run injects faults, cycling through the list, each after a quiet time,
// until ctx ends or the deadline passes; every fault is healed before it
// returns. An error is a failure of the harness (e.g. a node that cannot be
// restarted), not of the database under test.
func (nm *nemesis) run(ctx context.Context, deadline time.Time) error {
	for i := 0; ctx.Err() == nil; i++ {
		sleep(ctx, min(quietDuration, time.Until(deadline)))
		if len(nm.faults) == 0 || time.Now().Add(faultDuration).After(deadline) {
			break
		}
		if err := nm.inject(ctx, nm.faults[i%len(nm.faults)]); err != nil {
			return err
		}
		if (i+1)%len(nm.faults) == 0 {
			nm.cycle++
		}
	}
	sleep(ctx, time.Until(deadline))
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// inject runs one fault to its end.
func (nm *nemesis) inject(ctx context.Context, fault string) error {
	c := nm.c
	start := nm.h.now()
	var what string
	switch fault {
	case faultKill:
		victim := c.nodes[nm.rng.IntN(len(c.nodes))]
		what = "kill -9 " + victim.name()
		c.log.Info("nemesis: "+what+", restart after "+faultDuration.String(), "cycle", nm.cycle)
		if err := victim.kill(); err != nil {
			return err
		}
		sleep(ctx, faultDuration)
		if err := victim.start(c.binary); err != nil {
			return err
		}
	case faultPause:
		leader, err := c.waitLeader(ctx, 10*time.Second)
		if err != nil {
			c.log.Warn("nemesis: no leader to pause", "error", err)
			return nil
		}
		what = "SIGSTOP " + leader.name() + " (leader)"
		c.log.Info("nemesis: "+what, "cycle", nm.cycle)
		if err := leader.setPaused(true); err != nil {
			return err
		}
		sleep(ctx, faultDuration)
		if err := leader.setPaused(false); err != nil {
			return err
		}
	case faultPartition:
		if !partitionsSupported {
			c.log.Warn("nemesis: partitions need Linux (/proc); skipped")
			return nil
		}
		leader, err := c.waitLeader(ctx, 10*time.Second)
		if err != nil {
			c.log.Warn("nemesis: no leader to partition around", "error", err)
			return nil
		}
		target, role := leader, "leader"
		if nm.done[faultPartition]%2 == 1 {
			others := c.others(leader)
			target, role = others[nm.rng.IntN(len(others))], "follower"
		}
		what = "isolate " + target.name() + " (" + role + ")"
		c.log.Info("nemesis: "+what, "cycle", nm.cycle)
		c.net.isolate(target.index)
		sleep(ctx, faultDuration)
		c.net.heal()
	case faultTransfer:
		leader, err := c.waitLeader(ctx, 10*time.Second)
		if err != nil {
			c.log.Warn("nemesis: no leader to transfer from", "error", err)
			return nil
		}
		others := c.others(leader)
		to := others[nm.rng.IntN(len(others))]
		what = "transfer leadership " + leader.name() + " -> " + to.name()
		c.log.Info("nemesis: "+what, "cycle", nm.cycle)
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		status, body, err := c.do(tctx, http.MethodPost, leader.url("/leader"), map[string]string{"id": to.id})
		cancel()
		if err != nil || status != http.StatusOK {
			// Refusing a transfer is the database's right (e.g. the
			// target is behind); it is logged, not a failure.
			c.log.Warn("nemesis: leadership transfer refused", "status", status, "body", strings.TrimSpace(string(body)), "error", err)
			what += " (refused)"
		}
	}
	nm.done[fault]++
	nm.h.annotate(start, nm.h.now(), what)
	return nil
}

// heal undoes whatever a fault may have left behind: partitions, paused
// and dead nodes.
func (nm *nemesis) heal() error {
	nm.c.net.heal()
	for _, n := range nm.c.nodes {
		if !n.running() {
			if err := n.start(nm.c.binary); err != nil {
				return err
			}
			continue
		}
		if !n.serving() {
			if err := n.setPaused(false); err != nil {
				return err
			}
		}
	}
	return nil
}
