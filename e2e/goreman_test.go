package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goreman runs the real goreman (the Go tool pinned in go.mod) on one
// Procfile, with its control port on loopback (GOREMAN_RPC_ADDR=127.0.0.1,
// as the README says to run it) and a free port of its own, so that two
// goremans (Procfile and Procfile.learner) can run side by side.
type goreman struct {
	t    *testing.T
	path string
	env  []string
}

// newGoreman writes entries as the Procfile path.
func newGoreman(t *testing.T, path string, entries []procEntry) *goreman {
	t.Helper()
	var procfile strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&procfile, "%s: %s %s\n", e.name, binary, strings.Join(e.args, " "))
	}
	if err := os.WriteFile(path, []byte(procfile.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOREMAN_RPC_ADDR=127.0.0.1", fmt.Sprintf("GOREMAN_RPC_PORT=%d", freePorts(t, 1)[0]))
	return &goreman{t: t, path: path, env: env}
}

// command is `go tool goreman -f PATH args...`.
func (g *goreman) command(args ...string) *exec.Cmd {
	cmd := exec.Command("go", append([]string{"tool", "goreman", "-f", g.path}, args...)...)
	cmd.Dir = ".." // the module that pins goreman
	cmd.Env = g.env
	return cmd
}

// start runs `goreman start` in the background until the test ends, its
// output in a log printed if the test fails.
func (g *goreman) start() {
	t := g.t
	t.Helper()
	logf, err := os.Create(g.path + ".log")
	if err != nil {
		t.Fatal(err)
	}
	start := g.command("start")
	start.Stdout, start.Stderr = logf, logf
	start.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := start.Start(); err != nil {
		t.Fatalf("goreman start: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- start.Wait() }()
	t.Cleanup(func() {
		// goreman stops its processes on SIGINT; kill it if it does not.
		_ = start.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = start.Process.Kill()
			<-exited
		}
		logf.Close()
		if t.Failed() {
			raw, _ := os.ReadFile(logf.Name())
			t.Logf("---- goreman -f %s output ----\n%s", filepath.Base(g.path), raw)
		}
	})
}

// run is `goreman run args...`, through the control port.
func (g *goreman) run(args ...string) {
	g.t.Helper()
	if out, err := g.command(append([]string{"run"}, args...)...).CombinedOutput(); err != nil {
		g.t.Fatalf("goreman run %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// waitGoremanLeader waits for a leader among nodes, which goreman owns (the
// harness cannot tell which are running: it asks them). The first `go tool
// goreman` may compile goreman: it allows for that.
func waitGoremanLeader(t *testing.T, nodes []*node) *node {
	t.Helper()
	var leader *node
	waitFor(t, 2*waitTimeout, "a leader", func() error {
		for _, n := range nodes {
			if st, err := n.status(); err == nil && statusString(st, "store.raft.state") == "Leader" {
				leader = n
				return nil
			}
		}
		return errors.New("no node is leader yet")
	})
	waitReady(t, nodes...)
	return leader
}

// TestGoremanStopStart runs the README's quick start with the real goreman:
// `goreman start` on the repository's Procfile (rewritten onto free ports
// and temporary data directories), then `goreman run stop node2`, writes
// while it is down, `goreman run start node2`, and expects node2 to catch
// up.
func TestGoremanStopStart(t *testing.T) {
	c := newCluster(t)
	entries := rewriteEntries(t, readProcfile(t), filepath.Join(c.dir, "data"))
	for _, e := range entries {
		c.add(e.name, e.args)
	}
	g := newGoreman(t, filepath.Join(c.dir, "Procfile"), entries)
	g.start()
	leader := waitGoremanLeader(t, c.nodes)
	node2 := c.nodes[1]
	seedRows(t, c, leader, 5)

	g.run("stop", "node2")
	waitFor(t, waitTimeout, "node2 to stop", func() error {
		if _, err := node2.status(); err == nil {
			return fmt.Errorf("node2 still answers")
		}
		return nil
	})
	up := c.others(node2)
	for i := 6; i <= 10; i++ {
		if err := insertRow(up, i, waitTimeout); err != nil {
			t.Fatal(err)
		}
	}
	g.run("start", "node2")
	waitIdentical(t, 10, c.nodes...)
}
