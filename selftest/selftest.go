package selftest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftlite/raftlite/internal/cli"
)

// Exit statuses of "raftlite selftest".
const (
	exitPass    = 0 // the history is linearizable, nothing duplicated or lost
	exitFail    = 1 // a violation, a duplicate, a lost write, diverging replicas or an impossible answer
	exitUsage   = 2
	exitHarness = 3 // the selftest could not run (e.g. the cluster did not start)
)

// Config is one selftest run.
type Config struct {
	Binary       string        // the raftlite executable the nodes run ("serve")
	Dir          string        // scratch directory; "" makes a temporary one
	Keep         bool          // keep Dir even when the run passes
	Nodes        int           // cluster size
	Duration     time.Duration // how long the workload and the nemesis run
	Level        string        // the reads' consistency level
	Keys         int           // registers: few, so that reads and writes collide
	Writers      int           // concurrent writer clients
	Readers      int           // concurrent reader clients
	Faults       []string      // the nemesis's faults; none: no faults
	SnapEvery    int           // -raft-snap of every node: snapshots during the run
	HTML         string        // where to write porcupine's visualisation ("" skips it)
	CheckTimeout time.Duration // bound on porcupine's search
	Seed         uint64
	Log          *slog.Logger
}

// Summary is what a run found.
type Summary struct {
	Ops           int // operations checked
	Reads         int
	Writes        int // acknowledged
	UnknownWrites int
	Verdict       string   // "linearizable", "NOT linearizable", "unknown (the check timed out)"
	Violations    int      // keys whose history is not linearizable
	StaleReads    int      // reads older than a read that returned before they began
	StaleExamples []string // a few of them, described
	Duplicates    int      // writes applied more often than issued
	Lost          int      // acknowledged writes missing at the end
	Divergent     []string // replicas that disagree with the leader at the end
	Anomalies     []string
	Faults        map[string]int
	Counts        map[string]int
	Snapshots     map[string]string // node -> its last snapshot index at the end
	HTML          string
	Dir           string
}

// Passed reports whether the run found nothing wrong.
func (s *Summary) Passed() bool {
	return s.Verdict == verdictOK && s.Violations == 0 && s.Duplicates == 0 && s.Lost == 0 &&
		len(s.Divergent) == 0 && len(s.Anomalies) == 0
}

// Main runs "raftlite selftest" and returns its exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stdout, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitPass
		}
		fmt.Fprintf(stderr, "raftlite selftest: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	sum, err := Run(ctx, cfg)
	if sum != nil {
		sum.print(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "raftlite selftest: %v\n", err)
		return exitHarness
	}
	if !sum.Passed() {
		return exitFail
	}
	return exitPass
}

