//go:build linux

package e2e

// Linearizability under faults is checked by "raftlite selftest" (package
// selftest), run here as a user runs it: the built binary starts its own
// three-node cluster, runs writers and back-to-back cross-node reads under
// its nemesis, and checks the history with porcupine. The long version:
//
//	RAFTLITE_LONG=1 RAFTLITE_ARTIFACTS=/tmp/raftlite-artifacts \
//	  go test -run TestSelftest -timeout 30m -v ./e2e/
//
// Every run writes porcupine's HTML visualisation to $RAFTLITE_ARTIFACTS
// (default: a temporary directory of the test, removed afterwards; the path
// is logged). The other tests here check reads on a lagging or cut-off
// follower directly.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/client"
)

const (
	kvKeys = 10
	// opTimeout is the server-side timeout of every operation; the client
	// gives up a little later.
	opTimeout = 2 * time.Second
)

// kvSetup creates table kv with keys 0..kvKeys-1 at value 0 and waits until
// every node holds them.
func kvSetup(t *testing.T, c *cluster) *node {
	t.Helper()
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, "CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL)")
	stmts := make([]any, 0, kvKeys)
	for k := range kvKeys {
		stmts = append(stmts, []any{"INSERT INTO kv(k, v) VALUES(?, 0)", k})
	}
	leader.mustExecute(t, stmts...)
	waitFor(t, waitTimeout, "every node to hold the keys", func() error {
		for _, n := range c.nodes {
			rows, err := n.rows("none", "SELECT COUNT(*) FROM kv")
			if err != nil {
				return err
			}
			if fmt.Sprint(rows[0][0]) != strconv.Itoa(kvKeys) {
				return fmt.Errorf("%s holds %v keys", n.name, rows[0][0])
			}
		}
		return nil
	})
	return leader
}

// kvClient sends single register operations to one node.
type kvClient struct {
	hc *http.Client
}

func newKVClient() *kvClient {
	return &kvClient{hc: &http.Client{
		Timeout:   opTimeout + time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 4},
	}}
}

func (c *kvClient) close() { c.hc.CloseIdleConnections() }

