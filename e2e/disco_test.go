//go:build linux

package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/raftlite/raftlite/internal/dnsstub"
)

// TestDNSDiscovery starts three real nodes, as a Kubernetes StatefulSet
// behind a headless Service would: the same command line but for their
// addresses (127.0.0.1-3, one HTTP and one Raft port for all), no -join
// list, -disco-mode dns naming one DNS name and -bootstrap-expect 3. DNS
// is a stub server on loopback (RAFTLITE_DNS_RESOLVER). While the name
// does not resolve, no node bootstraps a cluster of its own; once DNS
// lists the three addresses, the nodes find each other at their next
// lookup and form one three-node cluster that replicates a write.
func TestDNSDiscovery(t *testing.T) {
	stub, err := dnsstub.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stub.Close() })
	t.Setenv("RAFTLITE_DNS_RESOLVER", stub.Addr())
	const name = "raftlite-headless.test"
	ports := freePorts(t, 2)
	c := newCluster(t)
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	for i, ip := range ips {
		id := strconv.Itoa(i + 1)
		c.add("node"+id, []string{"serve", "-node-id", id,
			"-http-addr", fmt.Sprintf("%s:%d", ip, ports[0]), "-raft-addr", fmt.Sprintf("%s:%d", ip, ports[1]),
			"-bootstrap-expect", "3", "-join-interval", "200ms",
			"-disco-mode", "dns", "-disco-config", fmt.Sprintf(`{"name":%q,"port":%d}`, name, ports[1]),
			filepath.Join(c.dir, "data", "node"+id)})
	}
	for _, n := range c.nodes {
		n.start(t)
	}
	lookupFailed := regexp.MustCompile(`level=WARN msg="discovery failed.*` + regexp.QuoteMeta(name))
	for _, n := range c.nodes {
		n.waitLog(t, 0, waitTimeout, lookupFailed)
	}
	waitReadyz(t, 503, c.nodes...)
	for _, n := range c.nodes {
		if ms, err := n.members(); err == nil && len(ms) > 0 {
			t.Fatalf("%s formed a cluster %v before DNS listed any node", n.name, ms)
		}
	}

	stub.SetA(name, ips...)
	waitReady(t, c.nodes...)
	leader := c.waitLeader()
	for _, n := range c.nodes {
		ms, err := n.members()
		if err != nil || len(ms) != 3 {
			t.Fatalf("%s: members %v (%v), want the three nodes", n.name, ms, err)
		}
	}
	createTable(t, leader)
	wrote := writeThroughEach(t, c.nodes, 0)
	waitIdentical(t, wrote, c.nodes...)
}
