package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// Node is one member of a raftlite cluster: a running Raft instance whose
// state machine is the FSM handed to Open. All methods are safe for
// concurrent use.
type Node struct {
	cfg     Config
	id      string
	advAddr string       // Raft address other nodes use
	logger  *slog.Logger // component=cluster
	base    *slog.Logger // without the component attribute
	fsm     StateMachine

	raft      *raft.Raft
	reach     *followerReachability // the leader's view of its followers, for logs and reaping
	transport *raft.NetworkTransport
	layer     *raftLayer
	store     *raftboltdb.BoltStore
	wal       *walLogStore     // the log store's write-ahead file, in front of store
	logs      *meteredLogStore // raft's log store: store, cached and measured
	snaps     *snapshotStore   // raft's snapshot store, for /status
	mux       *mux
	server    *http.Server
	client    *serviceClient

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // background goroutines

	closed       atomic.Bool
	raftDown     chan struct{} // closed once raft has shut down
	raftDownOnce sync.Once
	closeOnce    sync.Once
	closeErr     error
	// halted receives why the node stopped itself (see Halted); halting
	// is set first, for Close (the caller may have drained halted).
	halted  chan error
	halting atomic.Bool

	// memberMu serialises the leader's membership and metadata changes, so
	// that a check of the configuration and the change that follows it are
	// not interleaved with another.
	memberMu sync.Mutex
	boot     bootState
	// formStatus says why a node started without Raft state is not yet
	// part of a cluster (see Form); nil once it is, or if it had state.
	formStatus atomic.Pointer[string]
	// readyTerm is the term in which this node, as leader, has applied a
	// barrier: every entry committed before its term is then applied
	// locally (see readIndex).
	readyTerm atomic.Uint64
	// reads batches concurrent read-index requests (see ReadIndex).
	reads readIndexState
	// lease is the leader's read lease (Config.ReadLease).
	lease readLease
	// lastMetaWarn is when reconcile last warned (watch goroutine only).
	lastMetaWarn time.Time

	// startup is Config.Startup, or a private one.
	startup *Startup
	// replayTo is the FSM's applied index at the start while raft is
	// re-delivering the entries up to it, else 0 (see startReplay).
	replayTo atomic.Uint64

	metrics metrics
	// proposer gathers concurrent writes into entries (see Execute).
	proposer proposer
	// chunkMu lets one write at a time be proposed in parts (see
	// proposeChunked).
	chunkMu sync.Mutex
}

// Open starts a cluster node (Start) and makes it part of a cluster (Form),
// blocking until that has succeeded or failed. Open does not wait for a
// leader; see Ready. The caller keeps ownership of f and must close it after
// Node.Close.
func Open(cfg Config, f StateMachine, logger *slog.Logger) (*Node, error) {
	return OpenContext(context.Background(), cfg, f, logger)
}

// OpenContext is Open with a context bounding the bootstrap or join.
func OpenContext(ctx context.Context, cfg Config, f StateMachine, logger *slog.Logger) (*Node, error) {
	n, err := Start(cfg, f, logger)
	if err != nil {
		return nil, err
	}
	if err := n.Form(ctx); err != nil {
		if cerr := n.Close(); cerr != nil {
			n.logger.Warn("close after failed bootstrap or join", "error", cerr)
		}
		return nil, err
	}
	return n, nil
}

