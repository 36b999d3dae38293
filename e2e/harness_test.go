//go:build linux

// Package e2e runs real raftlite processes, started from the repository's own
// Procfile, and checks them from the outside through the HTTP API.
package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binary is the raftlite executable that TestMain builds once for the package.
var binary string

const (
	pollInterval = 50 * time.Millisecond
	// waitTimeout bounds every "wait until the cluster reaches a state" loop.
	waitTimeout = 30 * time.Second
	// logTailLines is how much of each node's output a failed test prints.
	logTailLines = 200
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipping the end-to-end tests in -short mode (they build bin/raftlite and run real multi-process clusters)")
		os.Exit(0)
	}
	os.Exit(buildAndRun(m))
}

// buildAndRun builds the binary from the repository root into a temporary
// directory, runs the tests and removes the directory again.
func buildAndRun(m *testing.M) int {
	dir, err := os.MkdirTemp("", "raftlite-e2e-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "raftlite")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building raftlite failed: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// ---------------------------------------------------------------------------
// Procfile

// procEntry is one "name: command" line of the Procfile, split into words.
type procEntry struct {
	name string
	args []string
}

// loopbackAddr matches every loopback host:port in a Procfile command line.
var loopbackAddr = regexp.MustCompile(`127\.0\.0\.1:(\d+)`)

// readProcfile parses ../Procfile.
func readProcfile(t testing.TB) []procEntry {
	t.Helper()
	return readProcfileNamed(t, "Procfile")
}

// readProcfileNamed parses the repository's Procfile of that name.
// Commands are split on white space: the Procfiles are meant to stay that
// simple, and quoting would show up here as a parse failure rather than as
// a silently wrong command line.
func readProcfileNamed(t testing.TB, name string) []procEntry {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	var entries []procEntry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		procName, command, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("%s line without 'name:': %q", name, line)
		}
		if strings.ContainsAny(command, `"'$\|&;<>`+"`") {
			t.Fatalf("%s: the command of %s uses shell syntax the harness does not interpret: %q", name, procName, command)
		}
		entries = append(entries, procEntry{name: strings.TrimSpace(procName), args: strings.Fields(command)})
	}
	if len(entries) == 0 {
		t.Fatalf("%s has no processes", name)
	}
	return entries
}

// freePorts reserves n distinct free loopback ports. All listeners stay open
// until every port is chosen, so the n ports differ from each other.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("reserve a port: %v", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// rewriteEntries turns the Procfile's command lines into runnable ones: the
// built binary replaces bin/raftlite, every loopback port maps to a fresh
// free port (the same old port to the same new port on every line, so the
// -join lists stay consistent), and the trailing data directory moves under
// dataRoot.
func rewriteEntries(t testing.TB, entries []procEntry, dataRoot string) []procEntry {
	t.Helper()
	var old []string
	seen := map[string]bool{}
	for _, e := range entries {
		for _, m := range loopbackAddr.FindAllStringSubmatch(strings.Join(e.args, " "), -1) {
			if !seen[m[1]] {
				seen[m[1]] = true
				old = append(old, m[1])
			}
		}
	}
	fresh := freePorts(t, len(old))
	mapping := map[string]string{}
	for i, p := range old {
		mapping[p] = strconv.Itoa(fresh[i])
	}
	out := make([]procEntry, 0, len(entries))
	for _, e := range entries {
		if len(e.args) < 3 || e.args[0] != "bin/raftlite" || e.args[1] != "serve" {
			t.Fatalf("Procfile entry %s does not run 'bin/raftlite serve': %q", e.name, e.args)
		}
		args := make([]string, 0, len(e.args)-1)
		for _, a := range e.args[1:] {
			args = append(args, loopbackAddr.ReplaceAllStringFunc(a, func(s string) string {
				return "127.0.0.1:" + mapping[loopbackAddr.FindStringSubmatch(s)[1]]
			}))
		}
		last := args[len(args)-1]
		if strings.HasPrefix(last, "-") {
			t.Fatalf("Procfile entry %s does not end with a data directory: %q", e.name, e.args)
		}
		args[len(args)-1] = filepath.Join(dataRoot, filepath.Base(last))
		out = append(out, procEntry{name: e.name, args: args})
	}
	return out
}

