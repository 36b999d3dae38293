//go:build linux

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rqlite's operations surface (issue 16), on real processes.

// electionTimeout is cluster.DefaultElectionTimeout, the bound a planned
// leader stop must keep writes unavailable within.
const electionTimeout = 350 * time.Millisecond

// stopGracefully sends SIGTERM and returns how long the process took to
// exit.
func (n *node) stopGracefully(t testing.TB, within time.Duration) time.Duration {
	t.Helper()
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	start := time.Now()
	n.signal(t, syscall.SIGTERM)
	select {
	case <-done:
		return time.Since(start)
	case <-time.After(within):
		t.Fatalf("%s: still running %v after SIGTERM", n.name, within)
		return 0
	}
}

// post sends an empty POST to path and returns status and body.
func (n *node) post(t testing.TB, path string) (int, string) {
	t.Helper()
	code, body, err := n.call(http.MethodPost, path, nil, "")
	if err != nil {
		t.Fatalf("%s: POST %s: %v", n.name, path, err)
	}
	return code, string(body)
}

// waitMembers waits until n's /nodes lists exactly the ids want.
func waitMembers(t testing.TB, n *node, want ...string) {
	t.Helper()
	slices.Sort(want)
	waitFor(t, waitTimeout, fmt.Sprintf("%s to list members %v", n.name, want), func() error {
		m, err := n.members()
		if err != nil {
			return err
		}
		var got []string
		for id := range m {
			got = append(got, id)
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			return fmt.Errorf("members %v", got)
		}
		return nil
	})
}

// fillTable creates table t and inserts rows 1..count through nodes (a
// follower forwards the writes).
func fillTable(t testing.TB, nodes []*node, count int) {
	t.Helper()
	createTable(t, nodes[0])
	for id := 1; id <= count; id++ {
		if err := insertRow(nodes, id, waitTimeout); err != nil {
			t.Fatal(err)
		}
	}
}

// singleNode registers (not started) a node that bootstraps a cluster of
// its own: the Procfile's first entry without -bootstrap-expect and -join.
func singleNode(t *testing.T, c *cluster, name string, flags ...string) *node {
	entries := rewriteEntries(t, readProcfile(t)[:1], filepath.Join(c.dir, name))
	args := withFlags(t, entries[0].args, append([]string{"bootstrap-expect", "", "join", ""}, flags...)...)
	return c.add(name, args)
}

func TestSnapshotNow(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	fillTable(t, c.nodes, 20)
	follower := c.others(leader)[0]
	waitIdentical(t, 20, c.nodes...)
	applied, err := follower.statusUint("store.fsm_index")
	if err != nil {
		t.Fatal(err)
	}
	before, err := follower.statusUint("store.raft.last_snapshot_index")
	if err != nil {
		t.Fatal(err)
	}
	// Served by the node asked (not forwarded), rqlite's answer: 200, no body.
	if code, body := follower.post(t, "/snapshot?trailing=2"); code != 200 || body != "" {
		t.Fatalf("POST /snapshot: %d %q", code, body)
	}
	after, err := follower.statusUint("store.raft.last_snapshot_index")
	if err != nil {
		t.Fatal(err)
	}
	if after < applied || after <= before {
		t.Fatalf("last_snapshot_index %d after POST /snapshot (was %d, applied %d)", after, before, applied)
	}
	if code, body := follower.post(t, "/snapshot?trailing=lots"); code != 400 || !strings.Contains(body, `"code":"bad_request"`) {
		t.Fatalf("POST /snapshot?trailing=lots: %d %s", code, body)
	}
	// The node restarts from its compacted log and keeps up.
	follower.kill(t)
	follower.start(t)
	waitReady(t, follower)
	if err := insertRow(c.nodes, 21, waitTimeout); err != nil {
		t.Fatal(err)
	}
	waitIdentical(t, 21, c.nodes...)
}

