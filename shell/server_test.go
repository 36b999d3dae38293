package shell

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/client"
)

// The tests run the real raftlite binary, built once from this module,
// with real nodes on loopback ports.

var (
	buildOnce sync.Once
	buildDir  string
	binPath   string
	buildErr  error

	sharedOnce sync.Once
	shared     *testCluster
	sharedErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// raftliteBinary builds the raftlite command once per test run, or uses
// the one $RAFTLITE_TEST_BIN names.
func raftliteBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		if bin := os.Getenv("RAFTLITE_TEST_BIN"); bin != "" {
			binPath = bin
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "raftlite-shell-test-")
		if buildErr != nil {
			return
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		binPath = filepath.Join(buildDir, "raftlite")
		cmd := exec.Command(goTool, "build", "-o", binPath, ".")
		cmd.Dir = ".."
		// As the release is built (and CI's bin/raftlite, whose build
		// cache this shares).
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("building raftlite: %v", buildErr)
	}
	return binPath
}

// testNode is one raftlite serve process.
type testNode struct {
	id       string
	httpAddr string // host:port
	raftAddr string
	dir      string
	cmd      *exec.Cmd
	logPath  string
	exited   chan struct{}
}

func (n *testNode) url() string { return "http://" + n.httpAddr }

// kill stops the node at once, as a crash would.
func (n *testNode) kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Kill()
	<-n.exited
}

func (n *testNode) alive() bool {
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// testCluster is a set of nodes started together.
type testCluster struct {
	nodes []*testNode
	dir   string
	owned bool // dir is removed by stop
}

// freePorts reserves n distinct loopback ports.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// startCluster starts size nodes with ids 1..size in dir, with extra flags;
// with more than one node they bootstrap together (-bootstrap-expect).
func startCluster(bin, dir string, size int, extra ...string) (*testCluster, error) {
	ports, err := freePorts(2 * size)
	if err != nil {
		return nil, err
	}
	c := &testCluster{dir: dir}
	var raftAddrs []string
	for i := 0; i < size; i++ {
		n := &testNode{
			id:       strconv.Itoa(i + 1),
			httpAddr: fmt.Sprintf("127.0.0.1:%d", ports[2*i]),
			raftAddr: fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			dir:      filepath.Join(dir, "node"+strconv.Itoa(i+1)),
		}
		c.nodes = append(c.nodes, n)
		raftAddrs = append(raftAddrs, n.raftAddr)
	}
	for _, n := range c.nodes {
		args := []string{"serve", "-node-id", n.id, "-http-addr", n.httpAddr, "-raft-addr", n.raftAddr, "-log-level", "warn"}
		if size > 1 {
			args = append(args, "-bootstrap-expect", strconv.Itoa(size), "-join", strings.Join(raftAddrs, ","))
		}
		args = append(args, extra...)
		args = append(args, n.dir)
		n.logPath = n.dir + ".log"
		logf, err := os.Create(n.logPath)
		if err != nil {
			c.stop()
			return nil, err
		}
		n.cmd = exec.Command(bin, args...)
		n.cmd.Stdout, n.cmd.Stderr = logf, logf
		if err := n.cmd.Start(); err != nil {
			logf.Close()
			c.stop()
			return nil, err
		}
		n.exited = make(chan struct{})
		go func(n *testNode, logf *os.File) {
			n.cmd.Wait()
			logf.Close()
			close(n.exited)
		}(n, logf)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range c.nodes {
		if err := waitReady(n, deadline); err != nil {
			logs, _ := os.ReadFile(n.logPath)
			c.stop()
			return nil, fmt.Errorf("node %s: %v\n%s", n.id, err, logs)
		}
	}
	return c, nil
}

// waitReady polls /readyz until the node is ready (it knows a leader).
func waitReady(n *testNode, deadline time.Time) error {
	for {
		if !n.alive() {
			return fmt.Errorf("exited before becoming ready")
		}
		resp, err := http.Get(n.url() + "/readyz")
		if err == nil {
			resp.Body.Close()
			// 401: the node is up and wants credentials.
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready in time (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *testCluster) stop() {
	for _, n := range c.nodes {
		n.kill()
	}
	if c.owned {
		os.RemoveAll(c.dir)
	}
}

func (c *testCluster) node(name string) *testNode {
	id := strings.TrimPrefix(name, "node")
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	return nil
}

func (c *testCluster) urls() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.url())
	}
	return out
}

// sharedNode is a single-node cluster shared by the tests that need no
// cluster of their own; TestMain stops it.
func sharedNode(t testing.TB) *testCluster {
	t.Helper()
	bin := raftliteBinary(t)
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "raftlite-shell-node-")
		if err != nil {
			sharedErr = err
			return
		}
		shared, sharedErr = startCluster(bin, dir, 1)
		if shared != nil {
			shared.owned = true
		} else {
			os.RemoveAll(dir)
		}
	})
	if sharedErr != nil {
		t.Fatalf("starting the shared node: %v", sharedErr)
	}
	return shared
}

// newCluster starts a cluster for one test, stopped when it ends.
func newCluster(t *testing.T, size int, extra ...string) *testCluster {
	t.Helper()
	c, err := startCluster(raftliteBinary(t), t.TempDir(), size, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.stop)
	return c
}

// resetDatabase drops every user table, view, index and trigger.
func resetDatabase(t testing.TB, c *testCluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(client.Config{Nodes: c.urls()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	resp, err := cl.Query(ctx, client.SQL(`SELECT type, name FROM sqlite_master WHERE `+hideInternal+
		` AND type IN ('table','view') ORDER BY type = 'table'`))
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range resp.Results[0].Values {
		kind := strings.ToUpper(row[0].(string))
		name := strings.ReplaceAll(row[1].(string), `"`, `""`)
		r, err := cl.Execute(ctx, client.SQL(fmt.Sprintf(`DROP %s IF EXISTS "%s"`, kind, name)))
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			t.Fatalf("resetting the database: %v", err)
		}
	}
}

// testClient is a client of the cluster, closed when the test ends.
func testClient(t testing.TB, c *testCluster) *client.Client {
	t.Helper()
	cl, err := client.New(client.Config{Nodes: c.urls()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// leaderOf asks the cluster which node leads.
func leaderOf(t testing.TB, c *testCluster) string {
	t.Helper()
	cl := testClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := cl.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return n.ID
}

// makeLeader moves leadership to the node with the given id.
func makeLeader(t testing.TB, c *testCluster, id string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for leaderOf(t, c) != id {
		if time.Now().After(deadline) {
			t.Fatalf("node %s did not become the leader", id)
		}
		cl, err := client.New(client.Config{Nodes: c.urls()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cl.StepDown(ctx, id)
		cancel()
		cl.Close()
		if err != nil {
			t.Logf("step down to %s: %v", id, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
