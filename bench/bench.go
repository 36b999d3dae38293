package bench

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftlite/raftlite/internal/cli"
	"github.com/raftlite/raftlite/internal/tlsconf"
)

// Config is a bench invocation's settings.
type Config struct {
	Hosts []string // base URLs, "http://host:port"
	// Compare lists another cluster's hosts (any rqlite-compatible
	// endpoint), measured in the same invocation with the same workloads,
	// run for run in turn with Hosts.
	Compare    []string
	Workloads  []Workload
	Duration   time.Duration
	Warmup     time.Duration
	Repeat     int
	Spread     bool
	Leader     bool // put the leader (from /nodes) first in Hosts
	Rows       int  // rows in the read table
	Timeout    time.Duration
	User, Pass string
	// TLS is the client TLS configuration for https hosts (nil: defaults).
	TLS           *tls.Config
	FloorDir      string
	FloorDuration time.Duration
	NoFloor       bool
	JSON          bool
	// From is a JSON report (from -json) to print instead of running.
	From string
	// Progress receives a line per run; nil for none.
	Progress io.Writer
}

const usageText = `Usage: raftlite bench [flags]

Load generator for raftlite (or rqlite: it speaks the same HTTP API).
With -compare, a second cluster (rqlite, or another raftlite) runs the same
workloads in the same invocation, run for run in turn with -H, and the
table ends with the ratios between the two.
Each workload runs -repeat times (warm-up, then a measured window); the
table shows the median of the runs, metric by metric, and the total errors.
In the same invocation it measures the floor on -floor-dir's disk: 4 KiB
append+fsync, raw SQLite (modernc, WAL) 1-row transactions with
synchronous=OFF and FULL, and point SELECTs, and prints the workloads'
rates as ratios to it.

Workloads (each request's latency is measured from send to full response):
  write-c1, write-c8, write-c32  one single-row INSERT per request, 1/8/32 clients
  batch-100-c8                   100 single-row INSERT statements per request, 8 clients (see rows/s)
  read-none-c8, read-weak-c8,
  read-linearizable-c8,
  read-strong-c8                 point SELECT by primary key (POST /db/query, a parameter)
                                 at that level, on a table of -rows rows, 8 clients
  mixed-c16                      90% weak point SELECTs, 10% single-row INSERTs, 16 clients

By default every client talks to the first host (as rqlite's published
figures were taken; a follower forwards to the leader, which costs a hop:
use -leader to target the leader whichever host it is). With -spread,
client i talks to host i mod len(hosts). Every client has its own HTTP
client with keep-alive connections. Before each run, bench waits until
every member (from /nodes) has applied the log up to the commit index, so
that a run does not compete with followers still applying the previous
one's writes. Failed requests are counted, never fatal. The tables bench_w and bench_r are dropped and recreated.

Flags:
`

// parseFlags parses the command line into a Config.
func parseFlags(args []string, stdout, stderr io.Writer) (*Config, error) {
	cfg := &Config{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hosts := fs.String("H", "127.0.0.1:4001", "comma-separated node HTTP addresses, host:port or URLs")
	compare := fs.String("compare", "", "comma-separated HTTP addresses of another rqlite-compatible cluster to measure in the same run, run for run in turn, with ratios")
	wl := fs.String("workload", "all", "comma-separated workloads to run: all, or "+workloadNames())
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured time per run")
	fs.DurationVar(&cfg.Warmup, "warmup", 2*time.Second, "warm-up time before each run's measurement")
	fs.IntVar(&cfg.Repeat, "repeat", 3, "runs per workload (the median is reported)")
	fs.BoolVar(&cfg.Spread, "spread", false, "spread clients over all hosts (default: all to the first host)")
	fs.BoolVar(&cfg.Leader, "leader", false, "ask the first host for the leader (GET /nodes) and make it the first host")
	fs.IntVar(&cfg.Rows, "rows", 10000, "rows in the read workloads' table")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout (a timed-out request is an error)")
	auth := fs.String("user", "", "HTTP basic auth credentials, user:password")
	fs.StringVar(&cfg.FloorDir, "floor-dir", "", "directory for the floor measurements; use one on the nodes' disk (default: the system temp dir)")
	fs.DurationVar(&cfg.FloorDuration, "floor-duration", 2*time.Second, "time per floor measurement")
	fs.BoolVar(&cfg.NoFloor, "no-floor", false, "skip the floor measurements")
	fs.BoolVar(&cfg.JSON, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&cfg.From, "from", "", "print the table of a saved -json report `file` instead of running")
	var tlsFlags tlsconf.ClientFlags
	tlsFlags.Register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usageText)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if cfg.Hosts, err = parseHosts(*hosts, tlsFlags.URL); err != nil {
		return nil, fmt.Errorf("-H: %w", err)
	}
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("-H: no host given")
	}
	if cfg.TLS, err = tlsFlags.Config(); err != nil {
		return nil, err
	}
	if cfg.Compare, err = parseHosts(*compare, tlsFlags.URL); err != nil {
		return nil, fmt.Errorf("-compare: %w", err)
	}
	if cfg.Workloads, err = lookupWorkloads(*wl); err != nil {
		return nil, err
	}
	switch {
	case cfg.Duration <= 0:
		return nil, errors.New("-duration must be positive")
	case cfg.Warmup < 0:
		return nil, errors.New("-warmup must not be negative")
	case cfg.Repeat < 1:
		return nil, errors.New("-repeat must be at least 1")
	case cfg.Rows < 1:
		return nil, errors.New("-rows must be at least 1")
	case cfg.FloorDuration <= 0:
		return nil, errors.New("-floor-duration must be positive")
	}
	if *auth != "" {
		u, p, ok := strings.Cut(*auth, ":")
		if !ok {
			return nil, errors.New("-user must be user:password")
		}
		cfg.User, cfg.Pass = u, p
	}
	return cfg, nil
}