// reapedLine is the leader's log line for a reaped member.
var reapedLine = regexp.MustCompile(`msg="reaped unreachable member".* id=(\S+) .*voter=true unreachable_for=(\S+)`)

func TestReapAfterTimeout(t *testing.T) {
	c := startProcfileCluster(t, "raft-reap-node-timeout", "2s")
	leader := c.waitLeader()
	gone := c.others(leader)[0]
	from := leader.logSize()
	gone.kill(t)
	killed := time.Now()
	m, _ := leader.waitLog(t, from, waitTimeout, reapedLine)
	took := time.Since(killed)
	if m[1] != gone.id || took < 2*time.Second {
		t.Fatalf("reaped %s after %v (log says unreachable for %s), want %s after at least 2s", m[1], took, m[2], gone.id)
	}
	t.Logf("reaped %s %v after it was killed (unreachable for %s)", gone.id, took.Round(time.Millisecond), m[2])
	rest := c.others(gone)
	waitMembers(t, leader, rest[0].id, rest[1].id)
	// Two voters of two: writes go on.
	createTable(t, leader)
	if err := insertRow(rest, 1, waitTimeout); err != nil {
		t.Fatal(err)
	}
}

func TestReapNow(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	gone, via := c.others(leader)[0], c.others(leader)[1]
	if code, body := via.post(t, "/reap"); code != 200 || body != `{"reaped":[]}` {
		t.Fatalf("POST /reap with every member reachable: %d %s", code, body)
	}
	gone.kill(t)
	// Without a reap timeout nothing happens by itself; POST /reap (to a
	// follower, which forwards it) removes the member once it has been
	// unreachable for min_unreachable, and not before.
	if code, body := via.post(t, "/reap?min_unreachable=1h"); code != 200 || body != `{"reaped":[]}` {
		t.Fatalf("POST /reap?min_unreachable=1h: %d %s", code, body)
	}
	var reaped struct {
		Reaped []struct {
			ID    string `json:"id"`
			Voter bool   `json:"voter"`
		} `json:"reaped"`
	}
	waitFor(t, waitTimeout, "POST /reap to remove the killed member", func() error {
		code, body := via.post(t, "/reap?min_unreachable=1s")
		if code != 200 {
			return fmt.Errorf("POST /reap: %d %s", code, body)
		}
		if err := json.Unmarshal([]byte(body), &reaped); err != nil {
			return err
		}
		if len(reaped.Reaped) == 0 {
			return fmt.Errorf("nothing reaped yet")
		}
		return nil
	})
	if len(reaped.Reaped) != 1 || reaped.Reaped[0].ID != gone.id || !reaped.Reaped[0].Voter {
		t.Fatalf("reaped %+v, want voter %s", reaped.Reaped, gone.id)
	}
	waitMembers(t, leader, leader.id, via.id)
}

func TestBoot(t *testing.T) {
	// An SQLite file to boot from: a backup of a cluster with rows in it.
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	fillTable(t, c.nodes, 50)
	code, file, err := leader.call(http.MethodGet, "/db/backup", nil, "")
	if err != nil || code != 200 {
		t.Fatalf("backup: %d %v", code, err)
	}
	// rqlite's rules: a node of a larger cluster refuses, so does a body
	// that is not an SQLite file.
	code, body, err := c.others(leader)[0].call(http.MethodPost, "/boot", bytes.NewReader(file), "application/octet-stream")
	if err != nil || code != 400 || !strings.Contains(string(body), "not single-node") {
		t.Fatalf("boot of a cluster member: %d %s %v", code, body, err)
	}

	solo := singleNode(t, c, "solo")
	solo.start(t)
	waitReady(t, solo)
	code, body, err = solo.call(http.MethodPost, "/boot", strings.NewReader("CREATE TABLE x(a)"), "text/plain")
	if err != nil || code != 400 || !strings.Contains(string(body), "invalid SQLite data") {
		t.Fatalf("boot with SQL text: %d %s %v", code, body, err)
	}
	code, body, err = solo.call(http.MethodPost, "/boot", bytes.NewReader(file), "application/octet-stream")
	if err != nil || code != 200 {
		t.Fatalf("boot: %d %s %v", code, body, err)
	}
	waitIdentical(t, 50, solo)
	// It is an ordinary node afterwards: it takes writes, survives a
	// restart with the booted data, and a new node joins and gets it all.
	if err := insertRow([]*node{solo}, 51, waitTimeout); err != nil {
		t.Fatal(err)
	}
	solo.stopGracefully(t, waitTimeout)
	solo.start(t)
	waitReady(t, solo)
	waitIdentical(t, 51, solo)
	joiner := c.addJoiner("solo-joiner", "solo-joiner", solo)
	joiner.args = withFlag(joiner.args, "join", solo.raftAddr)
	joiner.start(t)
	waitIdentical(t, 51, solo, joiner)
}

