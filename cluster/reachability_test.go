package cluster

import (
	"strings"
	"testing"
	"time"
)

// leaderLinesAbout returns the leader's WARN and ERROR log lines that name
// the follower, by address or ID.
func leaderLinesAbout(t *testing.T, leader, follower *testNode) []string {
	var out []string
	for _, line := range strings.Split(testLogs(t), "\n") {
		if !strings.Contains(line, "test_node="+leader.id+" ") ||
			!(strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR")) {
			continue
		}
		if strings.Contains(line, follower.RaftAddr()) || strings.Contains(line, "="+follower.id+" ") {
			out = append(out, line)
		}
	}
	return out
}

// TestUnreachableFollowerLogsOncePerChange checks that while a follower is
// down the leader logs one line saying so, not hashicorp/raft's error per
// failed heartbeat and replication attempt, and one line when it is back.
func TestUnreachableFollowerLogsOncePerChange(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	follower := followers(leader, nodes...)[0]
	unreachable := `msg="follower unreachable" test_node=` + leader.id + ` node_id=` + leader.id +
		` component=cluster peer=` + follower.id + ` addr=` + follower.RaftAddr()
	back := `level=INFO msg="follower reachable again" test_node=` + leader.id + ` node_id=` + leader.id +
		` component=cluster peer=` + follower.id + ` addr=` + follower.RaftAddr()
	exec(t, leader, stmt("CREATE TABLE t (x)"))

	follower.stop()
	waitFor(t, 10*time.Second, "the leader to log the follower unreachable", func() bool {
		return strings.Contains(testLogs(t), unreachable)
	})
	// A window in which hashicorp/raft retries the follower many times
	// (heartbeats every 35 ms, backing off to at most 175 ms).
	window := time.Now().Add(2 * time.Second)
	for time.Now().Before(window) {
		exec(t, leader, stmt("INSERT INTO t VALUES (1)"))
	}
	if lines := leaderLinesAbout(t, leader, follower); len(lines) != 1 {
		t.Fatalf("%d WARN/ERROR lines of the leader name the follower while it is down, want 1:\n%s", len(lines), strings.Join(lines, "\n"))
	}

	follower.restart()
	waitFor(t, 20*time.Second, "the leader to log the follower reachable again", func() bool {
		return strings.Contains(testLogs(t), back)
	})
	if lines := leaderLinesAbout(t, leader, follower); len(lines) != 1 || strings.Count(testLogs(t), back) != 1 {
		t.Fatalf("%d WARN/ERROR lines of the leader name the follower and %d say it is back, want 1 and 1:\n%s", len(lines), strings.Count(testLogs(t), back), strings.Join(lines, "\n"))
	}
}
