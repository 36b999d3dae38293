//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestShellProtocol drives raftlite's shell through the dot-commands of
// rqlite's CLI, on real nodes, and checks each both by its output and by
// the endpoint it used (counted by the node's /metrics), which is the
// endpoint rqlite's CLI uses for it:
//
//	.tables, .schema, .indexes   /db/query (reading sqlite_master)
//	.nodes                       /nodes
//	.backup FILE                 /db/backup (an SQLite file)
//	.dump FILE                   /db/backup?fmt=sql
//	.restore FILE                /db/load (an SQL dump or an SQLite file)
//
// (.boot, .snapshot and .reap are tested with their endpoints elsewhere.)
func TestShellProtocol(t *testing.T) {
	c := newCluster(t)
	src := c.addLoneNode("source")
	dst := c.addLoneNode("target")
	for _, n := range c.nodes {
		n.start(t)
	}
	waitReady(t, c.nodes...)
	dir := t.TempDir()
	backup, dump := filepath.Join(dir, "backup.sqlite"), filepath.Join(dir, "dump.sql")

	runShell(t, src, "CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT); CREATE INDEX a_v ON a(v); INSERT INTO a(v) VALUES('x'), ('y');")
	for _, step := range []struct {
		on       *node
		command  string
		endpoint string // the endpoint label of raftlite_http_requests_total
		check    func(out string) error
	}{
		{src, ".tables", "query", outputIs("a\n")},
		{src, ".schema", "query", outputHas("CREATE TABLE a (id INTEGER PRIMARY KEY, v TEXT);\nCREATE INDEX a_v ON a(v);")},
		{src, ".indexes", "query", outputIs("a_v\n")},
		{src, ".nodes", "nodes", outputHas(src.id)},
		{src, ".backup " + backup, "backup", fileStartsWith(backup, "SQLite format 3\x00")},
		{src, ".dump " + dump, "backup", fileStartsWith(dump, "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE a")},
		// The dump into an empty node: its statements run there.
		{dst, ".restore " + dump, "load", nil},
		{dst, "SELECT v FROM a ORDER BY id", "query", outputHas("x")},
		{dst, "INSERT INTO a(v) VALUES('only on target')", "request", nil},
		// The SQLite file replaces the target's database.
		{dst, ".restore " + backup, "load", nil},
		{dst, "SELECT COUNT(*) FROM a", "query", outputHas("2")},
		{dst, ".indexes", "query", outputIs("a_v\n")},
	} {
		before := endpointRequests(t, step.on, step.endpoint)
		out := runShell(t, step.on, step.command)
		if after := endpointRequests(t, step.on, step.endpoint); after <= before {
			t.Errorf("%s on %s: no request to the %s endpoint (%v before, %v after)", step.command, step.on.name, step.endpoint, before, after)
		}
		if step.check != nil {
			if err := step.check(out); err != nil {
				t.Errorf("%s on %s: %v\noutput:\n%s", step.command, step.on.name, err, out)
			}
		}
	}
}

// addSingle registers (not started) a node that bootstraps a cluster of
// its own, on fresh ports.
func (c *cluster) addLoneNode(name string) *node {
	ports := freePorts(c.t, 2)
	return c.add(name, []string{"serve", "-node-id", name,
		"-http-addr", fmt.Sprintf("127.0.0.1:%d", ports[0]), "-raft-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		filepath.Join(c.dir, "data", name)})
}

// runShell runs script (statements and dot-commands) with "raftlite shell
// -c" against n and returns its output; a failure fails the test.
func runShell(t *testing.T, n *node, script string) string {
	t.Helper()
	cmd := exec.Command(binary, "shell", "-H", n.httpAddr, "-mode", "csv", "-c", script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("raftlite shell -c %q: %v\n%s%s", script, err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

var requestsSeries = regexp.MustCompile(`^raftlite_http_requests_total\{code="\d+",endpoint="([a-z_]+)"\} (\S+)$`)

// endpointRequests is how many requests n has answered on endpoint, from
// its /metrics.
func endpointRequests(t *testing.T, n *node, endpoint string) float64 {
	t.Helper()
	resp, err := n.hc.Get(n.url("/metrics"))
	if err != nil {
		t.Fatalf("%s /metrics: %v", n.name, err)
	}
	defer resp.Body.Close()
	var total float64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if m := requestsSeries.FindStringSubmatch(sc.Text()); m != nil && m[1] == endpoint {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				t.Fatalf("%s /metrics: %q: %v", n.name, sc.Text(), err)
			}
			total += v
		}
	}
	return total
}

func outputIs(want string) func(string) error {
	return func(out string) error {
		if out != want {
			return fmt.Errorf("output %q, want %q", out, want)
		}
		return nil
	}
}

func outputHas(want string) func(string) error {
	return func(out string) error {
		if !strings.Contains(out, want) {
			return fmt.Errorf("output lacks %q", want)
		}
		return nil
	}
}

// fileStarts checks that the command wrote path, starting with prefix.
func fileStartsWith(path, prefix string) func(string) error {
	return func(string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(b, []byte(prefix)) {
			return fmt.Errorf("%s starts %q, want %q", path, b[:min(len(b), len(prefix))], prefix)
		}
		return nil
	}
}