// flagIndex finds flag name ("-name value" or "-name=value", one or two
// dashes) in args; it returns the index of the flag word, or -1.
func flagIndex(args []string, name string) int {
	for i, a := range args {
		trimmed := strings.TrimLeft(a, "-")
		if len(trimmed) == len(a) {
			continue
		}
		if trimmed == name || strings.HasPrefix(trimmed, name+"=") {
			return i
		}
	}
	return -1
}

// flagValue returns the value of flag name in args, or "".
func flagValue(args []string, name string) string {
	i := flagIndex(args, name)
	switch {
	case i < 0:
		return ""
	case strings.Contains(args[i], "="):
		return args[i][strings.Index(args[i], "=")+1:]
	case i+1 < len(args):
		return args[i+1]
	}
	return ""
}

// withFlag returns a copy of args with flag name set to value (value ""
// removes the flag). A new flag goes before the trailing data directory.
func withFlag(args []string, name, value string) []string {
	out := append([]string(nil), args...)
	if i := flagIndex(out, name); i >= 0 {
		width := 2
		if strings.Contains(out[i], "=") {
			width = 1
		}
		out = append(out[:i], out[i+width:]...)
	}
	if value == "" {
		return out
	}
	dir := out[len(out)-1]
	return append(append(out[:len(out)-1], "-"+name, value), dir)
}

// withFlags applies withFlag for each name, value pair of flags.
func withFlags(t testing.TB, args []string, flags ...string) []string {
	t.Helper()
	if len(flags)%2 != 0 {
		t.Fatalf("withFlags: odd number of name, value words: %q", flags)
	}
	for i := 0; i < len(flags); i += 2 {
		args = withFlag(args, flags[i], flags[i+1])
	}
	return args
}

// ---------------------------------------------------------------------------
// Processes

// node is one raftlite process, restartable with the same command line.
type node struct {
	name     string
	args     []string
	id       string
	httpAddr string
	raftAddr string
	logPath  string
	hc       *http.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	runs   int
	paused bool // SIGSTOPped and not yet SIGCONTed
}

func newNode(name string, args []string, logDir string, hc *http.Client) *node {
	return &node{
		name:     name,
		args:     args,
		id:       flagValue(args, "node-id"),
		httpAddr: flagValue(args, "http-addr"),
		raftAddr: flagValue(args, "raft-addr"),
		logPath:  filepath.Join(logDir, name+".log"),
		hc:       hc,
	}
}

// start runs the node's command line, appending its output to its log file.
func (n *node) start(t testing.TB) {
	t.Helper()
	n.startWith(t, nil)
}

// startWith runs the node's command line behind prefix (e.g. "ip netns
// exec NS", which execs the binary in place, so signals still reach
// raftlite itself), appending its output to its log file.
func (n *node) startWith(t testing.TB, prefix []string) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done != nil {
		select {
		case <-n.done:
		default:
			t.Fatalf("%s: start while the previous process is still running", n.name)
		}
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: open log: %v", n.name, err)
	}
	n.runs++
	argv := append(append(append([]string(nil), prefix...), binary), n.args...)
	fmt.Fprintf(logf, "=== e2e: start #%d at %s: %s\n", n.runs, time.Now().UTC().Format("15:04:05.000"), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	// Never outlive the test binary, even when it dies on a timeout panic.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("%s: start: %v", n.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== e2e: process exited: %v\n", err)
		logf.Close()
		close(done)
	}()
	n.cmd, n.done, n.paused = cmd, done, false
}

// signal sends sig to the running process, remembering whether it is
// paused (SIGSTOP) or not (SIGCONT).
func (n *node) signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	if !n.alive() {
		t.Fatalf("%s: signal %v: process is not running", n.name, sig)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("%s: signal %v: %v", n.name, sig, err)
	}
	switch sig {
	case syscall.SIGSTOP:
		n.paused = true
	case syscall.SIGCONT:
		n.paused = false
	}
}