// Start starts a cluster node: it binds the Raft port, opens the Raft stores
// in cfg.Dir/raft and starts Raft with f as the state machine. A node with
// Raft state rejoins its cluster by itself; a node without must then be
// made part of one with Form. Splitting the two lets a caller serve its
// HTTP API (and so /readyz, saying why the node is not ready) while Form
// waits for the other nodes. The caller keeps ownership of f and must close
// it after Node.Close.
func Start(cfg Config, f StateMachine, logger *slog.Logger) (n *Node, err error) {
	if given := cfg.Listener; given != nil {
		// The node owns a given listener, also when Start fails. (A second
		// Close after the mux closed it is harmless.)
		defer func() {
			if err != nil {
				given.Close()
			}
		}()
	}
	if f == nil {
		return nil, errors.New("cluster: open: nil FSM")
	}
	if logger == nil {
		logger = slog.Default()
	}
	explicitAdv := cfg.RaftAdvAddr != ""
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := logger.With("node_id", cfg.NodeID)
	logger = base.With("component", "cluster")
	raftDir := filepath.Join(cfg.Dir, "raft")
	if err := os.MkdirAll(raftDir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: create raft directory: %w", err)
	}

	dial := dialer{tls: cfg.ClientTLS}
	n = &Node{cfg: cfg, id: cfg.NodeID, logger: logger, base: base, fsm: f, client: newServiceClient(dial),
		startup: cmp.Or(cfg.Startup, new(Startup))}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.metrics.register(cfg.Metrics)
	n.proposer.n = n
	n.proposer.committed = make(chan struct{}, 1)
	n.initReads()
	n.raftDown = make(chan struct{})
	n.halted = make(chan error, 1)
	n.boot.peers = make(map[string]peerInfo)
	n.boot.wake = make(chan struct{}, 1)
	defer func() {
		if err != nil {
			if cerr := n.Close(); cerr != nil {
				logger.Warn("cleanup after failed open", "error", cerr)
			}
			n = nil
		}
	}()

	// The port: Raft and the cluster service share it.
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			return n, fmt.Errorf("cluster: listen on %s: %w", cfg.RaftAddr, err)
		}
	}
	n.advAddr = cfg.RaftAdvAddr
	if !explicitAdv {
		n.advAddr = ln.Addr().String()
	}
	n.mux = newMux(ln, cfg.ServerTLS, logger)
	n.layer = newRaftLayer(n.mux.listen(headerRaft, tcpAddr(n.advAddr)), dial)
	svcLn := n.mux.listen(headerCluster, tcpAddr(n.advAddr))
	n.mux.serve()

	n.reach = newFollowerReachability(logger)
	hlog := n.raftLogger()
	n.startup.SetPhase(PhaseOpeningLog)
	n.logger.Info("opening the raft log", "dir", raftDir)

	// Stores: BoltDB for the log and stable state, an in-memory cache of
	// recent entries in front of it, and files for snapshots.
	n.store, err = raftboltdb.New(raftboltdb.Options{
		Path: filepath.Join(raftDir, "raft.db"),
		// Fail fast rather than hang when another process holds the lock.
		BoltOptions: &bbolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
	})
	if err != nil {
		return n, fmt.Errorf("cluster: open raft log store %s: %w", filepath.Join(raftDir, "raft.db"), err)
	}
	n.wal, err = openWALLogStore(filepath.Join(raftDir, walFile), n.store, logger, n.metrics.countSyncs)
	if err != nil {
		return n, fmt.Errorf("cluster: %w", err)
	}
	n.wal.failed = func(err error) { go n.halt(fmt.Errorf("cluster: raft log: %w", err)) }
	n.logs = newMeteredLogStore(newLogCache(n.wal, logCacheSize, logCacheBytes), cfg.SnapshotLogSize, &n.metrics)
	// Holding the log store's lock, this is the only process using the
	// directory: no snapshot is being written.
	snaps, err := newSnapshotStore(raftDir, snapshotRetain, f.PrepareRestore, n.base.With("component", "snapshots"))
	if err != nil {
		return n, fmt.Errorf("cluster: %w", err)
	}
	snaps.completed = n.logs.snapshotted
	n.snaps = snaps

	n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  n.layer,
		MaxPool: transportMaxPool,
		Timeout: transportTimeout,
		Logger:  hlog.Named("transport"),
	})

	if err := n.repairPendingLoad(raftDir, n.logs, snaps); err != nil {
		return n, err
	}
	if err := n.recoverFromPeersFile(hlog, n.logs, snaps); err != nil {
		return n, err
	}
	hasState, err := raft.HasExistingState(n.logs, n.store, snaps)
	if err != nil {
		return n, fmt.Errorf("cluster: check existing raft state: %w", err)
	}

	if !hasState {
		n.setFormStatus("started without Raft state: not yet bootstrapped or joined")
	}
	if !hasState && f.AppliedIndex() > 0 {
		// Entries of the new log would be skipped as already applied.
		return n, fmt.Errorf("cluster: the database has applied log index %d but %s holds no Raft state: "+
			"it belongs to another cluster's history; remove the database or restore the Raft directory", f.AppliedIndex(), raftDir)
	}
	rc, err := n.raftConfig(hlog, n.logs, snaps)
	if err != nil {
		return n, err
	}
	guard := newVoteGuard(n.ctx, n.transport, n.cfg.HeartbeatTimeout)
	check := &snapshotSendCheck{voteGuard: guard, damaged: n.replaceDamagedSnapshot}
	trans := noPipeline{&resendAppends{snapshotSendCheck: check, send: n.metrics.timedAppend(n.wal.clampCommit(check.AppendEntries)), ctx: n.ctx, wanted: n.replicationWanted, reach: n.reach}}
	n.raft, err = n.newRaft(rc, n.logs, snaps, trans)
	if err != nil {
		return n, fmt.Errorf("cluster: start raft: %w", err)
	}
	n.reach.raft.Store(n.raft)
	var state raftState = n.raft
	guard.raft.Store(&state)
	role := func() string {
		if n.raft.State() == raft.Leader {
			return roleLeader
		}
		return roleFollower
	}
	n.logs.role.Store(&role)
	leading := func() bool { return n.raft.State() == raft.Leader }
	n.wal.leading.Store(&leading)
	n.registerGauges(cfg.Metrics)
	n.startReplay()

	n.server = newServiceServer(n, logger)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if err := n.server.Serve(svcLn); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			logger.Error("cluster service stopped", "error", err)
		}
	}()
	n.wg.Add(1)
	go n.watch()
	n.wg.Add(1)
	go n.watchWAL()
	n.wg.Add(1)
	go n.watchLogSize()
	n.wg.Add(1)
	go n.watchAutoVacuum()

	logger.Info("raft started", "raft_addr", n.advAddr, "api_addr", cfg.APIAdvAddr, "dir", raftDir, "existing_state", hasState)
	if hasState && (len(cfg.Join) > 0 || cfg.BootstrapExpect > 0) {
		logger.Info("existing raft state: ignoring join and bootstrap-expect settings")
	}
	return n, nil
}

