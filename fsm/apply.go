package fsm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/raftlite/raftlite/api"
)

// entry is the log entry being applied, as the apply path sees it. The
// proposing leader chose Timestamp and Seed, so that behaviour that depends
// on time or randomness can be made identical on every replica.
type entry struct {
	Index     uint64
	Timestamp int64 // Unix nanoseconds
	Seed      uint64
}

// nodeOp is a change to the in-memory copy of _raftlite_nodes, made once the
// batch that wrote it has committed.
type nodeOp struct {
	remove bool
	meta   NodeMeta
}

// batch is the state of one ApplyBatch call.
type batch struct {
	logs  []*raft.Log
	from  uint64 // entries at or below this index were applied before
	last  uint64 // the index the batch brings the database to
	resps []any
	// settled holds the responses of entries whose own statements ended
	// the batch transaction (ON CONFLICT ROLLBACK, RAISE(ROLLBACK)). Such
	// an entry has no effect; the batch is rerun without it.
	settled map[settledKey]*api.Response
	nodeOps []nodeOp
	// cmds holds the decoded commands (nil where an entry is not a new
	// command), and decodeErrs why an entry did not decode, so a rerun
	// decodes nothing again.
	cmds       []*Command
	decodeErrs []error
	// sess is what the batch changes in the session counters, and
	// oldestSeen the lower bound of the oldest session's last_seen as the
	// batch goes (see sweepSessions).
	sess       sessionCounts
	oldestSeen int64
	// watch is the change history's state as the batch goes.
	watch watchState
}

// Apply applies one log entry; see ApplyBatch.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// ApplyBatch applies committed entries in one SQLite transaction, so a batch
// costs one commit however many entries it holds. Each entry runs inside a
// savepoint, and each statement of a multi-statement request without
// Transaction inside its own, so that a failing statement undoes exactly its
// own changes.
//
// The response for an entry is:
//   - *Response for an execute command (Index is the entry's index), for
//     a node command and for a chunk (the last chunk's is the whole
//     command's response);
//   - BatchResponse for a CmdBatch, a *Response per request;
//   - nil for a configuration entry;
//   - an error for an entry that does not decode (every replica fails it
//     the same way, so the batch goes on), or for every entry when the
//     batch could not be committed.
//
// The applied index is stored in the same transaction, and entries at or
// below it are skipped (answered with a Response without results), so a
// restart or a replay never applies an entry twice.
//
// If the batch cannot be committed (disk full, I/O error), the transaction
// is rolled back, leaving the database at the previous batch, and the FSM
// halts (see Err): Raft considers these entries applied, so carrying on
// with later entries would lose them.
//
// A batch ends at a checksum marker (CmdChecksum): the entries up to it are
// committed, the checksum at its index is pinned (see checksum.go), and the
// rest are applied as a batch of their own. A batch likewise ends at an
// entry holding a VACUUM, which runs once the entries up to it have
// committed (see vacuum.go).
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	var resps []any
	start := 0
	for i, l := range logs {
		marker := isChecksumMarker(l)
		if !marker && !holdsVacuum(l) {
			continue
		}
		var r *checksumResult
		if marker && l.Index > f.applied.Load() {
			r = f.checksums.expect(l.Index)
		}
		part := f.applyBatch(logs[start : i+1])
		if start == 0 && i == len(logs)-1 {
			resps = part
		} else {
			resps = append(resps, part...)
		}
		if r != nil {
			if err, ok := part[len(part)-1].(error); ok {
				f.checksums.finish(l.Index, r, "", err)
			} else {
				f.pinChecksum(l.Index, r)
			}
		}
		start = i + 1
	}
	if start == 0 {
		return f.applyBatch(logs)
	}
	return append(resps, f.applyBatch(logs[start:])...)
}

