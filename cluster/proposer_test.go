package cluster

import (
	"testing"
	"time"
)

// TestNextEntryProposedWhileLeaderApplies: once an entry of writes is
// committed, the writes waiting behind it are proposed while the leader
// still applies it, and both answer in log order.
func TestNextEntryProposedWhileLeaderApplies(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	createTable(t, leader)

	leader.hold.arm()
	first := make(chan error, 1)
	go func() {
		_, err := tryExec(leader, stmt("INSERT INTO foo(id, v) VALUES(1, 1)"))
		first <- err
	}()
	held, release := leader.hold.awaitHeld(t)

	second := make(chan error, 1)
	go func() {
		_, err := tryExec(leader, stmt("INSERT INTO foo(id, v) VALUES(2, 2)"))
		second <- err
	}()
	// The second write's entry is committed (a quorum holds it) while the
	// first is still being applied.
	waitFor(t, 10*time.Second, "the next entry committed behind the held one", func() bool {
		return leader.raft.CommitIndex() > held
	})
	select {
	case err := <-first:
		t.Fatalf("the held write answered: %v", err)
	case err := <-second:
		t.Fatalf("the later write answered before the held one: %v", err)
	default:
	}
	release()
	for _, c := range []chan error{first, second} {
		if err := <-c; err != nil {
			t.Fatal(err)
		}
	}
}