func TestPeersFileRecovery(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	fillTable(t, c.nodes, 30)
	waitIdentical(t, 30, c.nodes...)
	survivor := c.others(leader)[0]
	// Two nodes are lost for good; the survivor alone has no quorum.
	for _, n := range c.others(survivor) {
		n.kill(t)
	}
	survivor.kill(t)

	peers := fmt.Sprintf(`[{"id": %q, "address": %q, "non_voter": false}]`, survivor.id, survivor.raftAddr)
	path := filepath.Join(survivor.dataDir(), "raft", "peers.json")
	if err := os.WriteFile(path, []byte(peers), 0o644); err != nil {
		t.Fatal(err)
	}
	survivor.start(t)
	waitReady(t, survivor)
	if _, err := os.Stat(filepath.Join(survivor.dataDir(), "raft", "peers.info")); err != nil {
		t.Fatalf("peers.json not renamed to peers.info: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("peers.json still there: %v", err)
	}
	waitIdentical(t, 30, survivor)
	if err := insertRow([]*node{survivor}, 31, waitTimeout); err != nil {
		t.Fatal(err)
	}
	waitIdentical(t, 31, survivor)
	requireIntact(t, survivor)
	waitMembers(t, survivor, survivor.id)
}

func TestRemoveOnShutdownAndUnknownRemove(t *testing.T) {
	c := addProcfileNodes(t)
	for _, n := range c.nodes {
		// A boolean flag takes its value after "=".
		n.args = slices.Insert(n.args, len(n.args)-1, "-raft-cluster-remove-shutdown=true")
		n.start(t)
	}
	leader := c.waitLeader()
	follower := c.others(leader)[0]

	// An unknown id is 404 with a code, also through a follower.
	for _, n := range []*node{leader, follower} {
		code, body, err := n.call(http.MethodDelete, "/remove", strings.NewReader(`{"id":"nobody"}`), "application/json")
		if err != nil || code != 404 || !strings.Contains(string(body), `"code":"not_found"`) {
			t.Fatalf("%s: DELETE /remove of an unknown id: %d %s %v", n.name, code, body, err)
		}
	}

	// A follower stopped gracefully removes itself first.
	from := follower.logSize()
	took := follower.stopGracefully(t, waitTimeout)
	if m, _ := follower.findInLog(from, regexp.MustCompile(`msg="left the cluster"`)); m == nil {
		t.Fatal("the follower did not log leaving the cluster")
	}
	t.Logf("follower left and exited in %v", took.Round(time.Millisecond))
	rest := c.others(follower)
	waitMembers(t, leader, rest[0].id, rest[1].id)

	// So does the leader: it hands leadership over, then leaves; the last
	// node is a cluster of one and takes writes.
	last := c.others(follower, leader)[0]
	leader.stopGracefully(t, waitTimeout)
	waitReady(t, last)
	waitMembers(t, last, last.id)
	createTable(t, last)
	if err := insertRow([]*node{last}, 1, waitTimeout); err != nil {
		t.Fatal(err)
	}
}

// A leader stopped gracefully hands leadership over first: the term
// changes and writes through the other nodes see no gap longer than an
// election timeout.
func TestLeaderHandsOverOnSIGTERM(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	createTable(t, leader)
	term, err := leader.statusUint("store.raft.term")
	if err != nil {
		t.Fatal(err)
	}
	rest := c.others(leader)

	var mu sync.Mutex
	var acks []time.Time
	stop, done := make(chan struct{}), make(chan error, 1)
	go func() {
		for id := 1; ; id++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := insertRow(rest, id, waitTimeout); err != nil {
				done <- err
				return
			}
			mu.Lock()
			acks = append(acks, time.Now())
			mu.Unlock()
		}
	}()
	ackCount := func() int { mu.Lock(); defer mu.Unlock(); return len(acks) }
	waitFor(t, waitTimeout, "writes before the stop", func() error {
		if ackCount() < 20 {
			return fmt.Errorf("%d acks", ackCount())
		}
		return nil
	})
	stoppedAt, from := time.Now(), leader.logSize()
	took := leader.stopGracefully(t, waitTimeout)
	if m, _ := leader.findInLog(from, regexp.MustCompile(`msg="handed leadership over"`)); m == nil {
		t.Fatal("the leader did not hand leadership over before it exited")
	}
	n := ackCount()
	waitFor(t, waitTimeout, "writes after the stop", func() error {
		if ackCount() < n+20 {
			return fmt.Errorf("%d acks", ackCount())
		}
		return nil
	})
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	var maxGap time.Duration
	mu.Lock()
	for i := 1; i < len(acks); i++ {
		if acks[i].After(stoppedAt) || acks[i-1].After(stoppedAt.Add(-time.Second)) {
			maxGap = max(maxGap, acks[i].Sub(acks[i-1]))
		}
	}
	mu.Unlock()
	newLeader := c.waitLeader()
	newTerm, err := newLeader.statusUint("store.raft.term")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("leader exited %v after SIGTERM; longest gap between acknowledged writes around it %v; term %d -> %d",
		took.Round(time.Millisecond), maxGap.Round(time.Millisecond), term, newTerm)
	if newTerm <= term {
		t.Fatalf("term %d after the hand-over, was %d", newTerm, term)
	}
	if maxGap > electionTimeout {
		t.Fatalf("writes were unavailable for %v around the leader's stop, more than an election timeout (%v)", maxGap, electionTimeout)
	}
}