// applyBatch applies logs in one transaction; see ApplyBatch.
func (f *FSM) applyBatch(logs []*raft.Log) []any {
	resps := make([]any, len(logs))
	if len(logs) == 0 {
		return resps
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	fail := func(err error) []any {
		for i := range resps {
			resps[i] = err
		}
		return resps
	}
	if f.closed {
		return fail(ErrClosed)
	}
	if err := f.Err(); err != nil {
		return fail(fmt.Errorf("fsm halted: %w", err))
	}

	start := time.Now()
	b := &batch{logs: logs, from: f.applied.Load(), resps: resps, settled: map[settledKey]*api.Response{},
		cmds: make([]*Command, len(logs)), decodeErrs: make([]error, len(logs))}
	b.last = b.from
	for i, l := range logs {
		if l.Index > b.from {
			b.last = max(b.last, l.Index)
			if l.Type == raft.LogCommand {
				b.cmds[i], b.decodeErrs[i] = DecodeCommand(l.Data)
				if b.decodeErrs[i] != nil {
					f.logger.Warn("skipping undecodable log entry", "index", l.Index, "error", b.decodeErrs[i])
				}
			}
		} else if l.Type == raft.LogCommand {
			resps[i] = &api.Response{Index: l.Index}
		}
	}
	if b.last == b.from {
		return resps
	}

	for {
		lost, err := f.runBatch(b)
		if err != nil {
			err = fmt.Errorf("apply entries %d-%d: %w", logs[0].Index, logs[len(logs)-1].Index, err)
			f.halt(err)
			return fail(err)
		}
		if lost < 0 {
			break
		}
	}
	if f.vacuumDue {
		if err := f.vacuum(context.Background()); err != nil {
			// The entries are committed: their answers stand, and
			// Open runs the VACUUM again (vacuum_pending is set).
			f.halt(fmt.Errorf("entry %d: %w", b.last, err))
		}
	}
	if f.afterCommit != nil {
		f.afterCommit(b.last)
	}
	f.setApplied(b.last)
	f.appliedAt.Store(time.Now().UnixNano())
	f.applyNodeOps(b.nodeOps)
	f.sessions.add(b.sess)
	f.oldestSeen = b.oldestSeen
	f.watch = b.watch
	f.publishWatch()
	f.metrics.observeBatch(start, len(logs))
	return resps
}

// runBatch runs the batch in one transaction. It returns the position of an
// entry that ended the transaction itself, after settling its response, or
// -1 once the batch has committed. An error means the transaction was rolled
// back and nothing of the batch is applied.
func (f *FSM) runBatch(b *batch) (lost int, err error) {
	ctx := context.Background()
	w := f.w
	b.nodeOps = b.nodeOps[:0]
	b.sess = sessionCounts{}
	b.oldestSeen = f.oldestSeen
	f.vacuumDue = false
	b.watch = f.watch
	if _, err := w.begin.ExecContext(ctx); err != nil {
		return -1, fmt.Errorf("begin: %w", err)
	}
	defer func() {
		if err != nil || lost >= 0 {
			f.rollbackQuietly(ctx)
		}
	}()

	for i, l := range b.logs {
		if l.Index <= b.from {
			continue
		}
		if l.Type != raft.LogCommand {
			b.resps[i] = nil
			continue
		}
		cmd := b.cmds[i]
		if err := b.decodeErrs[i]; err != nil {
			b.resps[i] = fmt.Errorf("apply entry %d: %w", l.Index, err)
			continue
		}
		// Sessions expire by the leader's clock as the log moves on,
		// whatever the entry is.
		if err := f.sweepSessions(ctx, cmd.Timestamp, &b.oldestSeen, &b.sess); err != nil {
			return -1, fmt.Errorf("entry %d: %w", l.Index, err)
		}
		// The entry's row changes are recorded for /db/watch as its
		// requests run, and stored once, in one history row.
		f.w.cap.startEntry()
		ended, err := f.applyCommand(ctx, b, i, cmd)
		if err != nil {
			return -1, fmt.Errorf("entry %d: %w", l.Index, err)
		}
		if ended {
			return i, nil
		}
		if err := f.storeChanges(ctx, entry{Index: l.Index, Timestamp: cmd.Timestamp}, &b.watch); err != nil {
			return -1, fmt.Errorf("entry %d: %w", l.Index, err)
		}
		// History is trimmed by the leader's clock and the index as the
		// log moves on, whatever the entry is.
		if err := f.trimChanges(ctx, l.Index, cmd.Timestamp, &b.watch); err != nil {
			return -1, fmt.Errorf("entry %d: %w", l.Index, err)
		}
	}
	if err := w.storeWatchState(ctx, &b.watch); err != nil {
		return -1, err
	}
	if err := w.storeSessionCounts(ctx, b.sess); err != nil {
		return -1, err
	}
	if f.vacuumDue {
		if _, err := w.setVacuumPending.ExecContext(ctx); err != nil {
			return -1, fmt.Errorf("store %s: %w", vacuumPendingKey, err)
		}
	}
	if _, err := w.setApplied.ExecContext(ctx, int64(b.last)); err != nil {
		return -1, fmt.Errorf("store applied index: %w", err)
	}
	if _, err := w.commit.ExecContext(ctx); err != nil {
		return -1, fmt.Errorf("commit: %w", err)
	}
	return -1, nil
}

// settledKey names a request whose statements ended the batch
// transaction: the entry's position in the batch and the request's in
// the entry (0 but for CmdBatch).
type settledKey struct{ entry, request int }

// applyCommand applies cmd, the command of the batch's entry i, inside the
// batch transaction and sets its response. ended reports that one of its
// requests ended the transaction (its response is then settled, and the
// batch is rerun); an error must halt the batch.
func (f *FSM) applyCommand(ctx context.Context, b *batch, i int, cmd *Command) (ended bool, err error) {
	w := f.w
	index := b.logs[i].Index
	switch cmd.Type {
	case CmdExecute:
		key := settledKey{entry: i}
		resp, ended, err := f.execute(ctx, entry{Index: index, Timestamp: cmd.Timestamp, Seed: cmd.Seed}, cmd.Request, b.settled[key], b)
		if err != nil {
			return false, err
		}
		if ended {
			b.settled[key] = resp
			return true, nil
		}
		b.resps[i] = resp
	case CmdBatch:
		resps := make(BatchResponse, len(cmd.Requests))
		for j, req := range cmd.Requests {
			key := settledKey{entry: i, request: j}
			e := entry{Index: index, Timestamp: cmd.Timestamp, Seed: batchSeed(cmd.Seed, j)}
			resp, ended, err := f.execute(ctx, e, req, b.settled[key], b)
			if err != nil {
				return false, err
			}
			if ended {
				b.settled[key] = resp
				return true, nil
			}
			resps[j] = resp
		}
		b.resps[i] = resps
	case CmdChunk:
		whole, resp, err := f.applyChunk(ctx, index, cmd.Chunk)
		if err != nil || whole == nil {
			b.resps[i] = resp
			return false, err
		}
		// The last part: the whole command applies here, at this
		// entry, as if it had been proposed in one.
		return f.applyCommand(ctx, b, i, whole)
	case CmdChecksum:
		// The checksum is taken once the batch, which ends here, has
		// committed (see ApplyBatch).
		b.resps[i] = &api.Response{Index: index}
	case CmdSetNode:
		if _, err := w.setNode.ExecContext(ctx, cmd.Node.ID, cmd.Node.APIAddr); err != nil {
			return false, fmt.Errorf("set node %q: %w", cmd.Node.ID, err)
		}
		b.nodeOps = append(b.nodeOps, nodeOp{meta: *cmd.Node})
		b.resps[i] = &api.Response{Index: index}
	case CmdRemoveNode:
		if _, err := w.removeNode.ExecContext(ctx, cmd.Node.ID); err != nil {
			return false, fmt.Errorf("remove node %q: %w", cmd.Node.ID, err)
		}
		b.nodeOps = append(b.nodeOps, nodeOp{remove: true, meta: *cmd.Node})
		b.resps[i] = &api.Response{Index: index}
	case CmdCompactWatch:
		if err := f.compactChanges(ctx, index, cmd.CompactIndex, &b.watch); err != nil {
			return false, err
		}
		b.resps[i] = &api.Response{Index: index}
	}
	return false, nil
}

// batchSeed is the seed of request j of a CmdBatch entry: each request's
// random() and randomblob() draw from a sequence of their own, as they
// would in an entry of their own.
func batchSeed(seed uint64, j int) uint64 {
	const golden = 0x9e3779b97f4a7c15 // splitmix64's increment
	return seed + uint64(j)*golden
}

// execute runs an execute command inside the batch transaction. ended
// reports that a statement ended the whole transaction (its conflict
// resolution was ROLLBACK): resp then lists the results up to that
// statement, and the caller reruns the batch with that response as settled,
// so that the entry's statements have no effect, on every replica alike,
// however the batches were cut. An error is an environmental failure that
// must halt the batch.
//
// A request with a ClientID is checked against its client session first
// (see sessions.go): a retry of the session's last write is answered from
// the remembered response and a stale or unknown sequence number with an
// error, without running anything. Otherwise the statements run (or, for a
// settled entry, their settled outcome stands) and the response is
// remembered, whatever it is: statement errors and a rolled-back
// transaction are outcomes too.
func (f *FSM) execute(ctx context.Context, e entry, req *api.Request, settled *api.Response, b *batch) (resp *api.Response, ended bool, err error) {
	known := false
	var digest []byte
	if req.ClientID != "" {
		if digest, err = requestDigest(req); err != nil {
			// Decoded requests hold only encodable values; should one
			// not, every replica refuses it alike.
			return &api.Response{Index: e.Index, Err: err}, false, nil
		}
		r, k, err := f.sessionCheck(ctx, e, req, digest, &b.sess)
		if err != nil {
			return nil, false, err
		}
		if r != nil {
			return r, false, nil
		}
		known = k
	}
	if settled != nil {
		resp = settled
	} else {
		resp, ended, err = f.runStatements(ctx, e, req)
		if err != nil || ended {
			return resp, ended, err
		}
	}
	if req.ClientID != "" {
		if err := f.sessionRecord(ctx, e, req, digest, resp, known, &b.oldestSeen, &b.sess); err != nil {
			return nil, false, err
		}
	}
	return resp, false, nil
}

// runStatements runs a request's statements inside the batch transaction,
// in a savepoint of their own; see execute.
func (f *FSM) runStatements(ctx context.Context, e entry, req *api.Request) (resp *api.Response, ended bool, err error) {
	w := f.w
	resp = &api.Response{Index: e.Index}
	if _, err := w.saveEntry.ExecContext(ctx); err != nil {
		return nil, false, fmt.Errorf("savepoint: %w", err)
	}
	// last_insert_rowid() is connection state; zero it so that results
	// depend only on this entry (see dbConn.exec).
	if _, err := w.resetRowid.ExecContext(ctx); err != nil {
		return nil, false, fmt.Errorf("reset last_insert_rowid: %w", err)
	}
	// Time and random functions evaluate against this entry.
	f.det.begin(e)
	defer f.det.end()
	mode := modeUser
	if req.ReadOnly {
		mode = modeReadOnly
	}
	// With Transaction, or a single statement, a failure undoes the whole
	// entry; only the statements of a multi-statement request without
	// Transaction need a savepoint each.
	perStmt := !req.Transaction && len(req.Statements) > 1
	w.cap.startRequest()
	resp.Results = make([]api.Result, 0, len(req.Statements))
	for j := range req.Statements {
		if perStmt {
			if _, err := w.saveStmt.ExecContext(ctx); err != nil {
				return nil, false, fmt.Errorf("savepoint: %w", err)
			}
		}
		if mode == modeUser && !req.Transaction && isVacuum(req.Statements[j].SQL) {
			// Run after the batch commits (vacuum.go); its result is
			// SQLite's for VACUUM, an empty one.
			f.vacuumDue = true
			resp.Results = append(resp.Results, api.Result{})
			if perStmt {
				if _, err := w.releaseStmt.ExecContext(ctx); err != nil {
					return nil, false, fmt.Errorf("release savepoint: %w", err)
				}
			}
			continue
		}
		w.guard.mode = mode
		w.cap.arm()
		res, serr := f.runStatement(ctx, w.dbConn, &req.Statements[j])
		if serr != nil {
			res = api.Result{Error: w.guard.errorText(serr)}
		}
		w.guard.mode = modeInternal
		// A failure undoes the statement, or the whole entry when
		// statements share its savepoint.
		if err := w.statementDone(ctx, serr != nil, serr != nil && !perStmt, w.guard.ddl); err != nil {
			return nil, false, fmt.Errorf("statement %d: %w", j, err)
		}
		if serr != nil && environmental(serr) {
			return nil, false, fmt.Errorf("statement %d: %w", j, serr)
		}
		resp.Results = append(resp.Results, res)
		if serr == nil {
			if perStmt {
				if _, err := w.releaseStmt.ExecContext(ctx); err != nil {
					return nil, false, fmt.Errorf("release savepoint: %w", err)
				}
			}
			continue
		}

		undo, release := w.rollbackEntry, w.releaseEntry
		if perStmt {
			undo, release = w.rollbackStmt, w.releaseStmt
		}
		if _, err := undo.ExecContext(ctx); err != nil {
			if transactionEnded(err) {
				return resp, true, nil
			}
			return nil, false, fmt.Errorf("undo statement %d: %w", j, err)
		}
		if req.Transaction {
			break
		}
		if perStmt {
			if _, err := release.ExecContext(ctx); err != nil {
				return nil, false, fmt.Errorf("release savepoint: %w", err)
			}
		}
	}
	if _, err := w.releaseEntry.ExecContext(ctx); err != nil {
		return nil, false, fmt.Errorf("release savepoint: %w", err)
	}
	return resp, false, nil
}

// rollbackQuietly ends a failed batch transaction. The transaction may
// already be gone (SQLite rolls back by itself on some errors, and a
// statement may have ended it), so the rollback's own error is only logged.
func (f *FSM) rollbackQuietly(ctx context.Context) {
	if _, err := f.w.rollback.ExecContext(ctx); err != nil && !transactionGone(err) {
		f.logger.Error("rollback of failed batch", "error", err)
	}
}

// transactionEnded reports whether err, from rolling back to a savepoint,
// means there is no transaction any more.
func transactionEnded(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_ERROR && strings.Contains(err.Error(), "no such savepoint")
}

// applyNodeOps brings the in-memory member metadata in line with a
// committed batch.
func (f *FSM) applyNodeOps(ops []nodeOp) {
	if len(ops) == 0 {
		return
	}
	f.nodesMu.Lock()
	defer f.nodesMu.Unlock()
	for _, op := range ops {
		if op.remove {
			delete(f.nodes, op.meta.ID)
		} else {
			f.nodes[op.meta.ID] = op.meta
		}
	}
}
