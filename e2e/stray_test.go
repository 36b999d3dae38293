package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// refusalLine matches the ERROR a -bootstrap-expect node logs while a
// cluster at its -join addresses is not the one it was told to form.
var refusalLine = regexp.MustCompile(`level=ERROR msg="refusing to join`)

// TestStrayNodeDoesNotHijackProcfileCluster is issue 14's fault 4: the
// README's single-node `raftlite serve` still runs on node1's addresses when
// the Procfile's three nodes start. node1 cannot bind its port and exits
// saying so; node2 and node3 must not join the stray single node (which
// keeps its one member), must report on /readyz why they are not ready and
// must log an ERROR, again while it lasts. Once the stray is stopped and
// node1 started, the three form their cluster.
func TestStrayNodeDoesNotHijackProcfileCluster(t *testing.T) {
	c := addProcfileNodes(t)
	node1, node2, node3 := c.nodes[0], c.nodes[1], c.nodes[2]
	// The README quick start: `bin/raftlite serve` with the default
	// addresses, which the Procfile gives to node1.
	stray := c.add("stray", []string{"serve", "-http-addr", node1.httpAddr, "-raft-addr", node1.raftAddr, filepath.Join(c.dir, "data", "stray")})
	stray.start(t)
	waitReady(t, stray)
	strayKeepsOneMember := func() error {
		ms, err := stray.members()
		if err != nil {
			return fmt.Errorf("stray /nodes: %w", err)
		}
		if len(ms) != 1 {
			t.Fatalf("the stray single node's cluster grew to %d members: %v", len(ms), ms)
		}
		return nil
	}

	node1.start(t)
	waitFor(t, waitTimeout, "node1 to exit", func() error {
		if node1.alive() {
			return fmt.Errorf("node1 still runs although its HTTP port is taken")
		}
		return nil
	})
	if m, _ := node1.findInLog(0, regexp.MustCompile(`level=ERROR msg="node failed".*listen on HTTP address.*address already in use`)); m == nil {
		t.Fatalf("node1 exited without saying its HTTP address is in use:\n%s", node1.logTail(20))
	}

	node2.start(t)
	node3.start(t)
	for _, n := range []*node{node2, node3} {
		waitFor(t, waitTimeout, n.name+" to refuse the stray on /readyz", func() error {
			if err := strayKeepsOneMember(); err != nil {
				return err
			}
			code, body, err := n.call("GET", "/readyz", nil, "")
			if err != nil {
				return err
			}
			if code != http.StatusServiceUnavailable || !bytes.Contains(body, []byte("refusing to join")) || !bytes.Contains(body, []byte(stray.raftAddr)) {
				return &httpError{Code: code, Body: string(bytes.TrimSpace(body))}
			}
			return nil
		})
	}
	for _, n := range []*node{node2, node3} {
		_, next := n.waitLog(t, 0, waitTimeout, refusalLine)
		n.waitLog(t, next, waitTimeout, refusalLine) // repeated while it lasts
	}
	if err := strayKeepsOneMember(); err != nil {
		t.Fatal(err)
	}

	// The operator stops the stray and starts node1: the three form their
	// cluster, without the stray.
	stray.kill(t)
	node1.start(t)
	procfile := c.others(stray)
	waitReady(t, procfile...)
	leader := c.waitLeader()
	waitFor(t, waitTimeout, "three members, none of them the stray", func() error {
		ms, err := leader.members()
		if err != nil {
			return err
		}
		var ids []string
		for id := range ms {
			ids = append(ids, id)
		}
		if len(ms) != 3 || ms[node1.id].Addr != node1.raftAddr {
			return fmt.Errorf("members %s", strings.Join(ids, ","))
		}
		return nil
	})
	createTable(t, leader)
	if err := insertRow(procfile, 1, waitTimeout); err != nil {
		t.Fatal(err)
	}
	waitIdentical(t, 1, procfile...)
}