// Form makes a node started without Raft state part of a cluster, as
// configured: it bootstraps one with BootstrapExpect nodes, joins one, or
// bootstraps a single-node cluster. It blocks until that has succeeded or
// failed; meanwhile, and after a failure, Ready says why the node is not
// part of a cluster. A node with Raft state is part of its cluster already:
// Form returns nil at once. Form must not run concurrently with itself.
func (n *Node) Form(ctx context.Context) error {
	if n.formStatus.Load() == nil {
		return nil
	}
	// Close ends the wait too.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(n.ctx, cancel)()
	n.startup.SetPhase(PhaseFormingCluster)
	if err := n.form(ctx); err != nil {
		n.setFormStatus(err.Error())
		return err
	}
	n.formStatus.Store(nil)
	return nil
}

// setFormStatus records why this node is not (yet) part of a cluster, for
// Ready.
func (n *Node) setFormStatus(reason string) { n.formStatus.Store(&reason) }

// raftLogger is the hclog.Logger handed to hashicorp/raft.
func (n *Node) raftLogger() *slogHCLog {
	level, _ := parseRaftLogLevel(n.cfg.RaftLogLevel)
	return newSlogHCLog(n.base.With("component", "raft"), "raft", level, n.reach)
}

// raftConfig builds hashicorp/raft's configuration.
func (n *Node) raftConfig(hlog *slogHCLog, logs raft.LogStore, snaps raft.SnapshotStore) (*raft.Config, error) {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.LeaderLeaseTimeout
	rc.CommitTimeout = n.cfg.CommitTimeout
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.TrailingLogs
	rc.MaxAppendEntries = n.cfg.MaxAppendEntries
	// Let concurrent Apply calls queue up to MaxAppendEntries deep so that
	// raft batches them into one disk write and one FSM batch.
	rc.BatchApplyCh = true
	// A removed node stops taking part; it would otherwise keep calling
	// elections it can only lose.
	rc.ShutdownOnRemove = true
	rc.Logger = hlog

	// Restoring the latest snapshot at start is unnecessary when the
	// database file is at least as new as that snapshot: the FSM keeps its
	// applied index inside the database (committed in the same SQLite
	// transaction as the entries), every snapshot is a copy of that file
	// taken at the index it records, and the file never goes back, so
	// raft's replay from the snapshot index onwards only re-delivers entries
	// the FSM skips by index. The one case where the file can be older is a
	// crash after raft stored a snapshot received from the leader
	// (InstallSnapshot) but before the FSM restored it; then the snapshot
	// must be restored, and the log may no longer hold the entries between.
	// So skip the restore exactly when the FSM is not behind. (Either way
	// raft re-delivers committed entries after the snapshot index; the FSM
	// ignores those at or below its applied index.)
	rc.NoSnapshotRestoreOnStart = true
	metas, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("cluster: list raft snapshots: %w", err)
	}
	if len(metas) > 0 && dbBehind(logs, n.fsm.AppliedIndex(), metas[0].Index) {
		n.logger.Warn("database is older than the latest raft snapshot: restoring the snapshot",
			"fsm_index", n.fsm.AppliedIndex(), "snapshot_index", metas[0].Index)
		rc.NoSnapshotRestoreOnStart = false
		n.metrics.snapshotsRestored.Add(1)
	}
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("cluster: raft config: %w", err)
	}
	return rc, nil
}

