package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/console"
	"github.com/raftlite/raftlite/fsm"
	"github.com/raftlite/raftlite/internal/cli"
	"github.com/raftlite/raftlite/sqlapi"
)

// serveFlags are the node's command-line settings. Names follow rqlited's
// where the concept is the same, so operators feel at home.
type serveFlags struct {
	nodeID          string
	httpAddr        string
	httpAdvAddr     string
	raftAddr        string
	raftAdvAddr     string
	join            string
	bootstrapExpect int
	authFile        string
	logLevel        string
	logFormat       string
	raftLogLevel    string
	sessionTTL      time.Duration
	watchRetention  fsm.WatchRetention
	dataDir         string
	snapThreshold   uint64
	snapInterval    time.Duration
	snapWALSize     int64
	maxEntryBytes   int
	snapLogSize     int64
	maxLoadBytes    int64
	readLease       bool
	tls             tlsFlags
	// rqlited holds rqlited's flags that serve_rqlited.go adds.
	rqlited  rqlitedFlags
	nonVoter bool
	ops      opsFlags

	// The state machine's settings (issue 17).
	foreignKeys   bool
	autoVacuumInt time.Duration
}

// opsFlags are rqlited's operations settings (issue 16): reaping
// unreachable members, and what a graceful stop does.
type opsFlags struct {
	reapTimeout         time.Duration
	reapReadOnlyTimeout time.Duration
	removeOnShutdown    bool
	stepDownOnShutdown  bool
}

func (o *opsFlags) register(fs *flag.FlagSet) {
	fs.DurationVar(&o.reapTimeout, "raft-reap-node-timeout", 0, "the leader removes a voter it has not reached for this long; 0 never. Set it on every voter")
	fs.DurationVar(&o.reapReadOnlyTimeout, "raft-reap-read-only-node-timeout", 0, "the leader removes a non-voter it has not reached for this long; 0 never")
	fs.BoolVar(&o.removeOnShutdown, "raft-cluster-remove-shutdown", false, "on a graceful stop (SIGTERM, SIGINT), remove this node from the cluster first")
	fs.BoolVar(&o.stepDownOnShutdown, "raft-shutdown-stepdown", true, "on a graceful stop, a leader hands leadership to another voter first")
}

// gracefulStopTimeout bounds what a graceful stop does before the node
// closes: a hand-over, or leaving the cluster.
const gracefulStopTimeout = 5 * time.Second

// stopGracefully does, while HTTP still serves (requests arriving meanwhile
// are forwarded to the new leader), what a graceful stop asks of the node:
// leave the cluster, or hand leadership over.
func (o *opsFlags) stopGracefully(node *cluster.Node, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), gracefulStopTimeout)
	defer cancel()
	switch {
	case o.removeOnShutdown:
		if err := node.Leave(ctx); err != nil {
			logger.Warn("leaving the cluster on shutdown failed", "err", err)
		}
	case o.stepDownOnShutdown:
		if err := node.HandOver(ctx); err != nil {
			logger.Warn("handing leadership over on shutdown failed", "err", err)
		}
	}
}