// kill SIGKILLs the process and waits until it is gone.
func (n *node) kill(t testing.TB) {
	t.Helper()
	n.signal(t, syscall.SIGKILL)
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	select {
	case <-done:
	case <-time.After(waitTimeout):
		t.Fatalf("%s: still running %v after SIGKILL", n.name, waitTimeout)
	}
}

// alive reports whether the node's process exists (a paused one does).
func (n *node) alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// shutdown SIGKILLs the process if it is running; for cleanup.
func (n *node) shutdown() {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
	}
}

// dataDir is the node's data directory (the last word of its command line).
func (n *node) dataDir() string { return n.args[len(n.args)-1] }

// logSize is the current length of the node's log, an offset for waitLog.
func (n *node) logSize() int64 {
	fi, err := os.Stat(n.logPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// logPollInterval is how often waitLog reads the log: short, so that a test
// can act on a line (e.g. kill the node) while what it announces is still
// in progress.
const logPollInterval = 2 * time.Millisecond

// waitLog waits until a complete line of the node's log written at or after
// offset from matches re, and returns the line's submatches and the offset
// just past it. It fails the test after timeout, or if the process exits
// first.
func (n *node) waitLog(t testing.TB, from int64, timeout time.Duration, re *regexp.Regexp) ([]string, int64) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if m, end := n.findInLog(from, re); m != nil {
			return m, end
		}
		if !n.alive() {
			t.Fatalf("%s exited while waiting for a log line matching %q", n.name, re)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no log line matching %q within %v", n.name, re, timeout)
		}
		time.Sleep(logPollInterval)
	}
}

// findInLog returns the submatches of the first complete line of the node's
// log at or after offset from that matches re, and the offset past that
// line; nil if there is none (yet).
func (n *node) findInLog(from int64, re *regexp.Regexp) ([]string, int64) {
	f, err := os.Open(n.logPath)
	if err != nil {
		return nil, from
	}
	defer f.Close()
	raw, err := io.ReadAll(io.NewSectionReader(f, from, 1<<40))
	if err != nil {
		return nil, from
	}
	for pos := 0; ; {
		nl := bytes.IndexByte(raw[pos:], '\n')
		if nl < 0 {
			return nil, from
		}
		if m := re.FindSubmatch(raw[pos : pos+nl]); m != nil {
			out := make([]string, len(m))
			for i, b := range m {
				out[i] = string(b)
			}
			return out, from + int64(pos+nl+1)
		}
		pos += nl + 1
	}
}

// logTail returns the last lines of the node's log.
func (n *node) logTail(lines int) string {
	raw, err := os.ReadFile(n.logPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	all := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// cluster is a set of nodes sharing a data root and an HTTP client.
type cluster struct {
	t     testing.TB
	dir   string
	nodes []*node
	hc    *http.Client
}

// newCluster makes an empty cluster whose processes are killed when the test
// ends, with every node's log tail printed if the test failed.
func newCluster(t testing.TB) *cluster {
	t.Helper()
	c := &cluster{
		t:   t,
		dir: t.TempDir(),
		hc: &http.Client{
			Timeout:   20 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxIdleConns: 256},
		},
	}
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		for _, n := range c.nodes {
			n.shutdown()
		}
		c.hc.CloseIdleConnections()
		if t.Failed() {
			for _, n := range c.nodes {
				t.Logf("---- tail of %s (%s) ----\n%s", n.name, n.logPath, n.logTail(logTailLines))
			}
		}
	})
	return c
}

// startProcfileCluster starts every process of the repository's Procfile,
// with extra flags given as name, value pairs (see withFlags).
func startProcfileCluster(t testing.TB, flags ...string) *cluster {
	t.Helper()
	c := addProcfileNodes(t, flags...)
	for _, n := range c.nodes {
		n.start(t)
	}
	return c
}

