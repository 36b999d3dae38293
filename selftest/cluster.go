package selftest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raftlite/raftlite/internal/httpx"
)

// node is one raftlite process of the cluster, restartable with the same
// command line.
type node struct {
	id       string // the Raft node ID, "1", "2", ...
	index    int    // position in the cluster
	httpAddr string
	raftAddr string // where the process listens for Raft
	advAddr  string // its proxy, the Raft address everyone else uses
	args     []string
	logPath  string

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{} // closed when the current process has exited
	paused bool
	starts int
}

// name is how logs and the visualisation refer to the node.
func (n *node) name() string { return "n" + n.id }

// url is the node's API URL for path (which may carry a query string).
func (n *node) url(path string) string { return "http://" + n.httpAddr + path }

// start runs the node's command line, appending its output to its log.
func (n *node) start(binary string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.runningLocked() {
		return fmt.Errorf("%s: start while its process still runs", n.name())
	}
	logf, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s: open log: %w", n.name(), err)
	}
	n.starts++
	fmt.Fprintf(logf, "=== selftest: start #%d at %s: %s serve %s\n", n.starts,
		time.Now().UTC().Format("15:04:05.000"), binary, strings.Join(n.args, " "))
	cmd := exec.Command(binary, append([]string{"serve"}, n.args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: start: %w", n.name(), err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "=== selftest: process exited: %v\n", err)
		logf.Close()
		close(done)
	}()
	n.cmd, n.done, n.paused = cmd, done, false
	return nil
}

func (n *node) runningLocked() bool {
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

// running reports whether the node's process exists (a paused one does).
func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked()
}

// pid is the current process's id, 0 when none runs.
func (n *node) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return 0
	}
	return n.cmd.Process.Pid
}

// kill SIGKILLs the process and waits until it is gone.
func (n *node) kill() error {
	n.mu.Lock()
	if !n.runningLocked() {
		n.mu.Unlock()
		return nil
	}
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil {
		return fmt.Errorf("%s: kill: %w", n.name(), err)
	}
	select {
	case <-done:
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: still running 30s after SIGKILL", n.name())
	}
}

// setPaused stops (SIGSTOP) or continues (SIGCONT) the process.
func (n *node) setPaused(paused bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.runningLocked() {
		return fmt.Errorf("%s: not running", n.name())
	}
	if err := pauseProcess(n.cmd.Process, paused); err != nil {
		return fmt.Errorf("%s: %w", n.name(), err)
	}
	n.paused = paused
	return nil
}

// serving reports whether the process runs and is not paused.
func (n *node) serving() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.runningLocked() && !n.paused
}

// cluster is the nodes, their proxies and the HTTP client that talks to
// them. Requests are built by hand rather than through client/: the checker
// records every attempt in its history, which a client's own retries and
// failover would hide.
type cluster struct {
	binary string
	dir    string
	nodes  []*node
	net    *network
	hc     *http.Client
	log    *slog.Logger
}

// clusterOptions are the settings of a new cluster.
type clusterOptions struct {
	binary    string
	dir       string
	size      int
	snapEvery int           // -raft-snap
	snapCheck time.Duration // -raft-snap-int
	log       *slog.Logger
}