// maxBehindScan bounds how many log entries dbBehind inspects.
const maxBehindScan = 4096

// dbBehind reports whether the database (at FSM applied index fsmIndex)
// misses entries up to index (a snapshot's index, or the commit index).
// Raft's indexes also count entries the FSM never sees (no-ops, barriers),
// so an index above fsmIndex alone does not mean the database is behind: it
// is when an entry the FSM applies (command or configuration) lies in
// between, or when the entries in between are no longer in the log and so
// cannot be checked.
func dbBehind(logs raft.LogStore, fsmIndex, index uint64) bool {
	if index <= fsmIndex {
		return false
	}
	if index-fsmIndex > maxBehindScan {
		return true
	}
	for i := fsmIndex + 1; i <= index; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return true
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return true
		}
	}
	return false
}

// Close stops the node: Raft (bounded by CloseTimeout), the cluster service,
// the transport, the port and the stores. It does not close the FSM. Calling
// Close again returns the first result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() { n.closeErr = n.close() })
	return n.closeErr
}

func (n *Node) close() error {
	if n.raft != nil && n.cfg.StepDownOnClose && !n.halting.Load() {
		if err := n.HandOver(context.Background()); err != nil {
			n.logger.Warn("leadership transfer before close failed", "error", err)
		}
	}
	n.closed.Store(true)
	n.stopReads()
	n.cancel()
	var errs []error

	raftStopped := true
	if n.raft != nil {
		done := make(chan error, 1)
		go func() { done <- n.raft.Shutdown().Error() }()
		n.markRaftDown()
		select {
		case err := <-done:
			if err != nil {
				errs = append(errs, fmt.Errorf("shut down raft: %w", err))
			}
		case <-time.After(n.cfg.CloseTimeout):
			raftStopped = false
			errs = append(errs, fmt.Errorf("shut down raft: timed out after %s", n.cfg.CloseTimeout))
		}
	}
	if n.server != nil {
		if err := n.server.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close cluster service: %w", err))
		}
	}
	n.client.close()
	if n.transport != nil {
		if err := n.transport.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft transport: %w", err))
		}
		n.transport.CloseStreams() // pooled outgoing connections
		n.layer.closeConns()       // incoming connections
	}
	if n.mux != nil {
		if err := n.mux.close(); err != nil {
			errs = append(errs, fmt.Errorf("close raft listener: %w", err))
		}
	}
	n.wg.Wait()
	if n.store != nil {
		if raftStopped {
			if n.wal != nil {
				if err := n.wal.Close(); err != nil {
					errs = append(errs, fmt.Errorf("close raft write-ahead file: %w", err))
				}
			}
			if err := n.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close raft log store: %w", err))
			}
		} else {
			n.logger.Error("raft did not stop: leaving its log store open")
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: close: %w", err)
	}
	n.logger.Info("closed")
	return nil
}

// Halted receives, once, the error for which the node stopped itself: its
// state may differ from what the cluster committed (see loadpending.go),
// and a restart repairs it. The process should exit non-zero so that its
// supervisor restarts it.
func (n *Node) Halted() <-chan error { return n.halted }

// halt stops the node for err (see Halted), without handing leadership
// over: a leader holding state the cluster never committed must not make
// another node catch up with it.
func (n *Node) halt(err error) {
	n.logger.Error("stopping the node: restart it to repair its state", "error", err)
	n.halting.Store(true)
	select {
	case n.halted <- err:
	default:
	}
	if cerr := n.Close(); cerr != nil {
		n.logger.Warn("close after halt", "error", cerr)
	}
}

// ID returns this node's ID.
func (n *Node) ID() string { return n.id }

// RaftAddr returns the Raft address other nodes use to reach this one.
func (n *Node) RaftAddr() string { return n.advAddr }