// post sends stmts to path on n and returns the status, the body and the
// transport error.
func (c *kvClient) post(n *node, path string, stmts ...any) (int, []byte, error) {
	body, err := json.Marshal(stmts)
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.hc.Post(n.url(path), "application/json", bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes(), err
}

// writeOutcome is what a client knows about a write it sent.
type writeOutcome int

const (
	writeApplied    writeOutcome = iota
	writeNotApplied              // certainly had no effect
	writeUnknown                 // may or may not have been applied
)

// write runs one write statement and classifies the answer. It returns the
// rows affected and raft index when applied. Only answers that say nothing
// was proposed count as "not applied": a refused connection, 503 "leader
// not found" / "not leader" (codes no_leader, not_leader) and "unavailable".
// Everything else that is not a success (timeouts, lost connections, lost
// leadership, a failed forward) is unknown.
func (c *kvClient) write(n *node, stmt []any) (rowsAffected int64, raftIndex uint64, outcome writeOutcome, detail string) {
	code, raw, err := c.post(n, "/db/execute?raft_index&timeout="+opTimeout.String(), stmt)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			return 0, 0, writeNotApplied, err.Error()
		}
		return 0, 0, writeUnknown, err.Error()
	}
	text := string(bytes.TrimSpace(raw))
	var r struct {
		response
		Code string `json:"code"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return 0, 0, writeUnknown, fmt.Sprintf("HTTP %d: %s", code, text)
	}
	if r.Code == "unavailable" || r.Code == "no_leader" || r.Code == "not_leader" {
		return 0, 0, writeNotApplied, text
	}
	if code != http.StatusOK || r.Error != "" || len(r.Results) != 1 {
		return 0, 0, writeUnknown, fmt.Sprintf("HTTP %d: %s", code, text)
	}
	if e := r.Results[0].Error; e != "" {
		// A statement error: applied without effect. Not expected here.
		return 0, 0, writeNotApplied, "statement error: " + e
	}
	return r.Results[0].RowsAffected, r.RaftIndex, writeApplied, ""
}

// read reads key k on n at level (with extra query parameters, which may
// set a timeout other than opTimeout) and returns its value.
func (c *kvClient) read(n *node, level string, k int, extra string) (int, error) {
	if !strings.Contains(extra, "&timeout=") {
		// The server takes the first of repeated parameters.
		extra += "&timeout=" + opTimeout.String()
	}
	code, raw, err := c.post(n, "/db/query?level="+level+extra, []any{"SELECT v FROM kv WHERE k=?", k})
	if err != nil {
		return 0, err
	}
	if code != http.StatusOK {
		return 0, &httpError{Code: code, Body: string(bytes.TrimSpace(raw))}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var r response
	if err := dec.Decode(&r); err != nil {
		return 0, fmt.Errorf("decode %q: %w", raw, err)
	}
	if r.Error != "" || len(r.Results) != 1 || r.Results[0].Error != "" || len(r.Results[0].Values) != 1 {
		return 0, fmt.Errorf("unexpected answer %s", raw)
	}
	v, err := strconv.Atoi(fmt.Sprint(r.Results[0].Values[0][0]))
	if err != nil {
		return 0, fmt.Errorf("value in %s: %w", raw, err)
	}
	return v, nil
}

// artifactDir is where tests write artifacts: $RAFTLITE_ARTIFACTS, or a
// temporary directory of the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("RAFTLITE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("create artifact directory: %v", err)
		}
		return d
	}
	return t.TempDir()
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// selftestRun is what one "raftlite selftest" run printed and returned.
type selftestRun struct {
	exit    int
	summary map[string]string // its "name: value" lines
	stdout  string
}

// number is the leading integer of a summary value ("12 (reads ...)": 12).
func (r *selftestRun) number(t *testing.T, name string) int {
	t.Helper()
	v, ok := r.summary[name]
	if !ok {
		t.Fatalf("selftest printed no %q line:\n%s", name, r.stdout)
	}
	n, err := strconv.Atoi(strings.Fields(v + " x")[0])
	if err != nil {
		t.Fatalf("selftest %q: %q is not a number", name, v)
	}
	return n
}

// runSelftest runs the built binary's selftest subcommand with args, its
// visualisation in the artifact directory and its cluster in a temporary
// directory, and logs what it printed (and, when it fails, its nodes' log
// tails).
func runSelftest(t *testing.T, args ...string) *selftestRun {
	t.Helper()
	html := filepath.Join(artifactDir(t), unsafeFileChars.ReplaceAllString(t.Name(), "_")+".html")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"selftest", "-html", html, "-dir", dir}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	run := &selftestRun{summary: map[string]string{}, stdout: stdout.String()}
	var exitErr *exec.ExitError
	switch {
	case errors.As(err, &exitErr):
		run.exit = exitErr.ExitCode()
	case err != nil:
		t.Fatalf("run selftest: %v", err)
	}
	t.Logf("raftlite selftest %s: exit %d\n%s%s", strings.Join(args, " "), run.exit, stderr.String(), stdout.String())
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if name, value, ok := strings.Cut(sc.Text(), ": "); ok && !strings.HasPrefix(name, " ") {
			run.summary[name] = value
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			logs, _ := filepath.Glob(filepath.Join(dir, "n*.log"))
			for _, l := range logs {
				n := &node{name: filepath.Base(l), logPath: l}
				t.Logf("---- tail of %s ----\n%s", l, n.logTail(logTailLines))
			}
		}
	})
	return run
}

// TestSelftestLinearizable: the selftest's full nemesis (kill -9 and
// restart, SIGSTOP of the leader, partitions of the leader and of a
// follower, leadership transfer, snapshots every 200 entries) against
// linearizable reads on every node, started back to back on different
// nodes, and writers through every node. Nothing may be stale, duplicated
// or lost.
func TestSelftestLinearizable(t *testing.T) {
	duration := "24s"
	if os.Getenv("RAFTLITE_LONG") != "" {
		duration = "4m"
	}
	run := runSelftest(t, "-duration", duration, "-level", "linearizable")
	if run.exit != 0 {
		t.Fatalf("selftest at level linearizable failed (exit %d): history %s, %s violations, %s stale reads, %s duplicates, %s lost",
			run.exit, run.summary["history"], run.summary["violations"], run.summary["stale reads"],
			run.summary["duplicates"], run.summary["lost"])
	}
	// A pass proves little if the clients or the nemesis did nothing.
	if ops := run.number(t, "ops checked"); ops < 2000 {
		t.Errorf("only %d operations checked", ops)
	}
	for _, fault := range []string{"kill=", "pause=", "partition=", "transfer="} {
		if !strings.Contains(run.summary["faults"], fault) {
			t.Errorf("the nemesis injected no %s fault: %s", strings.TrimSuffix(fault, "="), run.summary["faults"])
		}
	}
}

// TestSelftestFlagsStaleNoneReads: the same checker does fail: reads at
// level none, which a follower serves from its own copy (stale while it is
// cut off or merely a heartbeat behind), right after a read on another
// node, make the selftest report a violation and exit 1.
func TestSelftestFlagsStaleNoneReads(t *testing.T) {
	run := runSelftest(t, "-duration", "8s", "-level", "none", "-nemesis", "partition,pause")
	if run.exit != 1 {
		t.Fatalf("selftest at level none exited %d, want 1 (a violation)", run.exit)
	}
	if v := run.number(t, "violations"); v == 0 || run.summary["history"] != "NOT linearizable" {
		t.Fatalf("selftest at level none: history %q with %d violations; want NOT linearizable", run.summary["history"], v)
	}
	if stale := run.number(t, "stale reads"); stale == 0 {
		t.Errorf("porcupine found a violation but no read older than an earlier one was listed")
	}
	if d, l := run.number(t, "duplicates"), run.number(t, "lost"); d != 0 || l != 0 {
		t.Errorf("level none reads cannot duplicate or lose writes: %d duplicates, %d lost", d, l)
	}
}

// TestLinearizableReadOnPartitionedFollowerFails: a follower cut off from
// the leader serves level=none reads from its stale copy, but refuses
// linearizable reads rather than answer from it; once healed it catches up.
func TestLinearizableReadOnPartitionedFollowerFails(t *testing.T) {
	lab := newNetLab(t)
	c := lab.startProcfileCluster()
	leader := kvSetup(t, c)
	follower := c.others(leader)[0]
	lab.isolate(c, follower)
	defer lab.heal(c)

	kc := newKVClient()
	defer kc.close()
	const key = 3
	for i := 1; i <= 3; i++ {
		if _, _, outcome, detail := kc.write(leader, []any{"INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)", key, i}); outcome != writeApplied {
			t.Fatalf("write %d on the leader: %s", i, detail)
		}
		if v, err := kc.read(follower, "none", key, ""); err != nil || v == i {
			t.Fatalf("level=none read on the partitioned follower: %d, %v; want a stale value (did the partition hold?)", v, err)
		}
	}
	start := time.Now()
	v, err := kc.read(follower, "linearizable", key, "")
	if err == nil {
		t.Fatalf("linearizable read on the partitioned follower answered %d", v)
	}
	t.Logf("linearizable read on the partitioned follower failed after %v: %v", time.Since(start).Round(time.Millisecond), err)

	lab.heal(c)
	waitFor(t, waitTimeout, "the follower to catch up", func() error {
		v, err := kc.read(follower, "none", key, "")
		if err != nil {
			return err
		}
		if v != 3 {
			return fmt.Errorf("holds %d", v)
		}
		return nil
	})
}

// TestReadYourWritesOnLaggingFollower: a client writes on the leader, then
// reads on a follower that lags behind (partitioned from the leader) with
// min_index = the write's raft_index: the read waits and sees its write,
// never older data; without min_index the same read returns stale data.
// Then, without faults, the Go client carries its writes' index to reads on
// followers by itself.
func TestReadYourWritesOnLaggingFollower(t *testing.T) {
	lab := newNetLab(t)
	c := lab.startProcfileCluster()
	leader := kvSetup(t, c)
	follower := c.others(leader)[0]
	kc := newKVClient()
	defer kc.close()
	const key = 4

	lab.isolate(c, follower)
	var last uint64
	for i := 1; i <= 3; i++ {
		_, idx, outcome, detail := kc.write(leader, []any{"INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)", key, i})
		if outcome != writeApplied || idx == 0 {
			t.Fatalf("write %d: %s (raft_index %d)", i, detail, idx)
		}
		last = idx
		// Without min_index: stale (the follower cannot have it).
		if v, err := kc.read(follower, "none", key, ""); err != nil || v == i {
			t.Fatalf("level=none read without min_index on the lagging follower: %d, %v; want a stale value", v, err)
		}
		// With min_index: it waits, and fails when the follower cannot
		// catch up in time, rather than answering with older data.
		v, err := kc.read(follower, "none", key, fmt.Sprintf("&min_index=%d&timeout=300ms", idx))
		var he *httpError
		if err == nil || !errors.As(err, &he) || !strings.Contains(he.Body, "timeout waiting for log index") {
			t.Fatalf("min_index read on the lagging follower: %d, %v; want a timeout error", v, err)
		}
	}

	// A min_index read that is waiting when the partition heals returns the
	// write.
	type answer struct {
		v   int
		err error
	}
	done := make(chan answer, 1)
	start := time.Now()
	go func() {
		// After a partition raft's heartbeats to the follower are backed
		// off (up to 10 s), so catching up may take seconds: a client
		// that waits longer than kc's.
		slow := &kvClient{hc: &http.Client{Timeout: 25 * time.Second}}
		defer slow.close()
		v, err := slow.read(follower, "none", key, fmt.Sprintf("&min_index=%d&timeout=20s", last))
		done <- answer{v, err}
	}()
	time.Sleep(500 * time.Millisecond)
	select {
	case a := <-done:
		t.Fatalf("min_index read answered before the follower could catch up: %d, %v", a.v, a.err)
	default:
	}
	lab.heal(c)
	a := <-done
	if a.err != nil || a.v != 3 {
		t.Fatalf("min_index read after healing: %d, %v; want 3", a.v, a.err)
	}
	t.Logf("min_index read waited %v for the follower to catch up", time.Since(start).Round(time.Millisecond))

	// Without faults: a write on the leader, then at once a read on each
	// follower. With min_index it always sees the write; without, it often
	// does not (followers learn the commit a moment after the leader
	// acknowledges it), which is logged only: it depends on timing.
	leader = waitConverged(t, c, waitTimeout)
	followers := c.others(leader)
	staleWithout := 0
	const rounds = 100
	for i := range rounds {
		v := 1000 + i
		_, idx, outcome, detail := kc.write(leader, []any{"INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)", key, v})
		if outcome != writeApplied {
			t.Fatalf("write: %s", detail)
		}
		f := followers[i%len(followers)]
		if got, err := kc.read(f, "none", key, ""); err == nil && got != v {
			staleWithout++
		}
		got, err := kc.read(f, "none", key, fmt.Sprintf("&min_index=%d", idx))
		if err != nil || got != v {
			t.Fatalf("%s: min_index read after write %d: %d, %v", f.name, v, got, err)
		}
	}
	t.Logf("without min_index, %d of %d immediate follower reads missed the write just acknowledged", staleWithout, rounds)

	// The Go client: one session writes (through a follower, which forwards
	// to the leader) and reads on the other follower at level none; index
	// tracking makes every read see the session's writes.
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	writer, err := client.New(client.Config{Nodes: []string{followers[0].url("")}})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	reader, err := client.New(client.Config{Nodes: []string{followers[1].url("")}})
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	for i := range 20 {
		v := 5000 + i
		if _, err := writer.Execute(ctx, client.SQL("INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)", key, v)); err != nil {
			t.Fatalf("client write: %v", err)
		}
		for _, cl := range []*client.Client{writer, reader.With(client.WithMinIndex(writer.LastIndex()))} {
			resp, err := cl.With(client.WithLevel(api.LevelNone)).Query(ctx, client.SQL("SELECT v FROM kv WHERE k=?", key))
			if err != nil {
				t.Fatalf("client read: %v", err)
			}
			if got := fmt.Sprint(resp.Results[0].Values[0][0]); got != strconv.Itoa(v) {
				t.Fatalf("client read after write %d: %s", v, got)
			}
		}
	}
}
