//go:build linux

package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// A netLab runs each node of a cluster in its own Linux network namespace so
// that a test can cut one node off from its peers for real, while the test
// itself (in the root namespace) still reaches every node.
//
// Why namespaces rather than a fault-injecting TCP proxy: hashicorp/raft dials
// every peer at the peer's configured address, and an RPC's response travels
// back on the dialer's connection, so a proxy in front of a node only sees
// the connections others open to it; the ones the node opens itself go
// straight to its peers. Cutting a node off with proxies would take a proxy
// per ordered pair of nodes and different peer addresses on each node, which
// one replicated Raft configuration cannot express. With a namespace per
// node, a blackhole route on both sides drops every packet between two
// nodes, in both directions and on every connection (Raft, the cluster
// service, HTTP forwarding), exactly like a network partition, and only
// iproute2 is needed (no iptables).
//
// Topology: a hub namespace holds a bridge; each node namespace has one veth
// into the bridge, and so does the root namespace, where the test runs. The
// addresses are in 127.77.X.0/24, loopback-range addresses that never leave
// the machine (the interfaces accept them with route_localnet). Nodes get
// .1, .2, ...; the root namespace .254.
//
// Requirements: root and the ip command. Without them the tests skip, unless
// the environment variable CI is set, in which case they fail: CI must not
// pass by silently skipping them.
type netLab struct {
	t      *testing.T
	prefix string // namespace and interface name prefix, unique per lab
	subnet string // "127.77.X"
	hub    string // the hub namespace
	hostIf string // the root namespace's veth

	mu      sync.Mutex
	ns      map[*node]string // node -> its namespace
	ip      map[*node]string // node -> its address
	blocked map[[2]string]bool
}

// labSeq numbers the labs of one test process.
var labSeq atomic.Int32

// labNamePattern matches the namespaces and interfaces labs create; the
// number is the creating process's pid.
var labNamePattern = regexp.MustCompile(`^rle(\d+)[xn]`)

// requireNetLab skips or fails the test when network namespaces cannot be
// used here (see netLab).
func requireNetLab(t *testing.T) {
	t.Helper()
	var why string
	if os.Geteuid() != 0 {
		why = "not running as root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "the ip command (iproute2) is not installed"
	} else {
		probe := fmt.Sprintf("rle%dprobe", os.Getpid())
		if out, err := exec.Command("ip", "netns", "add", probe).CombinedOutput(); err != nil {
			why = fmt.Sprintf("cannot create a network namespace: %v: %s", err, bytes.TrimSpace(out))
		} else {
			_ = exec.Command("ip", "netns", "del", probe).Run()
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("network namespaces are required for this test and CI is set: %s", why)
	}
	t.Skipf("skipping: needs network namespaces (root and iproute2): %s", why)
}

// newNetLab creates the hub namespace, the bridge and the root namespace's
// link to it. Everything it creates is removed when the test ends.
func newNetLab(t *testing.T) *netLab {
	t.Helper()
	requireNetLab(t)
	removeStaleLabs(t)
	seq := labSeq.Add(1)
	pid := os.Getpid()
	l := &netLab{
		t:       t,
		prefix:  fmt.Sprintf("rle%dn%d", pid, seq),
		subnet:  fmt.Sprintf("127.77.%d", 1+(pid*13+int(seq)*7)%250),
		ns:      map[*node]string{},
		ip:      map[*node]string{},
		blocked: map[[2]string]bool{},
	}
	l.hub = l.prefix + "-hub"
	l.hostIf = fmt.Sprintf("rle%dx%d", pid, seq)
	if len(l.hostIf) > 15 {
		t.Fatalf("interface name %q is too long", l.hostIf)
	}
	t.Cleanup(l.destroy)
	l.run("ip", "netns", "add", l.hub)
	l.run("ip", "-n", l.hub, "link", "add", "br0", "type", "bridge")
	l.run("ip", "-n", l.hub, "link", "set", "br0", "up")
	l.run("ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", "host", "netns", l.hub)
	l.run("ip", "-n", l.hub, "link", "set", "dev", "host", "master", "br0", "up")
	l.run("ip", "addr", "add", l.subnet+".254/24", "dev", l.hostIf)
	l.sysctl("", l.hostIf)
	l.run("ip", "link", "set", l.hostIf, "up")
	return l
}

// run runs a command that must succeed.
func (l *netLab) run(args ...string) {
	l.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		l.t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

// sysctl lets interface dev of namespace ns ("" for the root namespace) use
// loopback-range addresses.
func (l *netLab) sysctl(ns, dev string) {
	l.t.Helper()
	path := "/proc/sys/net/ipv4/conf/" + dev + "/route_localnet"
	if ns == "" {
		if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
			l.t.Fatalf("enable route_localnet on %s: %v", dev, err)
		}
		return
	}
	l.run("ip", "netns", "exec", ns, "sh", "-c", "echo 1 > "+path)
}

// destroy removes the lab's namespaces and interfaces. The cluster's
// processes must be gone already (newCluster's cleanup runs first because
// it is registered after the lab's).
func (l *netLab) destroy() {
	_ = exec.Command("ip", "link", "del", l.hostIf).Run()
	l.mu.Lock()
	names := []string{l.hub}
	for _, ns := range l.ns {
		names = append(names, ns)
	}
	l.mu.Unlock()
	for _, ns := range names {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			l.t.Logf("remove namespace %s: %v: %s", ns, err, bytes.TrimSpace(out))
		}
	}
}