func parseServeFlags(args []string, stdout, stderr io.Writer) (*serveFlags, error) {
	f := &serveFlags{}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.nodeID, "node-id", "", "unique node ID (default: the Raft advertised address)")
	fs.StringVar(&f.httpAddr, "http-addr", "127.0.0.1:4001", "HTTP API bind address")
	fs.StringVar(&f.httpAdvAddr, "http-adv-addr", "", "HTTP API address other nodes and clients use (default: -http-addr)")
	fs.StringVar(&f.raftAddr, "raft-addr", "127.0.0.1:4002", "Raft bind address")
	fs.StringVar(&f.raftAdvAddr, "raft-adv-addr", "", "Raft address other nodes use (default: -raft-addr)")
	fs.StringVar(&f.join, "join", "", "comma-separated Raft addresses of cluster members to join or bootstrap with")
	fs.IntVar(&f.bootstrapExpect, "bootstrap-expect", 0, "number of nodes to wait for before bootstrapping a new cluster (with -join). "+
		"A running cluster found at a -join address is joined only if every voter is at a -join address and it has at least N voters; "+
		"any other (e.g. a single-node 'raftlite serve' left running) is refused: ERROR logs, /readyz 503 says why")
	fs.StringVar(&f.authFile, "auth", "", "path to an rqlite-format JSON credentials file (enables HTTP basic auth)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", "text", "log line format: text (key=value) or json (one JSON object a line)")
	fs.StringVar(&f.raftLogLevel, "raft-log-level", cluster.DefaultRaftLogLevel, "minimum level of hashicorp/raft's own log lines: trace, debug, info, warn, error")
	fs.DurationVar(&f.sessionTTL, "session-ttl", fsm.DefaultSessionTTL,
		"idle time after which a client session (client_id/seq) expires, judged by the leader's log timestamps; 0 never expires. Use the same value on every node")
	fs.Func("watch-retention", "change history kept for GET /db/watch: off, or any of entries=N (log indexes), bytes=SIZE (KiB/MiB/GiB), age=DURATION (leader time), comma-separated (default "+fsm.DefaultWatchRetention+"). Use the same value on every node",
		func(s string) (err error) { f.watchRetention, err = fsm.ParseWatchRetention(s); return err })
	f.watchRetention, _ = fsm.ParseWatchRetention(fsm.DefaultWatchRetention)
	fs.Uint64Var(&f.snapThreshold, "raft-snap", cluster.DefaultSnapshotThreshold, "number of log entries since the last snapshot that trigger a new one")
	fs.DurationVar(&f.snapInterval, "raft-snap-int", cluster.DefaultSnapshotInterval, "how often raft checks whether a snapshot is due")
	fs.IntVar(&f.maxEntryBytes, "raft-max-entry-bytes", cluster.DefaultMaxEntryBytes, "largest Raft log entry in bytes; larger writes go in parts of this size, applied whole at the last (over 1024 parts: 413 entry_too_large)")
	fs.Int64Var(&f.snapWALSize, "raft-snap-wal-size", cluster.DefaultSnapshotWALSize, "WAL size in bytes that also triggers a snapshot (and a WAL truncation); 0 or negative: never (0 as in rqlited)")
	fs.Int64Var(&f.snapLogSize, "raft-snap-log-size", cluster.DefaultSnapshotLogSize,
		"bytes of log entries since the last snapshot that also trigger one (a restart reads them before it is ready); negative: never")
	fs.BoolVar(&f.readLease, "read-lease", true, "serve linearizable reads on the leader's read lease between quorum rounds (see README)")
	fs.BoolVar(&f.nonVoter, "raft-non-voter", false, "join as a learner (read-only member): it replicates and serves reads but does not vote; POST /promote or 'raftlite promote' makes it a voter. Needs -join")
	f.ops.register(fs)
	fs.Int64Var(&f.maxLoadBytes, "load-max-bytes", sqlapi.DefaultMaxLoadBytes, "largest body POST /db/load accepts (spooled to disk, not memory)")
	f.tls.register(fs)
	f.rqlited.register(fs)
	fs.BoolVar(&f.foreignKeys, "fk", false, "enforce foreign key constraints (must be the same on every node)")
	fs.DurationVar(&f.autoVacuumInt, "auto-vacuum-int", 0, "how often the leader proposes a VACUUM through the log; 0: never")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: raftlite serve [flags] [data-dir]")
		printGroupedUsage(fs, fs.Output())
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		return nil, err
	}
	switch fs.NArg() {
	case 0:
		f.dataDir = "raftlite-data"
	case 1:
		f.dataDir = fs.Arg(0)
	default:
		return nil, fmt.Errorf("expected at most one data directory, got %q", fs.Args())
	}
	if f.httpAdvAddr == "" {
		f.httpAdvAddr = f.httpAddr
	}
	if f.raftAdvAddr == "" {
		f.raftAdvAddr = f.raftAddr
	}
	if f.nodeID == "" {
		f.nodeID = f.raftAdvAddr
	}
	if err := f.tls.check(); err != nil {
		return nil, err
	}
	if f.snapWALSize == 0 {
		f.snapWALSize = -1 // rqlited's "0 disables"; cluster.Config reads 0 as the default
	}
	if err := f.rqlited.validate(); err != nil {
		return nil, err
	}
	if f.sessionTTL < 0 {
		return nil, fmt.Errorf("-session-ttl must not be negative")
	}
	if f.bootstrapExpect < 0 {
		return nil, fmt.Errorf("-bootstrap-expect must not be negative")
	}
	if f.ops.reapTimeout < 0 || f.ops.reapReadOnlyTimeout < 0 {
		return nil, fmt.Errorf("-raft-reap-node-timeout and -raft-reap-read-only-node-timeout must not be negative")
	}
	if f.bootstrapExpect > 0 && f.join == "" && f.rqlited.disco == nil {
		return nil, fmt.Errorf("-bootstrap-expect needs -join with the addresses of the other nodes, or -disco-mode")
	}
	if f.rqlited.disco != nil && f.bootstrapExpect < 2 {
		return nil, fmt.Errorf("-disco-mode needs -bootstrap-expect N (at least 2): the nodes it finds bootstrap together")
	}
	return f, nil
}