// addProcfileNodes makes a cluster of the Procfile's processes, with extra
// flags given as name, value pairs, without starting them: a test can
// prepare their data directories first.
func addProcfileNodes(t testing.TB, flags ...string) *cluster {
	t.Helper()
	c := newCluster(t)
	for _, e := range rewriteEntries(t, readProcfile(t), filepath.Join(c.dir, "data")) {
		c.add(e.name, withFlags(t, e.args, flags...))
	}
	return c
}

// add registers a node (not started) with the cluster.
func (c *cluster) add(name string, args []string) *node {
	n := newNode(name, args, c.dir, c.hc)
	c.nodes = append(c.nodes, n)
	return n
}

// addJoiner registers (not started) a new node made from template's command
// line: its own id, fresh ports, its own data directory, no
// -bootstrap-expect, and -join listing the Raft addresses of the current
// nodes.
func (c *cluster) addJoiner(name, id string, template *node) *node {
	ports := freePorts(c.t, 2)
	var join []string
	for _, n := range c.nodes {
		join = append(join, n.raftAddr)
	}
	args := withFlag(template.args, "node-id", id)
	args = withFlag(args, "http-addr", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	args = withFlag(args, "raft-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]))
	args = withFlag(args, "http-adv-addr", "")
	args = withFlag(args, "raft-adv-addr", "")
	args = withFlag(args, "bootstrap-expect", "")
	args = withFlag(args, "join", strings.Join(join, ","))
	args[len(args)-1] = filepath.Join(c.dir, "data", name)
	return c.add(name, args)
}

// serving returns the nodes whose processes exist and are not paused.
func (c *cluster) serving() []*node {
	var out []*node
	for _, n := range c.nodes {
		n.mu.Lock()
		paused := n.paused
		n.mu.Unlock()
		if n.alive() && !paused {
			out = append(out, n)
		}
	}
	return out
}

// others returns the cluster's nodes except the given ones.
func (c *cluster) others(except ...*node) []*node {
	var out []*node
	for _, n := range c.nodes {
		if !slices.Contains(except, n) {
			out = append(out, n)
		}
	}
	return out
}

// ---------------------------------------------------------------------------
// Waiting

// waitFor polls cond every pollInterval until it returns nil, failing the
// test with cond's last error after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(pollInterval)
	}
}

// waitLeader waits until every serving node reports the same leader, that
// leader is serving and says it is the leader, and returns it.
func (c *cluster) waitLeader() *node {
	c.t.Helper()
	var leader *node
	waitFor(c.t, waitTimeout, "an agreed leader", func() error {
		l, err := c.leader()
		leader = l
		return err
	})
	return leader
}

// leader returns the leader all serving nodes agree on.
func (c *cluster) leader() (*node, error) {
	running := c.serving()
	if len(running) == 0 {
		return nil, errors.New("no node is serving")
	}
	agreed := ""
	for _, n := range running {
		st, err := n.status()
		if err != nil {
			return nil, err
		}
		id := statusString(st, "store.leader.node_id")
		if id == "" {
			return nil, fmt.Errorf("%s knows no leader", n.name)
		}
		if agreed != "" && id != agreed {
			return nil, fmt.Errorf("nodes disagree on the leader: %s and %s", agreed, id)
		}
		agreed = id
	}
	for _, n := range running {
		if n.id != agreed {
			continue
		}
		st, err := n.status()
		if err != nil {
			return nil, err
		}
		if s := statusString(st, "store.raft.state"); s != "Leader" {
			return nil, fmt.Errorf("%s is named leader but its raft state is %q", n.name, s)
		}
		return n, nil
	}
	return nil, fmt.Errorf("leader %q is not a serving node", agreed)
}

// waitReady waits until every given node answers /readyz with 200.
func waitReady(t testing.TB, nodes ...*node) {
	t.Helper()
	waitReadyz(t, http.StatusOK, nodes...)
}