func parseFlags(args []string, stdout, stderr io.Writer) (Config, error) {
	cfg := Config{}
	fs := flag.NewFlagSet("selftest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.DurationVar(&cfg.Duration, "duration", 60*time.Second, "how long the workload and the nemesis run")
	fs.StringVar(&cfg.Level, "level", "linearizable", "consistency level of the reads: none, weak, strong, linearizable")
	fs.IntVar(&cfg.Nodes, "nodes", 3, "cluster size")
	fs.IntVar(&cfg.Keys, "keys", 4, "number of keys (few, so that reads and writes collide)")
	fs.IntVar(&cfg.Writers, "writers", 6, "concurrent writers (each through random nodes, with an exactly-once session)")
	fs.IntVar(&cfg.Readers, "readers", 6, "concurrent readers (each reads a key on every node in turn, back to back)")
	faults := fs.String("nemesis", strings.Join(allFaults, ","), "faults to cycle through (comma-separated), or none")
	fs.IntVar(&cfg.SnapEvery, "snap", 200, "-raft-snap of every node: a snapshot every N log entries")
	fs.StringVar(&cfg.HTML, "html", "selftest.html", "where to write porcupine's HTML visualisation of the history (empty: none)")
	fs.StringVar(&cfg.Dir, "dir", "", "scratch directory for the nodes' data and logs (default: a temporary one, kept if the run fails)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the scratch directory even when the run passes")
	fs.DurationVar(&cfg.CheckTimeout, "check-timeout", 5*time.Minute, "bound on porcupine's search")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "random seed of the workload and the nemesis (0: from the clock)")
	logLevel := fs.String("log-level", "info", "selftest log level: debug, info, warn, error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: raftlite selftest [flags]

Starts a cluster of this binary's own nodes on loopback, runs concurrent
writers (exactly-once sessions, through every node) and back-to-back reads
of one key on different nodes while a nemesis kills, pauses, partitions and
moves the leader, then checks the history with porcupine. Exit status: 0
pass, 1 a violation, duplicate, lost write or diverging replica, 2 usage,
3 the selftest itself could not run.

`)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Faults, err = parseFaults(*faults); err != nil {
		return cfg, err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("-log-level: %w", err)
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	if cfg.Binary, err = os.Executable(); err != nil {
		return cfg, fmt.Errorf("find this executable: %w", err)
	}
	return cfg, cfg.validate()
}

func (cfg Config) validate() error {
	switch {
	case cfg.Nodes < 3:
		return errors.New("-nodes must be at least 3 (faults need a majority left)")
	case cfg.Duration <= 0:
		return errors.New("-duration must be positive")
	case cfg.Keys < 1 || cfg.Writers < 1 || cfg.Readers < 1:
		return errors.New("-keys, -writers and -readers must be at least 1")
	case cfg.SnapEvery < 1:
		return errors.New("-snap must be at least 1")
	}
	switch cfg.Level {
	case "none", "weak", "strong", "linearizable":
	default:
		return fmt.Errorf("-level %q: want none, weak, strong or linearizable", cfg.Level)
	}
	return nil
}

// drainTimeout bounds how long writes still in flight after the workload
// ends may take to learn their outcome; the rest are recorded as unknown.
const drainTimeout = 15 * time.Second

// settleTimeout bounds each wait for the cluster (a leader, every replica
// caught up).
const settleTimeout = 30 * time.Second

// Run starts a cluster, runs the workload and the nemesis for
// cfg.Duration, and checks what the clients saw. An error means the
// selftest could not run; what it found is in the Summary.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Seed == 0 {
		cfg.Seed = uint64(time.Now().UnixNano())
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 5 * time.Minute
	}
	sum := &Summary{HTML: cfg.HTML}
	dir, err := scratchDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	sum.Dir = dir
	passed := false
	defer func() {
		if cfg.Dir == "" && !cfg.Keep && passed {
			os.RemoveAll(dir)
			sum.Dir = ""
		}
	}()
	cfg.Log.Info("selftest: starting", "nodes", cfg.Nodes, "duration", cfg.Duration, "level", cfg.Level,
		"nemesis", strings.Join(cfg.Faults, ","), "seed", cfg.Seed, "dir", dir)
	c, err := startCluster(clusterOptions{binary: cfg.Binary, dir: dir, size: cfg.Nodes,
		snapEvery: cfg.SnapEvery, snapCheck: 500 * time.Millisecond, log: cfg.Log})
	if err != nil {
		return sum, err
	}
	defer c.stop()
	if err := setupTable(ctx, c, cfg.Keys); err != nil {
		return sum, fmt.Errorf("set up the cluster (logs in %s): %w", dir, err)
	}

	h := newHistory()
	w := newWorkload(c, h, cfg.Keys, cfg.Level)
	nm := &nemesis{c: c, h: h, rng: rand.New(rand.NewPCG(cfg.Seed, 1)), faults: cfg.Faults, done: map[string]int{}}
	stopClients, abandon := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for i := range cfg.Writers + cfg.Readers {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i+2)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < cfg.Writers {
				w.runWriter(i, rng, stopClients, abandon)
			} else {
				w.runReader(i, rng, stopClients)
			}
		}()
	}
	nemesisErr := nm.run(ctx, time.Now().Add(cfg.Duration))
	close(stopClients)
	healErr := nm.heal()
	drained := make(chan struct{})
	go func() { wg.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(drainTimeout):
		cfg.Log.Warn("selftest: writes still in flight are recorded as unknown", "after", drainTimeout)
	}
	close(abandon)
	<-drained
	if err := errors.Join(nemesisErr, healErr); err != nil {
		return sum, fmt.Errorf("nemesis (logs in %s): %w", dir, err)
	}
	sum.Faults = nm.done

	final, err := finalState(ctx, c, h, w, cfg.Writers+cfg.Readers)
	if err != nil {
		return sum, fmt.Errorf("read the final state (logs in %s): %w", dir, err)
	}
	sum.Snapshots = snapshotIndexes(ctx, c)
	check(cfg, h, w, final, sum)
	passed = sum.Passed()
	return sum, nil
}

// scratchDir returns dir, created if needed, or a new temporary directory.
func scratchDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "raftlite-selftest-")
		if err != nil {
			return "", fmt.Errorf("scratch directory: %w", err)
		}
		return d, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("scratch directory: %w", err)
	}
	return filepath.Abs(dir)
}

// execute runs statements through n's /db/execute and fails on any error.
func execute(ctx context.Context, c *cluster, n *node, stmts ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	status, raw, err := c.do(ctx, http.MethodPost, n.url("/db/execute?timeout=5s"), stmts)
	if err != nil {
		return err
	}
	if status != http.StatusOK || strings.Contains(string(raw), `"error"`) {
		return fmt.Errorf("%s: execute: HTTP %d: %s", n.name(), status, strings.TrimSpace(string(raw)))
	}
	return nil
}

// setupTable waits for the cluster, creates table kv with every key at
// value 0, count 0, and waits until every node holds it.
func setupTable(ctx context.Context, c *cluster, keys int) error {
	leader, err := c.waitLeader(ctx, settleTimeout)
	if err != nil {
		return err
	}
	if err := execute(ctx, c, leader, "CREATE TABLE kv (k INTEGER PRIMARY KEY, v INTEGER NOT NULL, n INTEGER NOT NULL)"); err != nil {
		return err
	}
	var inserts []any
	for k := range keys {
		inserts = append(inserts, []any{"INSERT INTO kv(k, v, n) VALUES(?, 0, 0)", k})
	}
	if err := execute(ctx, c, leader, inserts...); err != nil {
		return err
	}
	w := newWorkload(c, nil, keys, "none")
	return waitFor(ctx, settleTimeout, func() error {
		for _, n := range c.nodes {
			if _, ok := w.read(n, "none", keys-1); !ok {
				return fmt.Errorf("%s does not hold the keys yet", n.name())
			}
		}
		return nil
	})
}

// finalState waits until every replica has applied everything the leader
// committed, then reads every key on the leader (linearizable, added to the
// history, so the check covers it) and on every node locally. It returns
// the leader's registers and counts keys on which a replica disagrees.
func finalState(ctx context.Context, c *cluster, h *history, w *workload, client int) (*finalRead, error) {
	var leader *node
	err := waitFor(ctx, settleTimeout, func() error {
		l, err := c.leader(ctx)
		if err != nil {
			return err
		}
		lst, err := c.status(ctx, l)
		if err != nil {
			return err
		}
		for _, n := range c.nodes {
			st, err := c.status(ctx, n)
			if err != nil {
				return err
			}
			if applied, commit := number(st.Store.Raft.AppliedIndex), number(lst.Store.Raft.CommitIndex); applied < commit {
				return fmt.Errorf("%s applied %s of %s", n.name(), st.Store.Raft.AppliedIndex, lst.Store.Raft.CommitIndex)
			}
		}
		leader = l
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replicas did not catch up: %w", err)
	}
	f := &finalRead{registers: make([]register, w.keys)}
	for k := range w.keys {
		call := h.now()
		reg, ok := w.read(leader, "linearizable", k)
		if !ok {
			return nil, fmt.Errorf("final linearizable read of k%d on %s failed", k, leader.name())
		}
		h.add(client, kvInput{Kind: opRead, Key: k}, kvOutput{Value: reg.Value, Count: reg.Count}, call, h.now(),
			opMeta{Node: leader.name(), Level: "linearizable (final)"})
		f.registers[k] = reg
		for _, n := range c.nodes {
			local, ok := w.read(n, "none", k)
			if !ok {
				return nil, fmt.Errorf("final local read of k%d on %s failed", k, n.name())
			}
			if local != reg {
				f.divergent = append(f.divergent, fmt.Sprintf("k%d: %s holds %d (#%d), leader %s %d (#%d)",
					k, n.name(), local.Value, local.Count, leader.name(), reg.Value, reg.Count))
			}
		}
	}
	return f, nil
}

// number is a /status number, 0 when missing or malformed.
func number(n json.Number) int64 {
	v, _ := n.Int64()
	return v
}

// finalRead is the cluster's state after the run.
type finalRead struct {
	registers []register // per key, read on the leader
	divergent []string
}

// snapshotIndexes returns each node's last snapshot index: evidence that
// snapshots were taken during the run.
func snapshotIndexes(ctx context.Context, c *cluster) map[string]string {
	out := map[string]string{}
	for _, n := range c.nodes {
		var st struct {
			Store struct {
				Raft struct {
					LastSnapshotIndex any `json:"last_snapshot_index"`
				} `json:"raft"`
			} `json:"store"`
		}
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		if err := c.getJSON(sctx, n.url("/status"), &st); err == nil {
			out[n.name()] = fmt.Sprint(st.Store.Raft.LastSnapshotIndex)
		}
		cancel()
	}
	return out
}

// print writes the summary, one "name: value" per line.
func (s *Summary) print(w io.Writer) {
	result := "PASS"
	if !s.Passed() {
		result = "FAIL"
	}
	fmt.Fprintf(w, "selftest: %s\n", result)
	fmt.Fprintf(w, "ops checked: %d (reads %d, writes acknowledged %d, writes unknown %d)\n", s.Ops, s.Reads, s.Writes, s.UnknownWrites)
	fmt.Fprintf(w, "faults: %s\n", formatCounts(s.Faults))
	fmt.Fprintf(w, "snapshot index at the end: %s\n", formatCounts(s.Snapshots))
	fmt.Fprintf(w, "client counters: %s\n", formatCounts(s.Counts))
	fmt.Fprintf(w, "history: %s\n", s.Verdict)
	fmt.Fprintf(w, "violations: %d\n", s.Violations)
	fmt.Fprintf(w, "stale reads: %d\n", s.StaleReads)
	for _, e := range s.StaleExamples {
		fmt.Fprintf(w, "  %s\n", e)
	}
	fmt.Fprintf(w, "duplicates: %d\n", s.Duplicates)
	fmt.Fprintf(w, "lost: %d\n", s.Lost)
	fmt.Fprintf(w, "divergent: %d\n", len(s.Divergent))
	for _, d := range s.Divergent {
		fmt.Fprintf(w, "  %s\n", d)
	}
	fmt.Fprintf(w, "anomalies: %d\n", len(s.Anomalies))
	for _, a := range s.Anomalies {
		fmt.Fprintf(w, "  %s\n", a)
	}
	if s.HTML != "" {
		fmt.Fprintf(w, "visualisation: %s\n", s.HTML)
	}
	if s.Dir != "" {
		fmt.Fprintf(w, "node data and logs: %s\n", s.Dir)
	}
}

// formatCounts prints a map sorted by key, "a=1 b=2".
func formatCounts[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, " ")
}
