//go:build linux

package e2e

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// firstAnswerWithin is how soon after a restarted node's HTTP port accepts
// connections its /readyz and /status must answer.
const firstAnswerWithin = time.Second

// TestRestartAnswersWhileStarting restarts a follower whose log holds
// 150 MB that no snapshot covers (size snapshots are off), read from the
// disk rather than the page cache: raft reads all of it before the node can
// serve. /readyz and /status must answer at once anyway, saying that the
// node is not ready and why (or that it is ready), and the node must then
// become ready.
func TestRestartAnswersWhileStarting(t *testing.T) {
	const entries = 150
	c := startProcfileCluster(t, "raft-snap-log-size", "-1", "raft-snap", "1000000")
	c.waitLeader()
	waitReady(t, c.nodes...)
	writeLargeEntries(t, c, entries)
	f := c.others(c.waitLeader())[0]

	r := restartCold(t, f)
	if wait := r.answered - r.listening; wait > firstAnswerWithin {
		t.Fatalf("%s: /readyz first answered %v after the port opened, want within %v", f.name, wait, firstAnswerWithin)
	}
	if r.firstStatus != http.StatusOK && r.firstStatus != http.StatusServiceUnavailable {
		t.Fatalf("%s: first /readyz answered %d: %s", f.name, r.firstStatus, r.firstBody)
	}
	if r.firstStatus == http.StatusServiceUnavailable && notReadyReason(r.firstBody) == "" {
		t.Errorf("%s: first /readyz answered 503 without a reason: %s", f.name, r.firstBody)
	}
	code, body, err := callWithin(f, "/status")
	switch {
	case err != nil:
		t.Errorf("%s: /status did not answer within %v of the start: %v", f.name, firstAnswerWithin, err)
	case code == http.StatusServiceUnavailable && !json.Valid(body):
		t.Errorf("%s: /status answered 503 with a body that is not JSON: %s", f.name, body)
	case code != http.StatusOK && code != http.StatusServiceUnavailable:
		t.Errorf("%s: /status answered %d: %s", f.name, code, body)
	}
	t.Logf("%s: port open %v after the start, first /readyz %d (%q) %v after, ready %v after; phases seen: %q",
		f.name, r.listening, r.firstStatus, notReadyReason(r.firstBody), r.answered, r.ready, r.phases)
	if m, _ := f.findInLog(r.logFrom, scannedLine); m == nil {
		t.Errorf("%s: the restart did not log its scan of the raft log", f.name)
	} else if b, _ := strconv.Atoi(m[1]); b < entries<<20*9/10 {
		t.Errorf("%s: the restart scanned %d bytes of log, want the %d MB written (is the log snapshotted?)", f.name, b, entries)
	}
	waitSameAnswer(t, "SELECT COUNT(*) FROM big", c.nodes...)
}

// scannedLine is the node's log line after its scan of the raft log.
var scannedLine = regexp.MustCompile(`msg="raft log scanned" .*bytes=(\d+)`)