// parseHosts parses a comma-separated list of host:port or URLs; toURL
// gives a bare host:port its scheme.
func parseHosts(list string, toURL func(string) string) ([]string, error) {
	var out []string
	for _, h := range strings.Split(list, ",") {
		if strings.TrimSpace(h) == "" {
			continue
		}
		u, err := baseURL(toURL(strings.TrimSpace(h)))
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// Main runs `raftlite bench` with args (after the subcommand) and returns
// the exit status: 0, 1 on failure, 2 for bad flags, 130 when interrupted.
func Main(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "raftlite bench: %v\n", err)
		return 2
	}
	if cfg.From != "" {
		return render(cfg, stdout, stderr)
	}
	cfg.Progress = stderr
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if rep != nil {
		var werr error
		if cfg.JSON {
			werr = WriteJSON(stdout, rep)
		} else {
			werr = WriteTable(stdout, rep)
		}
		if werr != nil && err == nil {
			err = werr
		}
	}
	switch {
	case rep != nil && rep.Interrupted:
		fmt.Fprintln(stderr, "raftlite bench: interrupted")
		return 130
	case err != nil:
		fmt.Fprintf(stderr, "raftlite bench: %v\n", err)
		return 1
	}
	return 0
}

// render prints a saved JSON report.
func render(cfg *Config, stdout, stderr io.Writer) int {
	b, err := os.ReadFile(cfg.From)
	if err == nil {
		var rep Report
		if err = json.Unmarshal(b, &rep); err == nil {
			if cfg.JSON {
				err = WriteJSON(stdout, &rep)
			} else {
				err = WriteTable(stdout, &rep)
			}
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "raftlite bench: -from: %v\n", err)
		return 1
	}
	return 0
}