// APIAddr returns this node's advertised HTTP API address.
func (n *Node) APIAddr() string { return n.cfg.APIAdvAddr }

// Execute proposes req (in one log entry with the writes that wait
// alongside it, see proposer) and returns the FSM's response once it is
// committed and applied here. Only the leader proposes: elsewhere it
// returns api.ErrNotLeader without proposing. A request-level failure decided by
// the FSM (e.g. a superseded sequence number) is in the response's Err field,
// not in the returned error. Errors for which api.IsAmbiguous is true
// (api.ErrLeadershipLost, api.ErrCommitTimeout) mean the write may or may not have
// been applied. Concurrent calls pipeline: raft batches them.
func (n *Node) Execute(ctx context.Context, req *api.Request) (resp *api.Response, err error) {
	start := time.Now()
	defer func() { n.metrics.observeExecute(start, err) }()
	if req == nil {
		return nil, errors.New("cluster: execute: nil request")
	}
	if err := n.canPropose(); err != nil {
		return nil, err
	}
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	return n.proposer.execute(ctx, req)
}

// canPropose says why this node cannot propose now, if it cannot.
func (n *Node) canPropose() error {
	if n.closed.Load() {
		return api.ErrClosed
	}
	if n.raft.State() != raft.Leader {
		return api.ErrNotLeader
	}
	if err := n.fsm.Err(); err != nil {
		// It would commit the entry but could not apply it here, so it
		// could not tell the outcome.
		return fmt.Errorf("%w: %w", api.ErrHalted, err)
	}
	return nil
}

// propose stamps cmd with the leader's time and a random seed, proposes it
// (in parts if it encodes to more than MaxEntryBytes) and waits for it to
// be applied locally, returning the FSM's response.
func (n *Node) propose(ctx context.Context, cmd *fsm.Command) (any, error) {
	return n.proposeThen(ctx, cmd, func() {})
}

// proposeThen is propose, calling handed once the entry is in raft's
// queue (for a command proposed in parts, once the last part is), or
// proposing has failed.
func (n *Node) proposeThen(ctx context.Context, cmd *fsm.Command, handed func()) (any, error) {
	var once sync.Once
	handedOnce := func() { once.Do(handed) }
	defer handedOnce()
	if err := n.canPropose(); err != nil {
		return nil, err
	}
	cmd.Timestamp = time.Now().UnixNano()
	cmd.Seed = rand.Uint64()
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return nil, fmt.Errorf("cluster: encode command: %w", err)
	}
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", api.ErrEnqueueTimeout, err)
	}
	if len(data) > n.cfg.MaxEntryBytes {
		return n.proposeChunked(ctx, cmd.Timestamp, data)
	}
	proposed := time.Now()
	f := n.applyAsync(ctx, data)
	handedOnce()
	res, err := n.applied(ctx, f)
	if err != nil {
		return nil, err
	}
	n.metrics.commitSeconds.Observe(time.Since(proposed).Seconds())
	return res, nil
}

// apply proposes one entry and waits for it to be applied locally.
func (n *Node) apply(ctx context.Context, data []byte) (any, error) {
	return n.applied(ctx, n.applyAsync(ctx, data))
}

// applyAsync hands one entry to raft.
func (n *Node) applyAsync(ctx context.Context, data []byte) raft.ApplyFuture {
	deadline, _ := ctx.Deadline()
	return n.raft.Apply(data, time.Until(deadline))
}

// applied waits for an entry handed to raft to be applied locally.
func (n *Node) applied(ctx context.Context, f raft.ApplyFuture) (any, error) {
	if err := n.wait(ctx, f); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, fmt.Errorf("%w: %w", api.ErrCommitTimeout, ctxErr)
		}
		return nil, mapApplyError(err)
	}
	return f.Response(), nil
}

// withApplyTimeout bounds ctx by ApplyTimeout unless it has a deadline.
func (n *Node) withApplyTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, n.cfg.ApplyTimeout)
}

// wait waits for a raft future, for ctx to end, or for raft to shut down.
// The last is needed because raft's request channels are buffered: a request
// queued just as raft shuts down (e.g. after removing this node) is never
// answered, and its waiter would otherwise hang until its deadline.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-n.raftDown:
		// Let an answer racing with the shutdown win.
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case err := <-done:
			return err
		case <-t.C:
			return raft.ErrRaftShutdown
		}
	}
}

// shutdownGrace is how long a waiter gives a future after raft shut down.
const shutdownGrace = 100 * time.Millisecond

