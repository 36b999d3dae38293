package fsm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
)

// DBFile is the name of the database file inside Config.Dir.
const DBFile = "db.sqlite"

// stmtCacheSize bounds each per-SQL-text cache.
const stmtCacheSize = 1024

// Config configures Open.
type Config struct {
	// Dir holds the database file DBFile (and its -wal and -shm files). It
	// is created if missing.
	Dir    string
	Logger *slog.Logger
	// SessionTTL is how long a client session may stay idle before it
	// expires, judged by the leader timestamps of the log entries; zero
	// means never, as for -session-ttl (DefaultSessionTTL is the flag's
	// default). Every node of a
	// cluster must use the same value: expiry is part of the replicated
	// state, and nodes with different values would diverge.
	SessionTTL time.Duration
	// AfterCommit, if set, is called on Raft's FSM goroutine after a
	// batch's transaction has committed and before its index is published
	// (AppliedIndex, WaitApplied). Readers already see the batch in that
	// window; tests hold a batch there to check that read indexes cover
	// what readers may have seen.
	AfterCommit func(index uint64)
	// ForeignKeys enforces foreign key constraints (-fk; off by default,
	// as in SQLite and rqlite). It is a setting of the connections, not of
	// the database file, so every node of a cluster must use the same
	// value: a write that breaks a constraint would fail on the nodes that
	// enforce it and apply on the others. Clients cannot change it (PRAGMA
	// foreign_keys=... is refused, see guard.go).
	ForeignKeys bool
	// Metrics is where the FSM registers its Prometheus metrics (apply
	// time per batch, batch size, snapshots, sessions; see metrics.go). Nil
	// registers them nowhere. One FSM per registry.
	Metrics prometheus.Registerer
	// WatchRetention says how much change history to keep for /db/watch
	// (see watch.go); its zero value keeps everything. Every node of a
	// cluster must use the same value.
	WatchRetention WatchRetention
}

// FSM is the replicated state machine: a SQLite database to which committed
// Raft entries are applied. It implements raft.BatchingFSM. Its methods are
// safe for concurrent use, except that Raft's own calls (Apply, ApplyBatch,
// Snapshot, Restore) come from Raft's FSM goroutine one at a time, as Raft
// guarantees.
type FSM struct {
	path   string
	logger *slog.Logger

	// mu guards the database handles. Everything that runs SQL holds it for
	// reading; Restore and Close hold it for writing, so that no statement
	// runs while they close and swap the database. A snapshot holds it for
	// reading from Snapshot until its pages are copied.
	mu      sync.RWMutex
	closed  bool
	prep    preparedRestore // see PrepareRestore
	db      *sql.DB
	wdb     *sql.DB      // the write connection's pool, of writeDrv
	w       *writer      // the apply path's connection, used only by Raft's FSM goroutine
	readers chan *dbConn // the read pool
	nReader int
	fkOn    bool
	version string // SQLite's
	// pragmas are the settings of the write ("rw") and read ("ro")
	// connections that Stats reports, read once at open.
	pragmas map[string]map[string]string

	// stmtCache remembers what preparing a SQL text told, and roCache
	// AllReadOnly's verdict per SQL text.
	stmtCache *lru[stmtInfo]
	roCache   *lru[bool]

	applied atomic.Uint64
	// appliedAt is when a batch of entries was last applied (Unix
	// nanoseconds, local clock; 0 until the first since Open).
	appliedAt atomic.Int64
	waitMu    sync.Mutex
	waitCh    chan struct{} // closed and replaced whenever applied changes
	done      chan struct{} // closed by Close

	nodesMu sync.RWMutex
	nodes   map[string]NodeMeta

	// sessionTTL is Config.SessionTTL, and sessions the published session
	// counters.
	sessionTTL time.Duration
	sessions   sessionCounters
	// afterCommit is Config.AfterCommit.
	afterCommit func(index uint64)
	metrics     *metrics
	// oldestSeen is a lower bound of the oldest last_seen in the session
	// table, as of the last committed batch. Only the apply path and
	// Restore (Raft's FSM goroutine) and Open use it.
	oldestSeen int64
	// retention is Config.WatchRetention, and watch the history's state
	// as of the last committed batch (apply path, Restore and Open only).
	retention WatchRetention
	watch     watchState
	// watchSeen is a copy of watch for Stats, published with each batch.
	watchSeen atomic.Pointer[watchState]

	// det is the entry the write connection's time and random functions
	// evaluate against, and writeDrv the driver that installs them (see
	// determinism.go).
	det      detState
	writeDrv *sqlite.Driver

	// checksums are the replica checksums taken at checksum markers (see
	// checksum.go).
	checksums checksumStore

	// restoreSynced is closed once the database that Restore installed
	// last is on the disk (see unsynced.go); nil if none was. Guarded by
	// mu.
	restoreSynced chan struct{}

	// vacuumDue is set while a batch runs when it holds a VACUUM, which
	// runs once the batch has committed (see vacuum.go). Only the apply
	// path uses it.
	vacuumDue bool

	// failure is set when a batch could not be committed. From then on the
	// FSM refuses to apply or snapshot anything (see ApplyBatch).
	failure atomic.Pointer[error]
}