// Run measures the floor (unless cfg.NoFloor) and runs cfg's workloads. On
// cancellation of ctx it stops at once and returns what finished (a
// workload cut short is summarised over its finished runs; its Runs says
// how many), with Interrupted set. A setup failure (creating or filling the tables) ends
// the run with an error; request failures during a run are only counted.
func Run(ctx context.Context, cfg *Config) (*Report, error) {
	rep := &Report{
		Start:    time.Now(),
		Hosts:    cfg.Hosts,
		Spread:   cfg.Spread,
		Duration: cfg.Duration,
		Warmup:   cfg.Warmup,
		Repeat:   cfg.Repeat,
		Results:  []Summary{},
	}
	progress := func(format string, a ...any) {
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, format+"\n", a...)
		}
	}
	interrupted := func() (*Report, error) {
		rep.Interrupted = true
		return rep, nil
	}

	if cfg.Leader {
		hosts, err := leaderFirst(ctx, cfg)
		if err != nil {
			return rep, fmt.Errorf("-leader: %w", err)
		}
		cfg.Hosts, rep.Hosts = hosts, hosts
	}
	rep.FirstHostRole = hostRole(ctx, cfg)

	if !cfg.NoFloor {
		progress("measuring the floor (%d × 4 × %s)...", cfg.Repeat, cfg.FloorDuration)
		fl, err := measureFloor(ctx, cfg.FloorDir, cfg.FloorDuration, cfg.Repeat)
		if ctx.Err() != nil {
			return interrupted()
		}
		if err != nil {
			return rep, fmt.Errorf("floor: %w", err)
		}
		rep.Floor = fl
		progress("floor: append+fsync %s/s, sqlite off %s/s, full %s/s, select %s/s",
			fmtRate(fl.FsyncPerSec), fmtRate(fl.SQLiteOffPerSec), fmtRate(fl.SQLiteFullPerSec), fmtRate(fl.SQLiteSelectPerSec))
	}

	targets := []*target{{cfg: cfg, results: &rep.Results}}
	if len(cfg.Compare) > 0 {
		other := *cfg
		other.Hosts = cfg.Compare
		if cfg.Leader {
			hosts, err := leaderFirst(ctx, &other)
			if err != nil {
				return rep, fmt.Errorf("-leader on -compare: %w", err)
			}
			other.Hosts = hosts
		}
		rep.CompareHosts = other.Hosts
		rep.CompareResults = []Summary{}
		rep.CompareFirstHostRole = hostRole(ctx, &other)
		targets = append(targets, &target{cfg: &other, results: &rep.CompareResults, label: "compare "})
	}
	for _, tg := range targets {
		tg.su = newSetup(tg.cfg)
		defer tg.su.close()
	}

	for _, w := range cfg.Workloads {
		for _, tg := range targets {
			if err := tg.su.prepare(ctx, w); err != nil {
				if ctx.Err() != nil {
					return interrupted()
				}
				return rep, fmt.Errorf("%s%s: setup: %w", tg.label, w.Name, err)
			}
			tg.runs, tg.samples = nil, newSampler(3)
		}
		summarize := func() {
			for _, tg := range targets {
				if len(tg.runs) == 0 {
					continue
				}
				s := summarizeRuns(w.Name, w.Clients, tg.runs)
				s.ErrorSamples = tg.samples.list()
				setRatios(&s, w, rep.Floor)
				*tg.results = append(*tg.results, s)
			}
		}
		// On an interrupt, keep the runs of this workload that finished.
		partial := func() (*Report, error) {
			summarize()
			return interrupted()
		}
		// The targets take turns, run by run, so that both meet the
		// machine in the same moods.
		for i := range cfg.Repeat {
			for _, tg := range targets {
				waited, err := settle(ctx, tg.cfg, time.Minute)
				if ctx.Err() != nil {
					return partial()
				}
				if err != nil {
					progress("warning: %sthe cluster did not settle before the run: %v", tg.label, err)
				} else if waited > time.Second {
					progress("%swaited %s for every node to apply the log", tg.label, waited.Round(100*time.Millisecond))
				}
				rr, err := runOnce(ctx, tg.cfg, w, tg.samples)
				if ctx.Err() != nil {
					return partial()
				}
				if err != nil {
					return rep, fmt.Errorf("%s%s: %w", tg.label, w.Name, err)
				}
				progress("%s%-21s run %d/%d: %s ops/s, %s rows/s, p50 %s, p99 %s, %d errors", tg.label,
					w.Name, i+1, cfg.Repeat, fmtRate(rr.OpsPerSec), fmtRate(rr.RowsPerS), fmtDur(rr.P50), fmtDur(rr.P99), rr.Errors)
				tg.runs = append(tg.runs, rr)
			}
		}
		summarize()
	}
	return rep, nil
}

// target is one endpoint bench measures: the hosts of -H, or those of
// -compare.
type target struct {
	cfg     *Config
	label   string // "" or "compare ", for progress lines
	su      *setup
	results *[]Summary
	// The current workload's runs.
	runs    []RunResult
	samples *sampler
}

// newSetup connects the workloads' setup to cfg's hosts.
func newSetup(cfg *Config) *setup {
	su := &setup{c: newClient(cfg.Hosts[0], 2*time.Minute, cfg), rows: cfg.Rows}
	su.readHosts = []*client{su.c}
	if cfg.Spread {
		for _, h := range cfg.Hosts[1:] {
			su.readHosts = append(su.readHosts, newClient(h, 10*time.Second, cfg))
		}
	}
	return su
}

// close closes the setup's clients.
func (su *setup) close() {
	for _, c := range su.readHosts {
		c.close()
	}
}

// sampler keeps the first few distinct error messages.
type sampler struct {
	mu   sync.Mutex
	max  int
	seen map[string]bool
	msgs []string
}

func newSampler(max int) *sampler { return &sampler{max: max, seen: map[string]bool{}} }

func (s *sampler) add(err error) {
	msg := err.Error()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.msgs) < s.max && !s.seen[msg] {
		s.seen[msg] = true
		s.msgs = append(s.msgs, msg)
	}
}

func (s *sampler) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}

// workerStats is what one worker measured in the window.
type workerStats struct {
	ops, rows, errs int64
	lat             []time.Duration
}

