package cluster

import (
	"fmt"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

// TestReadIndexCoversStatesReadersSaw forces the window between a batch's
// SQLite commit and the publication of its index on the leader: readers on
// the leader, and on a follower that has applied the batch already, see the
// write, yet the leader's applied index does not count it. A read index
// handed out then, by any node, with or without the read lease, must cover
// the write: a linearizable read that begins after another read saw it must
// see it too. (An index taken from the leader's applied index fails here.)
func TestReadIndexCoversStatesReadersSaw(t *testing.T) {
	for _, lease := range []bool{false, true} {
		t.Run(fmt.Sprintf("lease=%v", lease), func(t *testing.T) {
			nodes := startCluster(t, 3, func(c *Config) { c.ReadLease = lease })
			leader := waitLeader(t, nodes...)
			createTable(t, leader)
			waitSame(t, insertRow(t, leader, 1), nodes...)

			leader.hold.arm()
			written := make(chan error, 1)
			go func() {
				_, err := tryExec(leader, stmt("UPDATE foo SET v = 2 WHERE id = 1"))
				written <- err
			}()
			index, release := leader.hold.awaitHeld(t)
			select {
			case err := <-written:
				t.Fatalf("write returned before the leader's FSM released it: %v", err)
			default:
			}

			f := followers(leader, nodes...)[0]
			waitFor(t, 10*time.Second, "the follower to apply the held entry", func() bool { return f.AppliedIndex() >= index })
			for _, n := range []*testNode{leader, f} {
				if got := value(t, n); got != 2 {
					t.Fatalf("%s reads v=%d while the batch is held, want 2 (the window is not forced)", n.id, got)
				}
			}
			if got := leader.AppliedIndex(); got >= index {
				t.Fatalf("the leader published applied index %d while entry %d is held", got, index)
			}
			for _, n := range nodes {
				got, err := n.ReadIndex(ctxT(t))
				if err != nil {
					t.Fatalf("read index on %s: %v", n.id, err)
				}
				if got < index {
					t.Fatalf("read index on %s is %d: below entry %d, whose write readers already see", n.id, got, index)
				}
			}
			release()
			if err := <-written; err != nil {
				t.Fatalf("held write: %v", err)
			}
		})
	}
}

// value reads foo's v for id 1 from n's local copy.
func value(t *testing.T, n *testNode) int64 {
	t.Helper()
	res, err := n.Query(ctxT(t), &api.Request{Statements: []api.Statement{stmt("SELECT v FROM foo WHERE id = 1")}})
	if err != nil || len(res) != 1 || res[0].Error != "" || len(res[0].Rows) != 1 {
		t.Fatalf("query on %s: %+v, %v", n.id, res, err)
	}
	v, ok := res[0].Rows[0][0].(int64)
	if !ok {
		t.Fatalf("query on %s: v is %T", n.id, res[0].Rows[0][0])
	}
	return v
}