// Open opens (creating if needed) the database in cfg.Dir and loads the
// applied index and member metadata stored in it, so that Raft replays only
// the entries after that index.
func Open(cfg Config) (*FSM, error) {
	if cfg.Dir == "" {
		return nil, errors.New("open fsm: no directory")
	}
	if cfg.SessionTTL < 0 {
		return nil, fmt.Errorf("open fsm: negative session TTL %v (zero means never)", cfg.SessionTTL)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("open fsm: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open fsm: %w", err)
	}
	enableOFDLocking(logger)
	removeStaleScratch(dir, logger.With("component", "fsm"))
	if err := discardUnsynced(filepath.Join(dir, DBFile), logger.With("component", "fsm")); err != nil {
		return nil, fmt.Errorf("open fsm: %w", err)
	}

	f := &FSM{
		path:      filepath.Join(dir, DBFile),
		logger:    logger.With("component", "fsm"),
		nReader:   min(max(runtime.GOMAXPROCS(0), 2), 8),
		stmtCache: newLRU[stmtInfo](stmtCacheSize),
		roCache:   newLRU[bool](stmtCacheSize),
		waitCh:    make(chan struct{}),
		done:      make(chan struct{}),

		fkOn:        cfg.ForeignKeys,
		sessionTTL:  cfg.SessionTTL,
		afterCommit: cfg.AfterCommit,
		retention:   cfg.WatchRetention,
	}
	f.metrics = newMetrics(cfg.Metrics, f)
	f.checksums.init()
	if f.writeDrv, err = newWriteDriver(&f.det); err != nil {
		return nil, fmt.Errorf("open fsm: %w", err)
	}
	if err := f.openDB(); err != nil {
		return nil, fmt.Errorf("open fsm %s: %w", f.path, err)
	}
	f.logger.Info("database opened", "path", f.path, "applied_index", f.applied.Load())
	return f, nil
}

// openDB opens the database file and its connections, makes sure the
// internal tables exist, and loads the applied index and the nodes.
func (f *FSM) openDB() (err error) {
	ctx := context.Background()
	db, err := sql.Open("sqlite", dsn(f.path))
	if err != nil {
		return err
	}
	// Connections are pinned for the FSM's lifetime; only snapshot
	// connections come and go, and keeping one idle saves reopening it.
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	f.db = db
	defer func() {
		if err != nil {
			f.closeDB()
		}
	}()

	// The writer comes first: it switches the file to WAL mode, which the
	// readers rely on. It has a pool of its own, from the driver that
	// makes time and randomness deterministic.
	if err := f.det.openHelper(); err != nil {
		return fmt.Errorf("time functions: %w", err)
	}
	f.wdb = sql.OpenDB(driverConnector{drv: f.writeDrv, dsn: dsn(f.path)})
	f.wdb.SetMaxIdleConns(1)
	f.wdb.SetConnMaxLifetime(0)
	f.wdb.SetConnMaxIdleTime(0)
	wc, err := newDBConn(ctx, f.wdb, writerPragmas(f.fkOn), modeInternal)
	if err != nil {
		return fmt.Errorf("write connection: %w", err)
	}
	if f.w, err = newWriter(ctx, wc, !f.retention.Off); err != nil {
		wc.close()
		return fmt.Errorf("write connection: %w", err)
	}
	if err := wc.conn.QueryRowContext(ctx, "SELECT sqlite_version()").Scan(&f.version); err != nil {
		return fmt.Errorf("read settings: %w", err)
	}
	f.pragmas = map[string]map[string]string{}
	if f.pragmas["rw"], err = readPragmas(ctx, wc); err != nil {
		return err
	}

	f.readers = make(chan *dbConn, f.nReader)
	for range f.nReader {
		rc, err := newDBConn(ctx, db, readerPragmas(f.fkOn), modeReadOnly)
		if err != nil {
			return fmt.Errorf("read connection: %w", err)
		}
		if f.pragmas["ro"] == nil {
			if f.pragmas["ro"], err = readPragmas(ctx, rc); err != nil {
				rc.close()
				return err
			}
		}
		f.readers <- rc
	}

	idx, err := f.w.appliedIndex(ctx)
	if err != nil {
		return err
	}
	nodes, err := f.w.loadNodes(ctx)
	if err != nil {
		return err
	}
	sc, err := f.w.loadSessionCounts(ctx)
	if err != nil {
		return err
	}
	f.sessions.store(sc)
	if f.oldestSeen, err = f.w.oldestSeen(ctx); err != nil {
		return err
	}
	// A VACUUM whose entry committed before a crash runs now, before
	// anything is applied after it (vacuum.go).
	if pending, err := f.w.vacuumPending(ctx); err != nil {
		return err
	} else if pending {
		if err := f.vacuum(ctx); err != nil {
			return err
		}
	}
	if f.watch, err = f.w.loadWatchState(ctx); err != nil {
		return err
	}
	f.publishWatch()
	f.setApplied(idx)
	f.nodesMu.Lock()
	f.nodes = nodes
	f.nodesMu.Unlock()
	return nil
}