// runOnce runs w once: cfg.Warmup of unmeasured load, then cfg.Duration
// measured. A request counts when it completes inside the measured window;
// requests still in flight at the end are cancelled and not counted.
func runOnce(ctx context.Context, cfg *Config, w Workload, samples *sampler) (RunResult, error) {
	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	runCtx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	stats := make([]workerStats, w.Clients)
	var wg sync.WaitGroup
	// The nodes' metrics at the start of the measured window.
	var before sample
	var haveBefore bool
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-runCtx.Done():
		case <-time.After(time.Until(measureFrom)):
			before, haveBefore = scrapeMembers(runCtx, cfg)
		}
	}()
	for i := range w.Clients {
		host := cfg.Hosts[0]
		if cfg.Spread {
			host = cfg.Hosts[i%len(cfg.Hosts)]
		}
		wk := &worker{
			id:   i + 1,
			c:    newClient(host, cfg.Timeout, cfg),
			rnd:  rand.New(rand.NewPCG(uint64(start.UnixNano()), uint64(i))),
			rows: cfg.Rows,
		}
		st := &stats[i]
		st.lat = make([]time.Duration, 0, 4096)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer wk.c.close()
			for runCtx.Err() == nil {
				t0 := time.Now()
				rows, err := w.op(runCtx, wk)
				t1 := time.Now()
				if t1.Before(measureFrom) || t1.After(end) {
					continue
				}
				if err != nil {
					if runCtx.Err() != nil {
						break // cancelled by the end of the run
					}
					st.errs++
					samples.add(err)
					// Pause briefly so that a node refusing
					// connections does not turn the worker into a
					// busy loop stealing the nodes' CPU.
					select {
					case <-runCtx.Done():
					case <-time.After(5 * time.Millisecond):
					}
					continue
				}
				st.ops++
				st.rows += int64(rows)
				st.lat = append(st.lat, t1.Sub(t0))
			}
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return RunResult{}, err
	}
	var rr RunResult
	if haveBefore {
		if after, ok := scrapeMembers(ctx, cfg); ok {
			rr.Rounds = roundsBetween(before, after)
			rr.MembersCPU = cpuBetween(before, after)
		}
	}
	var all []time.Duration
	for i := range stats {
		rr.Ops += stats[i].ops
		rr.Rows += stats[i].rows
		rr.Errors += stats[i].errs
		all = append(all, stats[i].lat...)
	}
	rr.Elapsed = cfg.Duration
	rr.OpsPerSec = float64(rr.Ops) / cfg.Duration.Seconds()
	rr.RowsPerS = float64(rr.Rows) / cfg.Duration.Seconds()
	rr.Latencies = summarize(all)
	return rr, nil
}

// nodesInfo is the legacy /nodes answer (raftlite's and rqlite's): a map
// keyed by node ID.
type nodesInfo map[string]struct {
	APIAddr string `json:"api_addr"`
	Leader  bool   `json:"leader"`
}

func getNodes(ctx context.Context, cfg *Config) (nodesInfo, error) {
	c := newClient(cfg.Hosts[0], 10*time.Second, cfg)
	defer c.close()
	b, err := c.doRaw(ctx, "GET", "/nodes", nil)
	if err != nil {
		return nil, err
	}
	var ni nodesInfo
	if err := json.Unmarshal(b, &ni); err != nil {
		return nil, fmt.Errorf("decode /nodes: %w", err)
	}
	return ni, nil
}

// leaderFirst returns cfg.Hosts with the leader's API address first
// (moved there if listed, added otherwise).
func leaderFirst(ctx context.Context, cfg *Config) ([]string, error) {
	ni, err := getNodes(ctx, cfg)
	if err != nil {
		return nil, err
	}
	for _, n := range ni {
		if !n.Leader {
			continue
		}
		lead, err := baseURL(n.APIAddr)
		if err != nil {
			return nil, fmt.Errorf("leader's api_addr: %w", err)
		}
		out := []string{lead}
		for _, h := range cfg.Hosts {
			if h != lead {
				out = append(out, h)
			}
		}
		return out, nil
	}
	return nil, errors.New("no leader in /nodes")
}

// hostRole says whether the first host is the leader ("leader",
// "follower", or "" when /nodes does not tell).
func hostRole(ctx context.Context, cfg *Config) string {
	ni, err := getNodes(ctx, cfg)
	if err != nil {
		return ""
	}
	for _, n := range ni {
		if u, err := baseURL(n.APIAddr); err == nil && u == cfg.Hosts[0] {
			if n.Leader {
				return "leader"
			}
			return "follower"
		}
	}
	return ""
}