// A node told to join an address that does not answer says why it is not
// ready, keeps the address as given, and stops at once on SIGTERM.
func TestJoinUnreachableAddress(t *testing.T) {
	c := newCluster(t)
	n := singleNode(t, c, "lost", "join", "http://nonsense:4002")
	n.start(t)
	waitFor(t, waitTimeout, "/readyz to say why the node is not ready", func() error {
		code, body, err := n.call(http.MethodGet, "/readyz", nil, "")
		if err != nil {
			return err
		}
		if code != 503 || !strings.Contains(string(body), "joining a cluster via [http://nonsense:4002]") {
			return fmt.Errorf("/readyz: %d %q", code, body)
		}
		return nil
	})
	n.waitLog(t, 0, waitTimeout, regexp.MustCompile(`msg="join attempt failed".*via=nonsense:4002 `))
	took := n.stopGracefully(t, waitTimeout)
	t.Logf("exited %v after SIGTERM", took.Round(time.Millisecond))
	if took > 2*time.Second {
		t.Fatalf("took %v to exit after SIGTERM, want under 2s", took)
	}
	log, err := os.ReadFile(n.logPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(log, []byte("http//")) || bytes.Contains(log, []byte("http://http")) {
		t.Fatalf("the join address was rewritten:\n%s", log)
	}
}