// removeStaleLabs removes namespaces and interfaces left behind by test
// processes that no longer exist (a test binary killed by its timeout does
// not run its cleanups).
func removeStaleLabs(t *testing.T) {
	t.Helper()
	stale := func(name string) bool {
		m := labNamePattern.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() {
			return false
		}
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if stale(name) {
				_ = exec.Command("ip", "link", "del", name).Run()
			}
		}
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) > 0 && stale(f[0]) {
				_ = exec.Command("ip", "netns", "del", f[0]).Run()
			}
		}
	}
}

// startProcfileCluster starts the repository's Procfile cluster with every
// node in its own namespace: each loopback address of the Procfile becomes
// the address of the node that binds its port.
func (l *netLab) startProcfileCluster() *cluster {
	t := l.t
	t.Helper()
	c := newCluster(t)
	entries := rewriteEntries(t, readProcfile(t), filepath.Join(c.dir, "data"))
	owner := map[string]string{} // port -> address of the node that binds it
	for i, e := range entries {
		ip := fmt.Sprintf("%s.%d", l.subnet, i+1)
		for _, flag := range []string{"http-addr", "raft-addr"} {
			v := flagValue(e.args, flag)
			m := loopbackAddr.FindStringSubmatch(v)
			if m == nil {
				t.Fatalf("Procfile entry %s: -%s %q is not a loopback address", e.name, flag, v)
			}
			owner[m[1]] = ip
		}
	}
	for i, e := range entries {
		args := make([]string, len(e.args))
		for j, a := range e.args {
			args[j] = loopbackAddr.ReplaceAllStringFunc(a, func(s string) string {
				port := loopbackAddr.FindStringSubmatch(s)[1]
				ip, ok := owner[port]
				if !ok {
					t.Fatalf("Procfile entry %s: no node binds port %s of %q", e.name, port, a)
				}
				return ip + ":" + port
			})
		}
		n := c.add(e.name, args)
		l.addNode(n, fmt.Sprintf("%s.%d", l.subnet, i+1))
	}
	for _, n := range c.nodes {
		l.start(n)
	}
	return c
}

// addNode creates n's namespace, with address ip on a veth into the hub.
func (l *netLab) addNode(n *node, ip string) {
	l.t.Helper()
	l.mu.Lock()
	ns := fmt.Sprintf("%s-%d", l.prefix, len(l.ns)+1)
	l.ns[n] = ns
	l.ip[n] = ip
	l.mu.Unlock()
	port := fmt.Sprintf("p%d", len(l.ns))
	l.run("ip", "netns", "add", ns)
	l.run("ip", "-n", ns, "link", "set", "lo", "up")
	l.run("ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", port, "netns", l.hub)
	l.run("ip", "-n", l.hub, "link", "set", "dev", port, "master", "br0", "up")
	l.run("ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
	l.sysctl(ns, "eth0")
	l.run("ip", "-n", ns, "link", "set", "eth0", "up")
}

// start runs n's command line inside its namespace.
func (l *netLab) start(n *node) {
	t := l.t
	t.Helper()
	l.mu.Lock()
	ns := l.ns[n]
	l.mu.Unlock()
	if ns == "" {
		t.Fatalf("%s has no namespace", n.name)
	}
	n.startWith(t, []string{"ip", "netns", "exec", ns})
}

// block drops all traffic between a and b, both ways.
func (l *netLab) block(a, b *node) {
	l.t.Helper()
	l.route("add", a, b)
	l.route("add", b, a)
}

// unblock restores traffic between a and b.
func (l *netLab) unblock(a, b *node) {
	l.t.Helper()
	l.route("del", a, b)
	l.route("del", b, a)
}

// route adds or deletes the blackhole route to to's address in from's
// namespace.
func (l *netLab) route(op string, from, to *node) {
	l.t.Helper()
	l.mu.Lock()
	ns, ip := l.ns[from], l.ip[to]
	key := [2]string{ns, ip}
	have := l.blocked[key]
	l.mu.Unlock()
	if (op == "add") == have {
		return
	}
	l.run("ip", "-n", ns, "route", op, "blackhole", ip+"/32")
	l.mu.Lock()
	l.blocked[key] = op == "add"
	l.mu.Unlock()
}

// isolate cuts n off from every other node of c (the test still reaches
// it), and heal undoes every cut.
func (l *netLab) isolate(c *cluster, n *node) {
	l.t.Helper()
	for _, o := range c.others(n) {
		l.block(n, o)
	}
}

func (l *netLab) heal(c *cluster) {
	l.t.Helper()
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a != b {
				l.route("del", a, b)
			}
		}
	}
}

// waitConverged waits until every node is up, agrees on a leader and has
// applied the leader's applied index as of the call.
func waitConverged(t testing.TB, c *cluster, timeout time.Duration) *node {
	t.Helper()
	var leader *node
	waitFor(t, timeout, "an agreed leader", func() error {
		l, err := c.leader()
		leader = l
		return err
	})
	target, err := leader.statusUint("store.fsm_index")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, timeout, "every node to catch up", func() error {
		for _, n := range c.nodes {
			got, err := n.statusUint("store.fsm_index")
			if err != nil {
				return err
			}
			if got < target {
				return fmt.Errorf("%s at %d, want %d", n.name, got, target)
			}
		}
		return nil
	})
	return leader
}
