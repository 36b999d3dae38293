package cluster

import (
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// A join address may carry rqlite's http:// scheme: it names the same Raft
// port, and the node joins through it.
func TestJoinAddressWithScheme(t *testing.T) {
	leader := start(t, testConfig(t, "first", listen(t)), testLogger(t))
	waitLeader(t, leader)
	cfg := testConfig(t, "second", listen(t))
	cfg.Join = []string{"http://" + leader.RaftAddr() + "/"}
	cfg.JoinAttempts = 2
	second := start(t, cfg, leader.logger)
	leader.g.add(second)
	waitFor(t, 10*time.Second, "the second node to be a member", func() bool {
		_, ok := memberIDs(t, leader)["second"]
		return ok
	})
}

// The leader removes a voter its heartbeats have not reached for longer
// than the reap timeout, keeps a non-voter whose timeout is off, and Reap
// removes that one at once; reachable members are kept.
func TestReapUnreachable(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.ReapTimeout = time.Second })
	leader := waitLeader(t, nodes...)
	cfg := testConfig(t, "ro", listen(t))
	cfg.Join = []string{leader.RaftAddr()}
	cfg.NonVoter = true
	ro := start(t, cfg, leader.logger)
	leader.g.add(ro)
	waitFor(t, 10*time.Second, "the non-voter to join", func() bool {
		_, ok := memberIDs(t, leader)["ro"]
		return ok
	})

	if got, err := leader.Reap(ctxT(t), 0); err != nil || len(got) != 0 {
		t.Fatalf("Reap with every member reachable = %v, %v; want none", got, err)
	}
	if _, err := ro.Reap(ctxT(t), 0); !errors.Is(err, api.ErrNotLeader) {
		t.Fatalf("Reap on a follower = %v, want not leader", err)
	}

	gone := followers(leader, nodes...)[0]
	stopped := time.Now()
	gone.stop()
	ro.stop()
	waitFor(t, 15*time.Second, "the stopped voter to be reaped", func() bool {
		_, ok := memberIDs(t, leader)[gone.id]
		return !ok
	})
	if took := time.Since(stopped); took < time.Second {
		t.Fatalf("reaped %v after it stopped, before the 1s timeout", took)
	}
	if _, ok := memberIDs(t, leader)["ro"]; !ok {
		t.Fatal("the non-voter was reaped although its timeout is off")
	}

	// An explicit reap does not wait for the reap timeout, only for its
	// own minimum.
	waitFor(t, 10*time.Second, "the leader to miss the non-voter", func() bool {
		_, ok := leader.reach.since(raft.ServerID("ro"))
		return ok
	})
	if got, err := leader.Reap(ctxT(t), time.Hour); err != nil || len(got) != 0 {
		t.Fatalf("Reap of members unreachable for an hour = %+v, %v; want none", got, err)
	}
	got, err := leader.Reap(ctxT(t), 0)
	if err != nil || len(got) != 1 || got[0].ID != "ro" || got[0].Voter {
		t.Fatalf("Reap = %+v, %v; want the non-voter ro", got, err)
	}
	if ids := memberIDs(t, leader); len(ids) != 2 {
		t.Fatalf("members after reaping = %v, want 2", ids)
	}
	if n := leader.Counters()["nodes_reaped_total"]; n != 2 {
		t.Fatalf("nodes_reaped_total = %d, want 2", n)
	}
}
