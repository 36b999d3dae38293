package cluster

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

// startLearner joins a new node to the cluster of leader as a non-voter.
func startLearner(t *testing.T, id string, leader *testNode, maxLag uint64) *testNode {
	t.Helper()
	cfg := testConfig(t, id, listen(t))
	cfg.Join = []string{leader.RaftAddr()}
	cfg.NonVoter = true
	cfg.PromoteMaxLag = maxLag
	learner := start(t, cfg, leader.logger)
	leader.g.add(learner)
	// The join returns once the leader has committed it, which may be
	// before the learner has heard from the leader at all.
	waitFor(t, 10*time.Second, "the learner to know its leader", func() bool { return learner.LeaderID() == leader.ID() })
	return learner
}

// A learner replicates and serves linearizable reads through the leader's
// read index without being a voter; Promote refuses it while its database
// lags by more than PromoteMaxLag entries or it does not answer, and makes
// it a voter once it has caught up. Unknown ids, voters and followers get
// their own answers.
func TestPromoteLearner(t *testing.T) {
	const maxLag = 2
	nodes := startCluster(t, 3, func(c *Config) { c.PromoteMaxLag = maxLag })
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	insertRows(t, leader, 0, 3)

	learner := startLearner(t, "learner", leader, maxLag)
	if m := memberIDs(t, leader)["learner"]; m.ID == "" || m.Voter {
		t.Fatalf("learner in the configuration: %+v, want a non-voter", m)
	}
	if learner.IsVoter() {
		t.Fatal("the learner says it is a voter")
	}
	// A linearizable read on the learner sees a write acknowledged just
	// before it.
	insertRow(t, leader, 4)
	idx, err := learner.ReadIndex(ctxT(t))
	if err != nil {
		t.Fatalf("read index on the learner: %v", err)
	}
	if err := learner.WaitApplied(ctxT(t), idx); err != nil {
		t.Fatal(err)
	}
	if got := len(rows(t, learner)); got != 4 {
		t.Fatalf("the learner's linearizable read saw %d rows, want 4", got)
	}

	if _, err := followers(leader, nodes...)[0].Promote(ctxT(t), "learner"); !errors.Is(err, api.ErrNotLeader) {
		t.Fatalf("promote on a follower: %v, want ErrNotLeader", err)
	}
	if _, err := leader.Promote(ctxT(t), "nobody"); !errors.Is(err, api.ErrUnknownNode) || api.OutcomeOf(err).Outcome() != api.ErrNotFound {
		t.Fatalf("promote of an unknown id: %v, want ErrUnknownNode (404)", err)
	}
	if promoted, err := leader.Promote(ctxT(t), nodes[0].id); promoted || err != nil {
		t.Fatalf("promote of a voter: %v, %v; want false, nil", promoted, err)
	}

	// Hold the learner's database after its next commit: the leader's
	// writes go on and the learner's applied index stays behind.
	learner.hold.arm()
	insertRow(t, leader, 5)
	_, release := learner.hold.awaitHeld(t)
	insertRows(t, leader, 5, maxLag+3)
	_, err = leader.Promote(ctxT(t), "learner")
	if !errors.Is(err, api.ErrLearnerNotReady) || !strings.Contains(err.Error(), "behind") {
		t.Fatalf("promote of a lagging learner: %v, want ErrLearnerNotReady (behind)", err)
	}
	if memberIDs(t, leader)["learner"].Voter {
		t.Fatal("a refused learner became a voter")
	}

	release()
	waitFor(t, 10*time.Second, "the caught-up learner's promotion", func() bool {
		promoted, err := leader.Promote(ctxT(t), "learner")
		if err != nil && !errors.Is(err, api.ErrLearnerNotReady) {
			t.Fatalf("promote of a catching-up learner: %v", err)
		}
		return promoted
	})
	waitFor(t, 5*time.Second, "the learner to know it votes", learner.IsVoter)
	if !memberIDs(t, leader)["learner"].Voter {
		t.Fatal("the promoted learner is not a voter in the leader's configuration")
	}

	// A learner that does not answer is not promoted.
	gone := startLearner(t, "gone", leader, maxLag)
	gone.stop()
	_, err = leader.Promote(ctxT(t), "gone")
	if !errors.Is(err, api.ErrLearnerNotReady) || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("promote of a stopped learner: %v, want ErrLearnerNotReady (did not answer)", err)
	}
}