// closeDB closes every connection and the pool. The caller holds mu for
// writing (or owns f exclusively), so every reader is back in the pool.
func (f *FSM) closeDB() error {
	var errs []error
	if f.w != nil {
		errs = append(errs, f.w.close())
		f.w = nil
	}
	if f.readers != nil {
		for len(f.readers) > 0 {
			errs = append(errs, (<-f.readers).close())
		}
		f.readers = nil
	}
	if f.wdb != nil {
		errs = append(errs, f.wdb.Close())
		f.wdb = nil
	}
	if f.db != nil {
		errs = append(errs, f.db.Close())
		f.db = nil
	}
	errs = append(errs, f.det.closeHelper())
	return errors.Join(errs...)
}

// Close closes the database. It waits for running queries and for a
// snapshot that is still copying pages. Waiters in WaitApplied return
// ErrClosed.
func (f *FSM) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	close(f.done)
	f.waitRestoreSynced()
	if err := f.closeDB(); err != nil {
		return fmt.Errorf("close fsm: %w", err)
	}
	return nil
}

// Err returns the error that halted the FSM, or nil. Once a batch of
// committed entries could not be written (disk full, I/O error), applying
// later entries on top would silently drop the failed ones, so the FSM
// refuses all further entries and snapshots; the node must be restarted,
// after which Raft replays the entries after the stored applied index.
func (f *FSM) Err() error {
	if p := f.failure.Load(); p != nil {
		return *p
	}
	return nil
}

// halt records err as the reason the FSM stopped applying.
func (f *FSM) halt(err error) {
	if f.failure.CompareAndSwap(nil, &err) {
		f.logger.Error("state machine halted: committed entries could not be applied; restart the node once the cause is fixed",
			"error", err, "applied_index", f.applied.Load())
	}
}

// AppliedIndex returns the index of the last log entry applied to the
// database. It counts the entries Raft hands to the FSM (commands and
// configuration changes), not no-ops or barriers, so it can trail Raft's own
// applied index.
func (f *FSM) AppliedIndex() uint64 { return f.applied.Load() }

// AppliedAt is when this node last applied a batch of log entries (its own
// clock), the zero time if it has applied none since Open. Restoring a
// snapshot does not count: it says nothing about how recent the entries
// were.
func (f *FSM) AppliedAt() time.Time {
	ns := f.appliedAt.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// setApplied publishes idx as the applied index and wakes WaitApplied.
func (f *FSM) setApplied(idx uint64) {
	f.waitMu.Lock()
	defer f.waitMu.Unlock()
	f.applied.Store(idx)
	close(f.waitCh)
	f.waitCh = make(chan struct{})
}

// WaitApplied blocks until the applied index reaches index, ctx ends or the
// FSM closes. The index must be one the FSM will see: a command or
// configuration entry (see AppliedIndex).
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	for {
		f.waitMu.Lock()
		ch := f.waitCh
		f.waitMu.Unlock()
		if f.applied.Load() >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("wait for applied index %d (at %d): %w", index, f.applied.Load(), ctx.Err())
		case <-f.done:
			return ErrClosed
		}
	}
}

// Nodes returns a copy of the replicated member metadata, by node ID.
func (f *FSM) Nodes() map[string]NodeMeta {
	f.nodesMu.RLock()
	defer f.nodesMu.RUnlock()
	m := make(map[string]NodeMeta, len(f.nodes))
	for id, n := range f.nodes {
		m[id] = n
	}
	return m
}

// Stats returns diagnostics for /status ("store.sqlite3"). It does no I/O
// beyond stat calls, so it is cheap enough for every status request.
func (f *FSM) Stats() map[string]any {
	f.mu.RLock()
	fk, version, pragmas := f.fkOn, f.version, f.pragmas
	f.mu.RUnlock()
	fkText := "disabled"
	if fk {
		fkText = "enabled"
	}
	st := map[string]any{
		"path":           f.path,
		"version":        version,
		"fk_constraints": fkText,
		"applied_index":  f.applied.Load(),
		"journal_mode":   "wal",
		"synchronous":    "normal",
		"read_conns":     f.nReader,
		"db_size":        fileSize(f.path),
		"wal_size":       fileSize(f.path + "-wal"),
		"pragmas":        pragmas,
	}
	f.nodesMu.RLock()
	st["nodes"] = len(f.nodes)
	f.nodesMu.RUnlock()
	// The newest checksum taken at a checksum marker; computing one here
	// would cost a pass over the data (see Checksum).
	if idx, sum, at := f.LastChecksum(); idx > 0 {
		st["checksum"] = map[string]any{"index": idx, "checksum": sum, "time": at.UTC().Format(time.RFC3339Nano)}
	}
	if err := f.Err(); err != nil {
		st["error"] = err.Error()
	}
	st["watch"] = f.watchStats()
	return st
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
