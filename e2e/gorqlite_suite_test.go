//go:build linux

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestGorqliteSuite runs gorqlite's own, unmodified test suite (every
// package of the module go.mod pins, from the module cache) against a
// single raftlite node and against a three-node Procfile cluster, the way
// gorqlite's README runs it against rqlited: GORQLITE_TEST_URL names the
// node. Every test must pass and none may skip.
//
// The integration package does not talk to a node: it serves canned rqlite
// answers from a mock server on the fixed port 14001, which another
// process on a shared machine may hold. It runs in a network namespace of
// its own (unshare -n), where that port is always free.
func TestGorqliteSuite(t *testing.T) {
	module := copyGorqliteModule(t)
	t.Run("single", func(t *testing.T) {
		c := newCluster(t)
		n := c.addLoneNode("single")
		n.start(t)
		waitReady(t, n)
		runGorqlite(t, module, "http://"+n.httpAddr+"/")
	})
	t.Run("cluster", func(t *testing.T) {
		c := startProcfileCluster(t)
		leader := c.waitLeader()
		waitReady(t, c.nodes...)
		// Through a follower: gorqlite discovers the leader from /nodes.
		runGorqlite(t, module, "http://"+c.others(leader)[0].httpAddr+"/")
	})
	t.Run("integration", func(t *testing.T) {
		if _, err := exec.LookPath("unshare"); err != nil {
			t.Fatalf("unshare is needed to give gorqlite's mock server its fixed port: %v", err)
		}
		bin := filepath.Join(t.TempDir(), "integration.test")
		if out, err := goTest(module, nil, "test", "-c", "-o", bin, "./integration"); err != nil {
			t.Fatalf("build gorqlite's integration tests: %v\n%s", err, out)
		}
		cmd := exec.Command("unshare", "-n", "sh", "-c", `ip link set lo up && exec "$0" -test.count=1 -test.v`, bin)
		cmd.Dir = filepath.Join(module, "integration")
		out, err := cmd.CombinedOutput()
		checkGoTestOutput(t, string(out), err)
	})
}

// copyGorqliteModule copies the gorqlite module go.mod requires out of the
// read-only module cache into a temporary directory.
func copyGorqliteModule(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/rqlite/gorqlite").Output()
	if err != nil {
		t.Fatalf("locate gorqlite in the module cache: %v", err)
	}
	dst := filepath.Join(t.TempDir(), "gorqlite")
	if out, err := exec.Command("cp", "-r", strings.TrimSpace(string(out)), dst).CombinedOutput(); err != nil {
		t.Fatalf("copy gorqlite: %v\n%s", err, out)
	}
	if out, err := exec.Command("chmod", "-R", "u+w", dst).CombinedOutput(); err != nil {
		t.Fatalf("chmod gorqlite copy: %v\n%s", err, out)
	}
	return dst
}

// runGorqlite runs the node-facing packages of gorqlite against url.
func runGorqlite(t *testing.T, module, url string) {
	t.Helper()
	out, err := goTest(module, []string{"GORQLITE_TEST_URL=" + url}, "test", "-count=1", "-v", ".", "./stdlib")
	checkGoTestOutput(t, out, err)
}

// goTest runs the go command in the copied module, outside this
// repository's module and workspace.
func goTest(module string, env []string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = module
	cmd.Env = append(os.Environ(), append([]string{"GOWORK=off", "GOFLAGS=-mod=mod", "GOTOOLCHAIN=local"}, env...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var (
	goTestPass = regexp.MustCompile(`(?m)^\s*--- PASS: `)
	goTestFail = regexp.MustCompile(`(?m)^\s*--- FAIL: .*$`)
	goTestSkip = regexp.MustCompile(`(?m)^\s*--- SKIP: .*$`)
)

// checkGoTestOutput fails t unless the verbose go test output shows passes
// only: no failure, no skip, a zero exit.
func checkGoTestOutput(t *testing.T, out string, err error) {
	t.Helper()
	fails, skips := goTestFail.FindAllString(out, -1), goTestSkip.FindAllString(out, -1)
	passes := len(goTestPass.FindAllString(out, -1))
	t.Logf("gorqlite: %d passed, %d failed, %d skipped", passes, len(fails), len(skips))
	if err != nil || len(fails) > 0 || len(skips) > 0 || passes == 0 {
		t.Errorf("gorqlite's suite did not pass cleanly (%v):\n%s\n%s\n-- output --\n%s",
			err, strings.Join(fails, "\n"), strings.Join(skips, "\n"), out)
	}
}