// TestRestartBench is the bench of a restart (run by hand):
//
//	RAFTLITE_RESTART_BENCH=1 go test ./e2e/ -run RestartBench -v -timeout 20m
//
// It writes RAFTLITE_RESTART_MB (default 300) entries of 1 MB each into a
// 3-node cluster with the default settings, kills a follower, evicts its
// Raft log from the page cache and starts it again, and reports the time
// from the process's start to its HTTP port accepting connections, to
// its first /readyz answer and to /readyz 200, and the process's peak
// memory. RAFTLITE_RESTART_RUNS (default 3) restarts.
func TestRestartBench(t *testing.T) {
	if os.Getenv("RAFTLITE_RESTART_BENCH") == "" {
		t.Skip("set RAFTLITE_RESTART_BENCH=1 to run the restart bench")
	}
	mb, _ := strconv.Atoi(cmp.Or(os.Getenv("RAFTLITE_RESTART_MB"), "300"))
	runs, _ := strconv.Atoi(cmp.Or(os.Getenv("RAFTLITE_RESTART_RUNS"), "3"))
	c := startProcfileCluster(t)
	c.waitLeader()
	waitReady(t, c.nodes...)
	start := time.Now()
	writeLargeEntries(t, c, mb)
	t.Logf("wrote %d entries of 1 MB in %v", mb, time.Since(start).Round(time.Millisecond))
	for _, n := range c.nodes {
		t.Logf("%s: heap in use after the writes %d MB", n.name, heapInUse(t, n)>>20)
	}
	f := c.others(c.waitLeader())[0]
	st, err := os.Stat(filepath.Join(f.dataDir(), "raft", "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: raft.db holds %d MB", f.name, st.Size()>>20)
	for i := range runs {
		r := restartCold(t, f)
		t.Logf("run %d: port open %v, first /readyz %v (%d), ready %v, peak RSS %d MB, heap at ready %d MB; phases seen: %q",
			i+1, r.listening, r.answered, r.firstStatus, r.ready, r.peakRSS>>20, r.heapAtReady>>20, r.phases)
	}
}

// writeLargeEntries creates table big and adds n rows of 1 MB each, one
// log entry each (the value is a parameter, so each entry holds it),
// through the current leader, then waits until every node holds them.
func writeLargeEntries(t *testing.T, c *cluster, n int) {
	t.Helper()
	c.waitLeader().mustExecute(t, "CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
	payload := strings.Repeat("x", 1<<20)
	for i := range n {
		// Idempotent, so that a write whose outcome a leader change left
		// unknown can be sent again.
		waitFor(t, waitTimeout, fmt.Sprintf("large row %d written", i), func() error {
			_, err := c.waitLeader().sql("/db/execute", []any{"INSERT OR REPLACE INTO big(id, v) VALUES(?, ?)", i, payload})
			return err
		})
	}
	waitSameAnswer(t, "SELECT COUNT(*) FROM big", c.nodes...)
}

// restart is what restartCold measured, each time from the process's start.
type restart struct {
	listening, answered, ready time.Duration
	firstStatus                int
	firstBody                  []byte
	phases                     []string // the "phase" of 503 answers, in order
	peakRSS                    int64    // bytes
	heapAtReady                int64    // bytes of Go heap in use once ready
	logFrom                    int64    // the node's log offset at the restart
}

// restartCold kills n, evicts its Raft log from the page cache (so the
// restart reads it from the disk, as after a reboot), starts it again and
// measures when its HTTP port opens, when /readyz first answers and when
// it is ready.
func restartCold(t *testing.T, n *node) restart {
	t.Helper()
	n.kill(t)
	evictFromPageCache(t, filepath.Join(n.dataDir(), "raft", "raft.db"))
	r := restart{logFrom: n.logSize()}
	n.start(t)
	began := time.Now()
	waitFor(t, waitTimeout, n.name+" to accept connections", func() error {
		conn, err := net.DialTimeout("tcp", n.httpAddr, time.Second)
		if err == nil {
			conn.Close()
		}
		return err
	})
	r.listening = time.Since(began)
	waitFor(t, waitTimeout, n.name+" to answer /readyz", func() error {
		code, body, err := n.call("GET", "/readyz", nil, "")
		r.firstStatus, r.firstBody = code, body
		return err
	})
	r.answered = time.Since(began)
	waitFor(t, waitTimeout, n.name+" ready after its restart", func() error {
		code, body, err := n.call("GET", "/readyz", nil, "")
		if err != nil {
			return err
		}
		if p := startingPhase(body); p != "" && (len(r.phases) == 0 || r.phases[len(r.phases)-1] != p) {
			r.phases = append(r.phases, p)
		}
		if code != http.StatusOK {
			return &httpError{Code: code, Body: string(bytes.TrimSpace(body))}
		}
		return nil
	})
	r.ready = time.Since(began)
	r.peakRSS = peakRSS(n)
	r.heapAtReady = heapInUse(t, n)
	return r
}

// heapInUse is n's Go heap in use, in bytes (garbage not yet collected
// included).
func heapInUse(t *testing.T, n *node) int64 {
	t.Helper()
	var vars struct{ Memstats struct{ HeapInuse int64 } }
	if err := n.doJSON("GET", "/debug/vars", nil, &vars); err != nil {
		t.Fatalf("%s: /debug/vars: %v", n.name, err)
	}
	return vars.Memstats.HeapInuse
}

// callWithin GETs path from n, allowing firstAnswerWithin for the answer.
func callWithin(n *node, path string) (int, []byte, error) {
	quick := &node{httpAddr: n.httpAddr, hc: &http.Client{Timeout: firstAnswerWithin}}
	return quick.call("GET", path, nil, "")
}

// notReadyReason is the reason a /readyz body gives for not being ready:
// the error of a starting node's JSON answer, or the text answer's lines.
func notReadyReason(body []byte) string {
	var j struct{ Error, Code string }
	if json.Unmarshal(body, &j) == nil {
		return strings.TrimSpace(j.Code + ": " + j.Error)
	}
	return strings.TrimSpace(string(body))
}

// startingPhase is the phase of a starting node's JSON answer, or "".
func startingPhase(body []byte) string {
	var j struct {
		Starting struct{ Phase string }
	}
	_ = json.Unmarshal(body, &j)
	return j.Starting.Phase
}

// evictFromPageCache writes path out and drops it from the page cache.
func evictFromPageCache(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		t.Fatal(err)
	}
}

// peakRSS is the running process's peak resident memory (VmHWM), 0 if
// unknown.
func peakRSS(n *node) int64 {
	n.mu.Lock()
	pid := n.cmd.Process.Pid
	n.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