// waitReadyz waits until every given node answers /readyz with code.
func waitReadyz(t testing.TB, code int, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		waitFor(t, waitTimeout, fmt.Sprintf("%s /readyz %d", n.name, code), func() error {
			got, body, err := n.call("GET", "/readyz", nil, "")
			if err != nil {
				return err
			}
			if got != code {
				return &httpError{Code: got, Body: string(bytes.TrimSpace(body))}
			}
			return nil
		})
	}
}

// requireAlive fails the test if any given node's process has exited.
func requireAlive(t testing.TB, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		if !n.alive() {
			t.Fatalf("%s exited (crashed?)", n.name)
		}
	}
}

// waitIdentical waits until every given node, read locally (level none),
// holds exactly the rows of table t with ids 1..want, all nodes alike, and
// returns the rows.
func waitIdentical(t testing.TB, want int, nodes ...*node) [][]any {
	t.Helper()
	var rows [][]any
	waitFor(t, waitTimeout, fmt.Sprintf("%d identical rows on %d nodes", want, len(nodes)), func() error {
		var first *node
		for _, n := range nodes {
			got, err := n.rows("none", "SELECT * FROM t ORDER BY id")
			if err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			if len(got) != want {
				return fmt.Errorf("%s holds %d rows, want %d", n.name, len(got), want)
			}
			if first == nil {
				first, rows = n, got
				continue
			}
			if !reflect.DeepEqual(got, rows) {
				return fmt.Errorf("%s and %s hold different rows", first.name, n.name)
			}
		}
		for i, r := range rows {
			if len(r) == 0 || fmt.Sprint(r[0]) != strconv.Itoa(i+1) {
				return fmt.Errorf("row %d is %v, want id %d (an acknowledged write is missing)", i, r, i+1)
			}
		}
		return nil
	})
	return rows
}

// waitSameAnswer waits until every given node, read locally (level none),
// gives the same answer without error to query, and returns that answer.
// It compares whole databases cheaply with an aggregate query, e.g. the
// fingerprint of a large table.
func waitSameAnswer(t testing.TB, query string, nodes ...*node) [][]any {
	t.Helper()
	var first [][]any
	waitFor(t, waitTimeout, fmt.Sprintf("the same answer to %q on %d nodes", query, len(nodes)), func() error {
		for i, n := range nodes {
			got, err := n.rows("none", query)
			if err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			if i == 0 {
				first = got
			} else if !reflect.DeepEqual(got, first) {
				return fmt.Errorf("%s answers %v, %s %v", nodes[0].name, first, n.name, got)
			}
		}
		return nil
	})
	return first
}

// requireIntact fails the test unless every given node's database passes
// SQLite's integrity check (read locally, level none).
func requireIntact(t testing.TB, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		got, err := n.rows("none", "PRAGMA integrity_check")
		if err != nil {
			t.Fatalf("%s: integrity check: %v", n.name, err)
		}
		if len(got) != 1 || len(got[0]) != 1 || got[0][0] != "ok" {
			t.Fatalf("%s: integrity check: %v", n.name, got)
		}
	}
}

// ---------------------------------------------------------------------------
// HTTP

// result is one statement's result in an API response.
type result struct {
	Columns      []string `json:"columns"`
	Types        []string `json:"types"`
	Values       [][]any  `json:"values"`
	LastInsertID int64    `json:"last_insert_id"`
	RowsAffected int64    `json:"rows_affected"`
	Error        string   `json:"error"`
}

// response is the body of /db/execute, /db/query and /db/request.
type response struct {
	Results   []result `json:"results"`
	Error     string   `json:"error"`
	RaftIndex uint64   `json:"raft_index"`
}

// httpError is a request that did not come back as 200.
type httpError struct {
	Code int
	Body string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Code, e.Body) }

// url is the node's API URL for path (which may carry a query string):
// https for a node run with -http-cert.
func (n *node) url(path string) string {
	scheme := "http"
	if flagValue(n.args, "http-cert") != "" {
		scheme = "https"
	}
	return scheme + "://" + n.httpAddr + path
}

