package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// addLearner registers (not started) a node that joins the cluster as a
// learner: addJoiner's command line with -raft-non-voter.
func (c *cluster) addLearner(name, id string) *node {
	n := c.addJoiner(name, id, c.nodes[0])
	dir := n.args[len(n.args)-1]
	n.args = append(n.args[:len(n.args)-1:len(n.args)-1], "-raft-non-voter", dir)
	return n
}

// membersV2 fetches /nodes?nonvoters&ver=2 keyed by id.
func (n *node) membersV2() (map[string]member, error) {
	var body struct {
		Nodes []member `json:"nodes"`
	}
	if err := n.doJSON("GET", "/nodes?nonvoters&ver=2", nil, &body); err != nil {
		return nil, err
	}
	out := make(map[string]member, len(body.Nodes))
	for _, m := range body.Nodes {
		out[m.ID] = m
	}
	return out, nil
}

// waitVoter waits until n's view of the membership holds id with the given
// suffrage.
func waitVoter(t *testing.T, n *node, id string, voter bool) {
	t.Helper()
	waitFor(t, waitTimeout, fmt.Sprintf("node %s to be voter=%v on %s", id, voter, n.name), func() error {
		ms, err := n.membersV2()
		if err != nil {
			return err
		}
		m, ok := ms[id]
		if !ok || m.Voter != voter {
			return fmt.Errorf("node %s is %+v (present: %v)", id, m, ok)
		}
		return nil
	})
}

// raftlite runs the built binary with args and returns its exit status and
// combined output.
func raftlite(t *testing.T, args ...string) (int, string) {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("raftlite %s: %v", strings.Join(args, " "), err)
	}
	return 0, string(out)
}

// promoteOn posts {"id":id} to n's /promote and returns the status and body.
func promoteOn(t *testing.T, n *node, id string) (int, string) {
	t.Helper()
	code, body, err := n.call("POST", "/promote", strings.NewReader(`{"id":"`+id+`"}`), "application/json")
	if err != nil {
		t.Fatalf("POST /promote on %s: %v", n.name, err)
	}
	return code, string(body)
}

// removeNode removes member id through n (DELETE /remove).
func removeNode(t *testing.T, n *node, id string) {
	t.Helper()
	code, body, err := n.call("DELETE", "/remove", strings.NewReader(`{"id":"`+id+`"}`), "application/json")
	if err != nil || code != http.StatusOK {
		t.Fatalf("remove node %s through %s: %d %s %v", id, n.name, code, body, err)
	}
}

// TestLearnerQuorum: a node started with -raft-non-voter joins as a
// learner, answers a linearizable read with the latest write at once
// (and every other level), and is no part of the quorum: with two of the
// three voters down, no write succeeds and the learner never stands for
// election. POST /promote refuses an unknown id (404) and a learner that
// does not answer (409), promotes the caught-up learner through a follower,
// and then its vote counts: with voters {1, 2, 4} (3 removed) and node2
// killed, node1 and node4 still form a quorum and writes succeed.
func TestLearnerQuorum(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	createTable(t, leader)
	voters := append([]*node(nil), c.nodes...)
	learner := c.addLearner("node4", "4")
	learner.start(t)
	waitReady(t, learner)
	waitVoter(t, leader, "4", false)
	if ms, err := leader.members(); err != nil || len(ms) != 3 {
		t.Fatalf("/nodes without nonvoters lists %v (%v), want the 3 voters", ms, err)
	}

	// Each write is visible to a linearizable read on the learner at once.
	for id := 1; id <= 5; id++ {
		if err := insertRow(voters, id, waitTimeout); err != nil {
			t.Fatal(err)
		}
		if got, err := learner.count("linearizable"); err != nil || got != id {
			t.Fatalf("linearizable read on the learner after write %d: %d rows, %v", id, got, err)
		}
	}
	for _, level := range []string{"none", "weak", "strong", "auto"} {
		if _, err := learner.count(level); err != nil {
			t.Fatalf("level=%s read on the learner: %v", level, err)
		}
	}

	// Two voters down: the leader and the learner cannot commit, and the
	// learner never campaigns. The window is several election timeouts.
	downed := c.others(leader, learner)
	for _, n := range downed {
		n.kill(t)
	}
	noQuorumUntil := time.Now().Add(5 * time.Second)
	for attempt := 6; time.Now().Before(noQuorumUntil); attempt++ {
		if r, err := leader.sql("/db/execute?timeout=500ms", []any{"INSERT INTO t(id, via) VALUES(?, ?)", 100 + attempt, "no quorum"}); err == nil && r.Results[0].Error == "" {
			t.Fatalf("a write succeeded with one voter of three and a learner: %+v", r.Results[0])
		}
		st, err := learner.status()
		if err != nil {
			t.Fatal(err)
		}
		if state := statusString(st, "store.raft.state"); state != "Follower" {
			t.Fatalf("the learner's raft state is %s without a leader, want Follower", state)
		}
		time.Sleep(pollInterval)
	}
	for _, n := range downed {
		n.start(t)
	}
	leader = c.waitLeader()
	waitReady(t, c.nodes...)
	if err := insertRow(voters, 6, waitTimeout); err != nil {
		t.Fatal(err)
	}

	// Promotion answers.
	if code, body := promoteOn(t, leader, "nobody"); code != http.StatusNotFound || !strings.Contains(body, `"code":"not_found"`) {
		t.Fatalf("promote of an unknown id: %d %s", code, body)
	}
	silent := c.addLearner("node5", "5")
	silent.start(t)
	waitReady(t, silent)
	waitVoter(t, leader, "5", false)
	silent.kill(t)
	if code, body := promoteOn(t, leader, "5"); code != http.StatusConflict || !strings.Contains(body, `"code":"learner_not_ready"`) {
		t.Fatalf("promote of a learner that does not answer: %d %s", code, body)
	}
	if code, body := promoteOn(t, leader, "5"); code != http.StatusConflict {
		t.Fatalf("promote of a learner that does not answer, again: %d %s", code, body)
	}
	removeNode(t, leader, "5")
	follower := c.others(leader, learner, silent)[0]
	if code, body := promoteOn(t, follower, "4"); code != http.StatusOK || !strings.Contains(body, `"promoted":true`) {
		t.Fatalf("promote through a follower: %d %s", code, body)
	}
	if code, body := promoteOn(t, leader, "4"); code != http.StatusOK || !strings.Contains(body, `"promoted":false`) {
		t.Fatalf("promote of a voter: %d %s", code, body)
	}
	waitVoter(t, learner, "4", true)

	// The promoted node's vote counts: remove node3, kill node2; nodes 1 and
	// 4 are two of the three voters.
	node2, node3 := c.nodes[1], c.nodes[2]
	removeNode(t, c.nodes[0], "3")
	waitFor(t, waitTimeout, "node3 to be removed", func() error {
		ms, err := learner.membersV2()
		if err != nil {
			return err
		}
		if _, ok := ms["3"]; ok || len(ms) != 3 {
			return fmt.Errorf("members %v", ms)
		}
		return nil
	})
	node3.kill(t)
	node2.kill(t)
	if err := insertRow([]*node{c.nodes[0], learner}, 7, waitTimeout); err != nil {
		t.Fatalf("write with voters 1 and 4 of {1, 2, 4}: %v", err)
	}
	// The writes tried without a quorum timed out, which does not mean
	// they were not applied: they may commit once the voters are back.
	rows, err := learner.rows("linearizable", "SELECT COUNT(*) FROM t WHERE id <= 7")
	if err != nil || fmt.Sprint(rows) != "[[7]]" {
		t.Fatalf("linearizable read on the promoted node: %v rows with ids 1-7, %v", rows, err)
	}
}

