package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/dnsstub"
)

// TestBootstrapExpectRefusesStrayCluster is issue 14's fault 4 in process: a
// single-node cluster (the README's quick start left running) holds node1's
// address when node2 and node3 start with bootstrap-expect 3 and the
// three-node join list. They must not join it: the stray keeps its one
// member, Ready says why they are not ready, and each logs an ERROR. Once
// the stray is gone and node1 starts, the three form their cluster.
func TestBootstrapExpectRefusesStrayCluster(t *testing.T) {
	logger := testLogger(t)
	lns := []net.Listener{listen(t), listen(t), listen(t)}
	var addrs []string
	for _, ln := range lns {
		addrs = append(addrs, ln.Addr().String())
	}
	stray := start(t, testConfig(t, "stray", lns[0]), logger)
	waitLeader(t, stray)
	strayKeepsOneMember := func() {
		t.Helper()
		if ms := memberIDs(t, stray); len(ms) != 1 {
			t.Fatalf("the stray single node's cluster grew to %d members: %v", len(ms), ms)
		}
	}

	expectConfig := func(id string, ln net.Listener) Config {
		cfg := testConfig(t, id, ln)
		cfg.BootstrapExpect = 3
		cfg.Join = addrs
		return cfg
	}
	var forming []*testNode
	formErrs := make(chan error, 2)
	for i, ln := range lns[1:] {
		tn := startUnformed(t, expectConfig(fmt.Sprintf("node%d", i+2), ln), logger)
		forming = append(forming, tn)
		go func() { formErrs <- tn.Form(t.Context()) }()
	}
	for _, tn := range forming {
		waitFor(t, 10*time.Second, tn.id+" to refuse the stray", func() bool {
			strayKeepsOneMember()
			err := tn.Ready()
			return errors.Is(err, ErrNotFormed) && strings.Contains(err.Error(), "refusing to join the cluster of the node at "+addrs[0])
		})
		logged := regexp.MustCompile(`level=ERROR msg="refusing to join a running cluster.*test_node=` + tn.id + ` .*reason="it has 1 voter`)
		waitFor(t, 10*time.Second, tn.id+" to log an ERROR", func() bool { return logged.MatchString(testLogs(t)) })
	}
	strayKeepsOneMember()

	stray.stop()
	node1 := start(t, expectConfig("node1", rebind(t, addrs[0])), logger)
	for range forming {
		if err := <-formErrs; err != nil {
			t.Fatalf("Form after the stray left: %v", err)
		}
	}
	nodes := append([]*testNode{node1}, forming...)
	leader := waitLeader(t, nodes...)
	if ms := memberIDs(t, leader); len(ms) != 3 {
		t.Fatalf("members %v, want node1..3", ms)
	}
	for _, n := range nodes {
		waitFor(t, 10*time.Second, n.id+" ready", func() bool { return n.Ready() == nil })
	}
}

// TestBootstrapExpectWipedNodeRejoins: a node of a formed bootstrap-expect
// cluster loses its data and restarts with the same flags. The running
// cluster is the listed nodes' own, so it is not refused: the node is a
// member already and catches up.
func TestBootstrapExpectWipedNodeRejoins(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	idx := insertRows(t, leader, 0, 10)
	waitSame(t, idx, nodes...)

	wiped := followers(leader, nodes...)[0]
	addr := wiped.RaftAddr()
	wiped.stop()
	if err := os.RemoveAll(wiped.cfg.Dir); err != nil {
		t.Fatal(err)
	}
	cfg := wiped.cfg
	cfg.Listener = rebind(t, addr)
	back := start(t, cfg, wiped.logger)
	live := append(followers(wiped, nodes...), back)
	waitLeader(t, live...)
	if got := waitSame(t, idx, live...); got != 10 {
		t.Fatalf("rows = %d, want 10", got)
	}
	if ms := memberIDs(t, back); len(ms) != 3 {
		t.Fatalf("members %v, want 3", ms)
	}
	if strings.Contains(testLogs(t), "refusing to join") {
		t.Fatal("the wiped node refused its own cluster")
	}
}