// call does one HTTP request and returns the status code and body.
func (n *node) call(method, path string, body io.Reader, contentType string) (int, []byte, error) {
	req, err := http.NewRequest(method, n.url(path), body)
	if err != nil {
		return 0, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return n.do(req)
}

// do sends req with the node's client and returns the status code and body.
func (n *node) do(req *http.Request) (int, []byte, error) {
	resp, err := n.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// sql posts statements (each a string or a []any of SQL and parameters) as
// JSON to path and decodes the answer. A status other than 200 is an
// *httpError; a top-level "error" in a 200 answer is an error too.
func (n *node) sql(path string, stmts ...any) (*response, error) {
	body, err := json.Marshal(stmts)
	if err != nil {
		return nil, err
	}
	var r response
	if err := n.doJSON("POST", path, body, &r); err != nil {
		return nil, err
	}
	if r.Error != "" {
		return &r, fmt.Errorf("request error: %s", r.Error)
	}
	if len(r.Results) != len(stmts) {
		return &r, fmt.Errorf("%d results for %d statements: %+v", len(r.Results), len(stmts), r.Results)
	}
	return &r, nil
}

// mustExecute runs statements through /db/execute and fails the test on any
// request or statement error.
func (n *node) mustExecute(t testing.TB, stmts ...any) *response {
	t.Helper()
	r, err := n.sql("/db/execute", stmts...)
	if err != nil {
		t.Fatalf("%s: execute %v: %v", n.name, stmts, err)
	}
	for i, res := range r.Results {
		if res.Error != "" {
			t.Fatalf("%s: execute %v: statement %d: %s", n.name, stmts, i, res.Error)
		}
	}
	return r
}

// rows runs one query at the given consistency level and returns its rows.
func (n *node) rows(level, query string) ([][]any, error) {
	r, err := n.sql("/db/query?level="+level, query)
	if err != nil {
		return nil, err
	}
	if e := r.Results[0].Error; e != "" {
		return nil, errors.New(e)
	}
	return r.Results[0].Values, nil
}

// count returns SELECT COUNT(*) of table t at the given level.
func (n *node) count(level string) (int, error) {
	rows, err := n.rows(level, "SELECT COUNT(*) FROM t")
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 || len(rows[0]) != 1 {
		return 0, fmt.Errorf("unexpected COUNT(*) rows %v", rows)
	}
	return strconv.Atoi(fmt.Sprint(rows[0][0]))
}

// doJSON sends body (JSON, or nothing when nil) to path and decodes a 200
// answer into v (numbers as json.Number); any other status is an
// *httpError.
func (n *node) doJSON(method, path string, body []byte, v any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	code, raw, err := n.call(method, path, rd, "application/json")
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return &httpError{Code: code, Body: string(bytes.TrimSpace(raw))}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode %s %q: %w", path, raw, err)
	}
	return nil
}

// status fetches /status.
func (n *node) status() (map[string]any, error) {
	var st map[string]any
	return st, n.doJSON("GET", "/status", nil, &st)
}

// member is one entry of /nodes.
type member struct {
	ID        string `json:"id"`
	APIAddr   string `json:"api_addr"`
	Addr      string `json:"addr"`
	Voter     bool   `json:"voter"`
	Reachable bool   `json:"reachable"`
	Leader    bool   `json:"leader"`
}

// members fetches /nodes (the legacy map form, keyed by node id).
func (n *node) members() (map[string]member, error) {
	var m map[string]member
	return m, n.doJSON("GET", "/nodes", nil, &m)
}

// statusString returns the value at a dotted key path of a /status object as
// a string ("" when absent).
func statusString(st map[string]any, path string) string {
	var v any = st
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// statusUint returns the unsigned integer at a dotted key path of a node's
// /status.
func (n *node) statusUint(path string) (uint64, error) {
	st, err := n.status()
	if err != nil {
		return 0, err
	}
	s := statusString(st, path)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: /status %s = %q: %w", n.name, path, s, err)
	}
	return v, nil
}

// ---------------------------------------------------------------------------
// The test table

// createTable creates table t, which every test writes through insertRow.
func createTable(t testing.TB, n *node) {
	t.Helper()
	n.mustExecute(t, "CREATE TABLE t (id INTEGER PRIMARY KEY, via TEXT NOT NULL)")
}

// padFingerprint sums up table pad (see padTable) for comparing replicas.
const padFingerprint = "SELECT COUNT(*), SUM(id), SUM(LENGTH(b)), SUM(unicode(hex(b))), MAX(hex(substr(b, 1, 8))) FROM pad"

// padTable creates table pad through n and fills it with about mb MB of
// incompressible rows (randomblob, which the apply path makes the same on
// every replica), one MB per log entry: enough data for copying, sending or
// restoring a snapshot to take a noticeable time.
func padTable(t testing.TB, n *node, mb int) {
	t.Helper()
	n.mustExecute(t, "CREATE TABLE IF NOT EXISTS pad (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
	for range mb {
		n.mustExecute(t, padInsert)
	}
}

// padInsert adds 1 MB to table pad: 256 random blobs of 4 KiB.
const padInsert = "INSERT INTO pad(b) SELECT randomblob(4096) FROM " +
	"(WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM s WHERE x < 256) SELECT x FROM s)"

// insertRow makes sure that row id of table t is committed, trying the given
// nodes in turn until timeout. An attempt with an unknown outcome (transport
// error, non-200, request error) is retried with the same id; a "UNIQUE
// constraint" error then proves that an earlier attempt was committed. So
// when insertRow returns nil the row is acknowledged, exactly once.
func insertRow(nodes []*node, id int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for attempt := 0; ; attempt++ {
		n := nodes[(id+attempt)%len(nodes)]
		r, err := n.sql("/db/execute?timeout=2s", []any{"INSERT INTO t(id, via) VALUES(?, ?)", id, n.name})
		switch {
		case err != nil:
			last = fmt.Errorf("%s: %w", n.name, err)
		case r.Results[0].Error == "" && r.Results[0].RowsAffected == 1:
			return nil
		case attempt > 0 && strings.Contains(r.Results[0].Error, "UNIQUE constraint failed"):
			return nil
		default:
			return fmt.Errorf("%s: insert row %d: %+v", n.name, id, r.Results[0])
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("row %d not acknowledged within %v: %w", id, timeout, last)
		}
		time.Sleep(pollInterval)
	}
}

// writer inserts rows with consecutive ids through a set of nodes in the
// background, one at a time, each acknowledged (insertRow) before the next.
type writer struct {
	last atomic.Int64 // the last acknowledged id
	stop chan struct{}
	done chan struct{}
	err  error // set before done closes
}

// startWriter starts writing ids after+1, after+2, ... through nodes.
func startWriter(nodes []*node, after int) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	w.last.Store(int64(after))
	go func() {
		defer close(w.done)
		for {
			select {
			case <-w.stop:
				return
			default:
			}
			id := int(w.last.Load()) + 1
			if err := insertRow(nodes, id, waitTimeout); err != nil {
				w.err = err
				return
			}
			w.last.Store(int64(id))
		}
	}()
	return w
}

// waitAcked waits until count more writes than now are acknowledged.
func (w *writer) waitAcked(t testing.TB, count int, what string) {
	t.Helper()
	want := w.last.Load() + int64(count)
	waitFor(t, waitTimeout, fmt.Sprintf("%d acknowledged writes %s", count, what), func() error {
		select {
		case <-w.done:
			return fmt.Errorf("the writer stopped: %v", w.err)
		default:
		}
		if got := w.last.Load(); got < want {
			return fmt.Errorf("at id %d, want %d", got, want)
		}
		return nil
	})
}

// finish stops the writer and returns the last acknowledged id.
func (w *writer) finish(t testing.TB) int {
	t.Helper()
	close(w.stop)
	<-w.done
	if w.err != nil {
		t.Fatal(w.err)
	}
	return int(w.last.Load())
}
