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

// TestGoremanStopStart runs the README's quick start with the real goreman
// (the pinned Go tool): `goreman start` on the repository's Procfile
// (rewritten onto free ports and temporary data directories), then
// `goreman run stop node2`, writes while it is down, `goreman run start
// node2`, and expects node2 to catch up. The control port stays on loopback
// (GOREMAN_RPC_ADDR=127.0.0.1), as the README says to run it.
func TestGoremanStopStart(t *testing.T) {
	c := newCluster(t)
	var procfile strings.Builder
	for _, e := range rewriteEntries(t, readProcfile(t), filepath.Join(c.dir, "data")) {
		c.add(e.name, e.args)
		fmt.Fprintf(&procfile, "%s: %s %s\n", e.name, binary, strings.Join(e.args, " "))
	}
	path := filepath.Join(c.dir, "Procfile")
	if err := os.WriteFile(path, []byte(procfile.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "GOREMAN_RPC_ADDR=127.0.0.1", fmt.Sprintf("GOREMAN_RPC_PORT=%d", freePorts(t, 1)[0]))
	goreman := func(args ...string) *exec.Cmd {
		cmd := exec.Command("go", append([]string{"tool", "goreman", "-f", path}, args...)...)
		cmd.Dir = ".." // the module that pins goreman
		cmd.Env = env
		return cmd
	}

	logf, err := os.Create(filepath.Join(c.dir, "goreman.log"))
	if err != nil {
		t.Fatal(err)
	}
	start := goreman("start")
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
			t.Logf("---- goreman output ----\n%s", raw)
		}
	})

	// goreman owns the processes, so the harness cannot tell which are
	// running: ask the nodes.
	var leader *node
	// The first `go tool goreman` may compile goreman: allow for it.
	waitFor(t, 2*waitTimeout, "a leader", func() error {
		for _, n := range c.nodes {
			if st, err := n.status(); err == nil && statusString(st, "store.raft.state") == "Leader" {
				leader = n
				return nil
			}
		}
		return errors.New("no node is leader yet")
	})
	waitReady(t, c.nodes...)
	node2 := c.nodes[1]
	seedRows(t, c, leader, 5)

	run := func(args ...string) {
		t.Helper()
		if out, err := goreman(append([]string{"run"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("goreman run %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("stop", "node2")
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
	run("start", "node2")
	waitIdentical(t, 10, c.nodes...)
}