// markRaftDown records that raft has shut down (by Close, or by itself after
// this node was removed).
func (n *Node) markRaftDown() {
	n.raftDownOnce.Do(func() { close(n.raftDown) })
}

// Query reads the local copy of the database (no consistency check; callers
// check leadership, a read index or freshness first as their level needs).
// On the leader it answers only once what it read is committed, which
// during a load it may not be yet (see awaitCommitted); it fails with
// api.ErrNotLeader if the node is deposed before (the HTTP layer then sends
// the read to the new leader).
func (n *Node) Query(ctx context.Context, req *api.Request) ([]api.Result, error) {
	term, leader := n.raft.CurrentTerm(), n.IsLeader()
	res, err := n.fsm.Query(ctx, req)
	if err != nil || !leader {
		return res, err
	}
	deposed := func() bool { return n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term }
	if _, err := n.awaitCommitted(ctx, deposed, func() (uint64, error) { return n.fsm.AppliedIndex(), nil }); err != nil {
		return nil, fmt.Errorf("cluster: query: %w", err)
	}
	return res, nil
}

// AllReadOnly reports whether every statement of req is read-only.
func (n *Node) AllReadOnly(ctx context.Context, req *api.Request) (bool, error) {
	return n.fsm.AllReadOnly(ctx, req)
}

// WaitApplied waits until the local FSM has applied the log entry at index
// (the FSM's applied index, not raft's).
func (n *Node) WaitApplied(ctx context.Context, index uint64) error {
	return n.fsm.WaitApplied(ctx, index)
}

// AppliedIndex returns the FSM's applied index.
func (n *Node) AppliedIndex() uint64 { return n.fsm.AppliedIndex() }

// IsLeader reports whether this node currently believes it is the leader.
func (n *Node) IsLeader() bool {
	return !n.closed.Load() && n.raft.State() == raft.Leader
}

// VerifyLeader confirms with a quorum round that this node is still the
// leader; it returns api.ErrNotLeader otherwise. hashicorp/raft also counts
// answers to replication RPCs sent before the call, so after a long pause
// this can confirm a leadership that has already passed; ReadIndex does not
// rely on it (see there).
func (n *Node) VerifyLeader(ctx context.Context) error {
	if n.closed.Load() {
		return api.ErrClosed
	}
	if n.raft.State() != raft.Leader {
		return api.ErrNotLeader
	}
	if err := n.wait(ctx, n.raft.VerifyLeader()); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: verify leader: %w", err)
		}
		return mapError(err)
	}
	return nil
}

// LeaderID returns the ID of the leader this node knows of, or "".
func (n *Node) LeaderID() string {
	if n.closed.Load() {
		return ""
	}
	_, id := n.raft.LeaderWithID()
	return string(id)
}

// LeaderAddr returns the Raft address of the known leader, or "".
func (n *Node) LeaderAddr() string {
	if n.closed.Load() {
		return ""
	}
	addr, _ := n.raft.LeaderWithID()
	return string(addr)
}

// LeaderAPIAddr returns the HTTP API address of the known leader from the
// replicated metadata, or "" when no leader or no metadata is known.
func (n *Node) LeaderAPIAddr() string {
	id := n.LeaderID()
	if id == "" {
		return ""
	}
	return n.fsm.Nodes()[id].APIAddr
}

// Ready returns nil when the node is open, its state machine is healthy
// (not halted by a failed write), it is part of a cluster (see Form), it
// knows a leader and, after a restart, raft has replayed its log up to where
// the database was. Otherwise its error says which of these is missing.
func (n *Node) Ready() error {
	if n.closed.Load() || n.raft.State() == raft.Shutdown {
		return api.ErrClosed
	}
	if err := n.fsm.Err(); err != nil {
		return fmt.Errorf("cluster: state machine halted: %w", err)
	}
	if reason := n.formStatus.Load(); reason != nil {
		return fmt.Errorf("cluster: %w: %s", ErrNotFormed, *reason)
	}
	if n.LeaderID() == "" {
		return api.ErrNoLeader
	}
	return n.replaying()
}

// servers returns the latest Raft configuration's servers.
func (n *Node) servers() ([]raft.Server, error) {
	if n.closed.Load() {
		return nil, api.ErrClosed
	}
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("cluster: get raft configuration: %w", mapError(err))
	}
	return f.Configuration().Servers, nil
}
