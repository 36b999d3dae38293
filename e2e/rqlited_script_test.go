//go:build linux

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRqlitedScript runs testdata/rqlited-cluster.sh, a script written for
// rqlited that starts a three-node cluster with many of rqlited's flags,
// with `raftlite serve` in rqlited's place. The cluster must form and
// replicate; each flag raftlite ignores must be named in one WARN line of
// each node's log; the flags it implements must show (-on-disk-path's
// database file, -http-allow-origin's header); and the rqlite-shaped
// diagnostics (/readyz's [+]db ok, /status store.snapshot_store,
// /debug/vars store.* and cluster.*) must be there.
func TestRqlitedScript(t *testing.T) {
	data := t.TempDir()
	ports := freePorts(t, 6)
	script := exec.Command("sh", filepath.Join("testdata", "rqlited-cluster.sh"))
	script.Env = append(os.Environ(), "RQLITED="+binary+" serve", "DATA="+data, "HOST=127.0.0.1")
	for i, name := range []string{"HTTP1", "RAFT1", "HTTP2", "RAFT2", "HTTP3", "RAFT3"} {
		script.Env = append(script.Env, fmt.Sprintf("%s=%d", name, ports[i]))
	}
	out, err := script.CombinedOutput()
	t.Cleanup(func() { stopScriptNodes(t, filepath.Join(data, "pids")) })
	if err != nil {
		t.Fatalf("rqlited-cluster.sh: %v\n%s", err, out)
	}

	hc := &http.Client{Timeout: 10 * time.Second}
	var nodes []*node
	for i, name := range []string{"node1", "node2", "node3"} {
		n := newNode(name, []string{"serve", "-node-id", name,
			"-http-addr", fmt.Sprintf("127.0.0.1:%d", ports[2*i]), "-raft-addr", fmt.Sprintf("127.0.0.1:%d", ports[2*i+1]),
			filepath.Join(data, name)}, data, hc)
		nodes = append(nodes, n)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range nodes {
				t.Logf("---- tail of %s ----\n%s", n.name, n.logTail(logTailLines))
			}
		}
	})
	waitReady(t, nodes...)

	nodes[1].mustExecute(t, "CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT)", "INSERT INTO s(v) VALUES('from a script for rqlited')")
	waitSameAnswer(t, "SELECT v FROM s", nodes...)

	ignored := []string{"cluster-connect-timeout", "compress-snap-transport", "db-max-ro-conns", "auto-optimize-int", "raft-remove-shutdown"}
	for _, n := range nodes {
		log, err := os.ReadFile(n.logPath)
		if err != nil {
			t.Fatal(err)
		}
		for _, flag := range ignored {
			if c := strings.Count(string(log), "level=WARN msg=\"flag -"+flag+" ignored: "); c != 1 {
				t.Errorf("%s: %d WARN lines for -%s, want 1", n.name, c, flag)
			}
		}
		if _, err := os.Stat(filepath.Join(data, n.name+"-sqlite", "db.sqlite")); err != nil {
			t.Errorf("%s: -on-disk-path: %v", n.name, err)
		}
		checkRqliteDiagnostics(t, n)
	}
}

// checkRqliteDiagnostics checks the parts of /readyz, /status and
// /debug/vars that rqlite's tools read, and -http-allow-origin's header.
func checkRqliteDiagnostics(t *testing.T, n *node) {
	t.Helper()
	resp, err := n.hc.Get(n.url("/readyz"))
	if err != nil {
		t.Fatalf("%s /readyz: %v", n.name, err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("%s: Access-Control-Allow-Origin %q, want * (-http-allow-origin)", n.name, got)
	}
	if _, body, err := n.call("GET", "/readyz", nil, ""); err != nil || !strings.Contains(string(body), "[+]store ok\n[+]db ok") {
		t.Errorf("%s /readyz: %q %v, want [+]db ok after [+]store ok", n.name, body, err)
	}
	st, err := n.status()
	if err != nil {
		t.Fatalf("%s /status: %v", n.name, err)
	}
	if statusString(st, "store.snapshot_store.dir") == "" {
		t.Errorf("%s /status lacks store.snapshot_store.dir", n.name)
	}
	var vars map[string]map[string]json.RawMessage
	if err := n.doJSON("GET", "/debug/vars?key=store", nil, &vars); err != nil {
		t.Fatalf("%s /debug/vars: %v", n.name, err)
	}
	for _, key := range []string{"num_snapshots", "num_restores"} {
		if _, ok := vars["store"][key]; !ok {
			t.Errorf("%s /debug/vars lacks store.%s", n.name, key)
		}
	}
	if err := n.doJSON("GET", "/debug/vars?key=cluster", nil, &vars); err != nil || vars["cluster"]["num_client_force_new_conn"] == nil {
		t.Errorf("%s /debug/vars lacks cluster.num_client_force_new_conn (%v)", n.name, err)
	}
}

// stopScriptNodes stops the processes the script started, by the PIDs it
// recorded.
func stopScriptNodes(t *testing.T, pidFile string) {
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(raw)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			t.Errorf("pid file %s: %q", pidFile, f)
			continue
		}
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}