// startCluster starts size nodes that bootstrap one cluster together, each
// behind its proxy.
func startCluster(o clusterOptions) (*cluster, error) {
	c := &cluster{
		binary: o.binary,
		dir:    o.dir,
		log:    o.log,
		// A short dial timeout: a node behind a cut proxy counts as
		// unreachable quickly, so the run keeps its pace.
		hc: httpx.NewClient(httpx.Options{DialTimeout: time.Second}),
	}
	c.net = newNetwork(o.log)
	c.net.owner = c.socketOwner
	ports, err := freePorts(3 * o.size) // HTTP, Raft, proxy
	if err != nil {
		return nil, err
	}
	var advs []string
	for i := range o.size {
		advs = append(advs, fmt.Sprintf("127.0.0.1:%d", ports[3*i+2]))
	}
	for i := range o.size {
		n := &node{
			id:       strconv.Itoa(i + 1),
			index:    i,
			httpAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i]),
			raftAddr: fmt.Sprintf("127.0.0.1:%d", ports[3*i+1]),
			advAddr:  advs[i],
		}
		n.logPath = filepath.Join(o.dir, n.name()+".log")
		n.args = []string{
			"-node-id", n.id,
			"-http-addr", n.httpAddr,
			"-raft-addr", n.raftAddr,
			"-raft-adv-addr", n.advAddr,
			"-bootstrap-expect", strconv.Itoa(o.size),
			"-join", strings.Join(advs, ","),
			"-raft-snap", strconv.Itoa(o.snapEvery),
			"-raft-snap-int", o.snapCheck.String(),
			filepath.Join(o.dir, n.name()),
		}
		c.nodes = append(c.nodes, n)
	}
	// The proxies start once the nodes are known: they look connections'
	// owners up among them.
	for _, n := range c.nodes {
		if err := c.net.addProxy(n.index, n.advAddr, n.raftAddr); err != nil {
			c.stop()
			return nil, err
		}
	}
	for _, n := range c.nodes {
		if err := n.start(c.binary); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// socketOwner names the node whose process holds the client end of a
// connection accepted by a proxy, -1 if none does.
func (c *cluster) socketOwner(from, to *net.TCPAddr) int {
	pids := map[int]int{}
	for _, n := range c.nodes {
		if pid := n.pid(); pid != 0 {
			pids[pid] = n.index
		}
	}
	pid, err := socketOwnerPID(from, to, pids)
	if err != nil {
		return -1
	}
	return pids[pid]
}

// stop kills every node and closes the proxies.
func (c *cluster) stop() {
	for _, n := range c.nodes {
		if n.running() {
			_ = n.setPaused(false)
			if err := n.kill(); err != nil {
				c.log.Warn("stopping the cluster", "error", err)
			}
		}
	}
	c.net.close()
	c.hc.CloseIdleConnections()
}

// freePorts reserves n distinct free loopback ports; all listeners stay open
// until every port is chosen, so the ports differ.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a port: %w", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// httpError is an answer other than 200.
type httpError struct {
	status int
	body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.status, e.body) }

// do sends a request with an optional JSON body and returns the answer's
// status and body.
func (c *cluster) do(ctx context.Context, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// getJSON fetches url and decodes a 200 answer into v.
func (c *cluster) getJSON(ctx context.Context, url string, v any) error {
	status, raw, err := c.do(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return &httpError{status, string(bytes.TrimSpace(raw))}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	return dec.Decode(v)
}

// raftStatus is the part of /status the selftest reads.
type raftStatus struct {
	Store struct {
		NodeID string `json:"node_id"`
		Raft   struct {
			State        string      `json:"state"`
			Term         json.Number `json:"term"`
			CommitIndex  json.Number `json:"commit_index"`
			AppliedIndex json.Number `json:"applied_index"`
		} `json:"raft"`
	} `json:"store"`
}

func (c *cluster) status(ctx context.Context, n *node) (*raftStatus, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var st raftStatus
	if err := c.getJSON(ctx, n.url("/status"), &st); err != nil {
		return nil, fmt.Errorf("%s /status: %w", n.name(), err)
	}
	return &st, nil
}

// leader returns the serving node that is leader in the highest term.
func (c *cluster) leader(ctx context.Context) (*node, error) {
	var best *node
	var bestTerm int64 = -1
	var errs []error
	for _, n := range c.nodes {
		if !n.serving() {
			continue
		}
		st, err := c.status(ctx, n)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		term, _ := st.Store.Raft.Term.Int64()
		if st.Store.Raft.State == "Leader" && term > bestTerm {
			best, bestTerm = n, term
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no serving node is leader: %w", errors.Join(errs...))
	}
	return best, nil
}

// waitLeader waits up to timeout for a leader.
func (c *cluster) waitLeader(ctx context.Context, timeout time.Duration) (*node, error) {
	var leader *node
	err := waitFor(ctx, timeout, func() error {
		l, err := c.leader(ctx)
		leader = l
		return err
	})
	return leader, err
}

// waitFor polls cond until it returns nil or timeout passes (then it returns
// cond's last error).
func waitFor(ctx context.Context, timeout time.Duration, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// others returns the nodes other than n.
func (c *cluster) others(n *node) []*node {
	var out []*node
	for _, o := range c.nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}