func (f *serveFlags) joinAddrs() []string {
	var out []string
	for _, a := range strings.Split(f.join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// apiURL turns a host:port into a URL of scheme (http or https); a URL is
// returned as it is.
func apiURL(addr, scheme string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return scheme + "://" + addr
}

// newLogger makes the node's logger: slog's text or JSON handler at level.
func newLogger(level, format string, w io.Writer) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("invalid -log-level %q", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("invalid -log-format %q (want text or json)", format)
}

// serve runs one node until SIGINT or SIGTERM.
func serve(args []string, stdout, stderr io.Writer) int {
	f, err := parseServeFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "raftlite serve: %v\n", err)
		return 2
	}
	if f.rqlited.showVersion {
		fmt.Fprintln(stdout, "raftlite", version)
		return 0
	}
	logger, err := newLogger(f.logLevel, f.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "raftlite serve: %v\n", err)
		return 2
	}
	for _, w := range f.rqlited.warnings() {
		logger.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runNode(ctx, f, logger); err != nil {
		logger.Error("node failed", "err", err)
		return 1
	}
	return 0
}

func runNode(ctx context.Context, f *serveFlags, logger *slog.Logger) error {
	if err := os.MkdirAll(f.dataDir, 0o755); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	// Bind the HTTP listener before anything else so a port clash fails fast,
	// before Raft state is created.
	httpLn, err := net.Listen("tcp", f.httpAddr)
	if err != nil {
		return fmt.Errorf("listen on HTTP address (-http-addr): %w", err)
	}
	defer httpLn.Close()

	// Uploads are spooled next to the database, not in a small /tmp.
	loadDir := filepath.Join(f.dataDir, "upload")
	os.RemoveAll(loadDir) // an earlier run's leftovers
	if err := os.MkdirAll(loadDir, 0o755); err != nil {
		return fmt.Errorf("create upload directory: %w", err)
	}
	// One registry for the node: the fsm, cluster and sqlapi packages each
	// register their metrics in it beside the code that measures, and
	// /metrics serves it.
	registry := prometheus.NewRegistry()
	httpsServer, httpsClient, err := f.tls.httpTLS(logger)
	if err != nil {
		return err
	}
	nodeServerTLS, nodeClientTLS, err := f.tls.nodeTLS(logger)
	if err != nil {
		return err
	}
	advURL := apiURL(f.httpAdvAddr, f.tls.httpScheme())
	acfg := sqlapi.Config{
		Metrics:   registry,
		Addr:      httpLn.Addr().String(),
		AdvAddr:   advURL,
		ClientTLS: httpsClient,
		Version:   version,
		Logger:    logger,

		MaxLoadBytes:  f.maxLoadBytes,
		MaxEntryBytes: f.maxEntryBytes,
		TempDir:       loadDir,
		Console:       console.Handler(),
	}
	f.rqlited.applyAPI(&acfg)
	if f.authFile != "" {
		auth, err := sqlapi.LoadAuthFile(f.authFile)
		if err != nil {
			return err
		}
		for _, w := range auth.Warnings() {
			logger.Warn("auth file: "+w, "file", f.authFile)
		}
		acfg.Auth = auth
	}

	// Serve HTTP from the start: until the node is open (which may mean
	// reading much of the Raft log), every endpoint answers 503 with the
	// phase of the start, so a restarting node is seen to be starting.
	startup := new(cluster.Startup)
	startup.SetPhase(phaseOpeningDatabase)
	gate := sqlapi.NewStarting(acfg, func() sqlapi.StartupProgress { return startupProgress(startup.Status()) })
	srv := &http.Server{Handler: gate, ReadHeaderTimeout: 10 * time.Second, TLSConfig: httpsServer,
		ErrorLog: slog.NewLogLogger(logger.With("component", "http").Handler(), slog.LevelWarn)}
	serveErr := make(chan error, 1)
	go func() {
		if httpsServer != nil {
			serveErr <- srv.ServeTLS(httpLn, "", "") // the certificate comes from TLSConfig
			return
		}
		serveErr <- srv.Serve(httpLn)
	}()
	defer srv.Close()
	logger.Info("raftlite node starting", "node_id", f.nodeID, "http", httpLn.Addr().String(), "raft", f.raftAddr, "data", f.dataDir, "version", version)

	db, err := fsm.Open(fsm.Config{Dir: f.rqlited.dbDir(f.dataDir), Logger: logger, SessionTTL: f.sessionTTL,
		ForeignKeys: f.foreignKeys, WatchRetention: f.watchRetention, Metrics: registry})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	defer db.Close()

	ccfg := cluster.Config{
		NodeID:          f.nodeID,
		RaftAddr:        f.raftAddr,
		RaftAdvAddr:     f.raftAdvAddr,
		APIAdvAddr:      advURL,
		ServerTLS:       nodeServerTLS,
		ClientTLS:       nodeClientTLS,
		Dir:             f.dataDir,
		Join:            f.joinAddrs(),
		BootstrapExpect: f.bootstrapExpect,
		NonVoter:        f.nonVoter,

		SnapshotThreshold: f.snapThreshold,
		SnapshotInterval:  f.snapInterval,
		SnapshotWALSize:   f.snapWALSize,
		SnapshotLogSize:   f.snapLogSize,
		MaxEntryBytes:     f.maxEntryBytes,
		Startup:           startup,
		ReadLease:         f.readLease,
		RaftLogLevel:      f.raftLogLevel,
		Metrics:           registry,

		ReapTimeout:         f.ops.reapTimeout,
		ReapReadOnlyTimeout: f.ops.reapReadOnlyTimeout,
		StepDownOnClose:     f.ops.stepDownOnShutdown,
		AutoVacuumInterval:  f.autoVacuumInt,
	}
	f.rqlited.applyCluster(&ccfg)
	// Start, not Open: the HTTP API serves while the node bootstraps or
	// joins (Form below), so /readyz can say what it is waiting for.
	node, err := cluster.Start(ccfg, db, logger)
	if err != nil {
		return fmt.Errorf("start cluster node: %w", err)
	}
	defer node.Close()

	api := sqlapi.New(acfg, node)
	gate.Started(api)
	srv.RegisterOnShutdown(api.EndWatches) // watch streams would hold srv.Shutdown up
	logger.Info("raftlite node started", "node_id", f.nodeID, "http", httpLn.Addr().String(), "raft", f.raftAddr, "data", f.dataDir, "version", version)
	formErr := make(chan error, 1)
	go func() { formErr <- node.Form(ctx) }()

	// Every way out, a failure included, stops the HTTP server and flushes
	// the write queue before the deferred closes of the node and database.
	var runErr error
	for done := false; !done; {
		select {
		case <-ctx.Done():
			logger.Info("shutting down")
			f.ops.stopGracefully(node, logger)
			done = true
		case err := <-node.Halted():
			runErr, done = fmt.Errorf("node halted: %w", err), true
		case err := <-serveErr:
			runErr, done = fmt.Errorf("HTTP server: %w", err), true
		case err := <-formErr:
			if err != nil && ctx.Err() == nil {
				runErr, done = fmt.Errorf("form cluster: %w", err), true
			}
			formErr = nil // formed: wait for the signal
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("HTTP shutdown", "err", err)
	}
	// Apply what the write queue still holds before Raft stops.
	if err := api.Shutdown(shutdownCtx); err != nil {
		logger.Warn("API shutdown", "err", err)
	}
	return runErr
}

// phaseOpeningDatabase is the first phase of a start, before the cluster
// package reports its own.
const phaseOpeningDatabase = "opening database"

// startupProgress presents a start's state to the HTTP layer.
func startupProgress(st cluster.StartupStatus) sqlapi.StartupProgress {
	details := map[string]any{"in_phase": st.InPhase.Round(time.Millisecond).String()}
	if st.EntriesToScan > 0 {
		details["log_entries_to_scan"] = st.EntriesToScan
		details["log_entries_scanned"] = st.EntriesScanned
		details["log_bytes_scanned"] = st.BytesScanned
	}
	return sqlapi.StartupProgress{Phase: st.Phase, Details: details}
}

// The HTTP layer's needs are checked here, at compile time, rather than
// discovered at run time.
var _ sqlapi.Store = (*cluster.Node)(nil)