// TestRefuseCluster pins the rule a bootstrap-expect node applies to a
// running cluster reported at a join address.
func TestRefuseCluster(t *testing.T) {
	n := &Node{advAddr: "10.0.0.1:4002", cfg: Config{BootstrapExpect: 3, Join: []string{"10.0.0.1:4002", "10.0.0.2:4002", "10.0.0.3:4002"}}}
	voter := func(id, addr string) configServer { return configServer{ID: id, RaftAddr: addr, Voter: true} }
	listed := []configServer{voter("1", "10.0.0.1:4002"), voter("2", "10.0.0.2:4002"), voter("3", "10.0.0.3:4002")}
	for name, tc := range map[string]struct {
		servers []configServer
		refused string // a part of the reason; "" for accepted
	}{
		"the listed nodes' cluster":  {listed, ""},
		"plus an unlisted non-voter": {append(listed, configServer{ID: "r", RaftAddr: "10.9.9.9:4002"}), ""},
		"a single stray node":        {[]configServer{voter("10.0.0.2:4002", "10.0.0.2:4002")}, "it has 1 voter(s)"},
		"two listed voters":          {listed[:2], "it has 2 voter(s)"},
		"an unlisted voter":          {append(listed[:2:2], voter("x", "10.9.9.9:4002")), "its voters x at 10.9.9.9:4002 are not in the join list"},
		"no configuration reported":  {nil, "it has 0 voter(s)"},
	} {
		got := n.refuseCluster(context.Background(), tc.servers)
		if (tc.refused == "") != (got == "") || !strings.Contains(got, tc.refused) {
			t.Errorf("%s: refuseCluster = %q, want %q", name, got, tc.refused)
		}
	}
}

// TestRefuseClusterDiscovered: with DNS discovery, a running cluster whose
// voters advertise stable host names (StatefulSet pods) is the
// discovered nodes' own when the names resolve to the addresses
// discovery found (the join list is then empty); a voter whose name
// resolves elsewhere, or not at all, is not listed.
func TestRefuseClusterDiscovered(t *testing.T) {
	stub, err := dnsstub.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	for i, ip := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		stub.SetA(fmt.Sprintf("raftlite-%d.raftlite-headless.test", i), ip)
	}
	stub.SetA("elsewhere.test", "127.0.0.9")
	n := &Node{advAddr: "raftlite-3.raftlite-headless.test:4002", logger: slog.New(slog.DiscardHandler), cfg: Config{
		BootstrapExpect: 3,
		Discover:        func(context.Context) ([]string, error) { return nil, nil },
		Resolver: &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, stub.Addr())
		}},
	}}
	n.boot.discovered = []string{"127.0.0.1:4002", "127.0.0.2:4002", "127.0.0.3:4002"}
	voter := func(i int) configServer {
		return configServer{ID: strconv.Itoa(i), RaftAddr: fmt.Sprintf("raftlite-%d.raftlite-headless.test:4002", i), Voter: true}
	}
	named := []configServer{voter(0), voter(1), voter(2)}
	for name, tc := range map[string]struct {
		servers []configServer
		refused string
	}{
		"the discovered nodes by name": {named, ""},
		"a voter resolving elsewhere":  {append(named[:2:2], configServer{ID: "x", RaftAddr: "elsewhere.test:4002", Voter: true}), "x at elsewhere.test:4002 are not in the join list"},
		"a voter DNS does not know":    {append(named[:2:2], configServer{ID: "y", RaftAddr: "unknown.test:4002", Voter: true}), "y at unknown.test:4002"},
		"the right name, another port": {append(named[:2:2], configServer{ID: "z", RaftAddr: "raftlite-2.raftlite-headless.test:5002", Voter: true}), "z at"},
	} {
		got := n.refuseCluster(context.Background(), tc.servers)
		if (tc.refused == "") != (got == "") || !strings.Contains(got, tc.refused) {
			t.Errorf("%s: refuseCluster = %q, want %q", name, got, tc.refused)
		}
	}
}