// TestGoremanLearner runs the README's learner flow with the real goreman:
// the Procfile's three nodes under one goreman, then `goreman -f
// Procfile.learner start` adds node4 as a learner (both files rewritten
// onto the same free ports), which serves a linearizable read of the latest
// write; `raftlite members` lists it as a learner with its applied index,
// `raftlite promote 4` makes it a voter, and `raftlite members` then shows
// it as one.
func TestGoremanLearner(t *testing.T) {
	c := newCluster(t)
	main, extra := readProcfile(t), readProcfileNamed(t, "Procfile.learner")
	entries := rewriteEntries(t, append(main, extra...), filepath.Join(c.dir, "data"))
	for _, e := range entries[:len(main)] {
		c.add(e.name, e.args)
	}
	newGoreman(t, filepath.Join(c.dir, "Procfile"), entries[:len(main)]).start()
	leader := waitGoremanLeader(t, c.nodes)
	seedRows(t, c, leader, 5)

	voters := c.nodes
	if len(extra) != 1 {
		t.Fatalf("Procfile.learner runs %d processes, want 1", len(extra))
	}
	learner := newNode(extra[0].name, entries[len(main)].args, c.dir, c.hc)
	newGoreman(t, filepath.Join(c.dir, "Procfile.learner"), entries[len(main):]).start()
	waitReady(t, learner)
	waitVoter(t, leader, learner.id, false)
	if err := insertRow(voters, 6, waitTimeout); err != nil {
		t.Fatal(err)
	}
	if got, err := learner.count("linearizable"); err != nil || got != 6 {
		t.Fatalf("linearizable read on the learner: %d rows, %v", got, err)
	}

	members := func() map[string]map[string]any {
		t.Helper()
		status, out := raftlite(t, "members", "-H", voters[1].httpAddr, "-w", "json")
		var rows []map[string]any
		if status != 0 || json.Unmarshal([]byte(out), &rows) != nil {
			t.Fatalf("raftlite members -w json: exit %d\n%s", status, out)
		}
		byID := map[string]map[string]any{}
		for _, r := range rows {
			byID[fmt.Sprint(r["id"])] = r
		}
		return byID
	}
	if m := members()[learner.id]; m["role"] != "learner" || m["reachable"] != true || m["applied_index"] == nil || m["lag"] == nil {
		t.Fatalf("raftlite members: node %s is %v, want a reachable learner with its applied index and lag", learner.id, m)
	}
	if status, out := raftlite(t, "promote", "-H", voters[2].httpAddr, learner.id); status != 0 || !strings.Contains(out, "promoted to voter") {
		t.Fatalf("raftlite promote %s: exit %d\n%s", learner.id, status, out)
	}
	waitFor(t, waitTimeout, "raftlite members to show node "+learner.id+" as a voter", func() error {
		if m := members()[learner.id]; m["role"] != "voter" {
			return fmt.Errorf("node %s is %v", learner.id, m)
		}
		return nil
	})
	status, table := raftlite(t, "members", "-H", learner.httpAddr)
	if status != 0 || strings.Count(table, "| voter ") != 4 || !strings.Contains(table, "| applied_index | lag |") {
		t.Fatalf("raftlite members (table): exit %d\n%s", status, table)
	}
	t.Logf("raftlite members after the promotion:\n%s", table)
	if status, out := raftlite(t, "promote", "-H", voters[0].httpAddr, learner.id); status != 0 || !strings.Contains(out, "already a voter") {
		t.Fatalf("raftlite promote of a voter: exit %d\n%s", status, out)
	}
}
