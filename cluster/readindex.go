package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// ReadIndex returns an index i such that a read of any node's local copy,
// once that node's FSM has applied i (WaitApplied), is linearizable: it sees
// every write acknowledged before ReadIndex was called. On the leader it is
// computed locally; elsewhere the leader is asked through the cluster
// service ("linearizable follower reads").
//
// The leader computes it in a confirmation round (leaderRound):
//
//  1. Once per term it applies a barrier, so that an entry of its own term
//     is committed (only then is its commit index known to be up to date,
//     Raft thesis §6.4) and every entry committed by earlier leaders is
//     applied locally. Call the term T.
//  2. It takes its commit index and maps it to an FSM index (coveringIndex):
//     the last entry at or below it that the FSM applies. Every write it
//     acknowledged is at or below the commit index (a write is acknowledged
//     only after it is committed and applied), and so is every state that
//     any reader on any node may already have seen: a node applies only
//     committed entries, and the leader's commit index is the highest.
//     The index handed out must cover such states, not only acknowledged
//     writes: once one reader has seen a write, every read that begins
//     after it must see it too. The leader's own applied index would not
//     do: a batch is visible to readers once its SQLite transaction has
//     committed, a moment before its index is published, and a follower
//     may apply an entry before the leader's FSM does. While a load runs
//     ahead of the commit index the round waits for it (awaitCommitted).
//  3. It sends the other voters a heartbeat of term T, after step 2, and
//     needs a quorum (itself included) to accept it; a voter accepts only
//     while its own term is T. A leader of a later term can only have
//     acknowledged a write after a quorum moved past T, and terms never go
//     back, so such a write cannot exist when a quorum is still in T after
//     step 2.
//  4. Its own term must still be T at the end.
//
// Step 3 deliberately does not use raft's VerifyLeader: hashicorp/raft
// counts any AppendEntries or heartbeat response that arrives after the
// verification was registered, including responses to RPCs sent before it
// (and so before step 2). A leader that was paused (GC, SIGSTOP, a slow disk)
// with such RPCs in flight could then confirm itself with a follower's
// answer from before a newer leader was elected, and serve a stale read.
//
// Concurrent calls share rounds: a call is served by a round that started
// after it arrived, never by one already under way (that round may have
// taken its index before the call began), and at most readMaxRounds (one)
// rounds run at a time on a node, so calls that arrive during a round form
// the next round's batch.
// So n concurrent linearizable reads cost one barrier check, one index and
// one quorum round rather than n. Followers batch the same way: one request
// to the leader serves every read that arrived before it was sent.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	return n.readIndex(ctx, 0)
}

// readIndex serves ReadIndex (hops 0) and read-index requests forwarded by
// other nodes (hops > 0).
func (n *Node) readIndex(ctx context.Context, hops int) (uint64, error) {
	if n.closed.Load() {
		return 0, api.ErrClosed
	}
	n.metrics.readIndexes.Add(1)
	switch {
	case n.IsLeader():
		if index, ok := n.leaseReadIndex(); ok {
			n.metrics.leaseReads.Add(1)
			return index, nil
		}
		return n.reads.leader.wait(ctx)
	case hops == 0:
		return n.reads.follower.wait(ctx)
	default:
		// A forwarded request reached a node that is no longer the leader:
		// pass it on (forward counts the hops), unbatched, so that a
		// request can never circle through batches forever.
		return n.forwardReadIndex(ctx, hops)
	}
}

// forwardReadIndex asks the leader for a read index.
func (n *Node) forwardReadIndex(ctx context.Context, hops int) (uint64, error) {
	var resp readIndexResponse
	if err := n.forward(ctx, pathReadIndex, hops, struct{}{}, &resp); err != nil {
		return 0, fmt.Errorf("cluster: read index from leader: %w", err)
	}
	return resp.Index, nil
}

// readIndexState holds the node's two read-index batchers.
type readIndexState struct {
	once     sync.Once
	leader   *readBatcher // rounds run by this node as leader
	follower *readBatcher // rounds that ask the leader
}

// initReads sets up the batchers; Open calls it before raft starts.
func (n *Node) initReads() {
	n.reads.once.Do(func() {
		n.reads.leader = newReadBatcher(&n.wg, readMaxRounds, n.metrics.timedRound("leader", n.leaderRound))
		n.reads.follower = newReadBatcher(&n.wg, readMaxRounds, n.metrics.timedRound("follower", n.followerRound))
	})
}

// stopReads makes the batchers refuse new work; their running rounds end
// with the node's context (cancelled by Close).
func (n *Node) stopReads() {
	for _, b := range []*readBatcher{n.reads.leader, n.reads.follower} {
		if b != nil {
			b.stop()
		}
	}
}

// readRoundTimeout bounds one confirmation round, and readRoundPoll is how
// often a round checks that the node's role (or its leader) has not changed
// under it, so that a round aimed at a deposed leader ends at once.
func (n *Node) readRoundTimeout() time.Duration {
	return max(4*n.cfg.ElectionTimeout, time.Second)
}

const readRoundPoll = 5 * time.Millisecond

// readMaxRounds is how many read-index rounds may be under way at once on a
// node (per batcher). More than one shortens the wait of a read that
// arrives during a round, but makes smaller batches; measured on two cores
// (TestReadIndexThroughput), the extra rounds cost more than they save.
var readMaxRounds = 1

// errRoundAborted is the cause of a round context cancelled because the
// node's role or leader changed.
var errRoundAborted = errors.New("leadership changed during the read-index round")

// watchRound returns a context that ends when ctx does, after the round
// timeout, or as soon as changed reports true (checked every readRoundPoll).
func (n *Node) watchRound(changed func() bool) (context.Context, context.CancelFunc) {
	ctx, cancelTimeout := context.WithTimeout(n.ctx, n.readRoundTimeout())
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(readRoundPoll)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				if changed() {
					cancel(errRoundAborted)
					return
				}
			}
		}
	}()
	return ctx, func() {
		close(done)
		cancel(nil)
		cancelTimeout()
	}
}

// roundErr explains why a round context ended.
func roundErr(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errRoundAborted) {
		return api.ErrNotLeader
	}
	return fmt.Errorf("read-index round timed out: %w", ctx.Err())
}

// leaderRound computes a read index as leader (see ReadIndex).
func (n *Node) leaderRound() (uint64, error) {
	if n.closed.Load() {
		return 0, api.ErrClosed
	}
	term := n.raft.CurrentTerm()
	if n.raft.State() != raft.Leader {
		return 0, api.ErrNotLeader
	}
	n.metrics.readIndexRounds.Add(1)
	deposed := func() bool {
		return n.raft.State() != raft.Leader || n.raft.CurrentTerm() != term
	}
	deadline := time.Now().Add(n.readRoundTimeout())
	if n.readyTerm.Load() != term {
		// The first read of a term (reconcile usually gets there first).
		ctx, cancel := n.watchRound(deposed)
		err := n.establishLeadership(ctx)
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("cluster: read index: leader barrier: %w", roundErr(ctx))
		}
		cancel()
		if err != nil {
			return 0, err
		}
		// A barrier is only known to cover the term it was issued in.
		if n.readyTerm.Load() != term {
			return 0, api.ErrNotLeader
		}
	}
	ctx, cancel := context.WithDeadline(n.ctx, deadline)
	index, err := n.awaitCommitted(ctx, deposed, n.coveringIndex)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("cluster: read index: %w", err)
	}
	epoch, sent := n.lease.epochNow(), time.Now()
	if err := n.confirmTerm(term, deadline, deposed); err != nil {
		return 0, err
	}
	if n.raft.CurrentTerm() != term {
		return 0, api.ErrNotLeader
	}
	n.lease.grant(term, sent.Add(n.leaseDuration()), epoch)
	return index, nil
}

// coveringIndex returns the read index for this moment: the FSM index that
// covers the leader's commit index (see ReadIndex, step 2). Raft's index
// also counts entries the FSM never sees (no-ops, barriers), which
// WaitApplied would wait for forever, so it walks down from the commit index
// to the last entry the FSM applies; entries at or below the FSM's applied
// index need no look-up. An entry missing from the log lies at or below the
// latest snapshot (it may have been compacted during the walk), so raft has
// handed the FSM every entry up to it, and the FSM's applied index, read
// again, covers it and everything below.
func (n *Node) coveringIndex() (uint64, error) {
	applied := n.fsm.AppliedIndex()
	for i := n.raft.CommitIndex(); i > applied; i-- {
		var l raft.Log
		err := n.logs.GetLog(i, &l)
		switch {
		case errors.Is(err, raft.ErrLogNotFound):
			return n.fsm.AppliedIndex(), nil
		case err != nil:
			return 0, fmt.Errorf("cluster: read index: log entry %d: %w", i, err)
		case l.Type == raft.LogCommand || l.Type == raft.LogConfiguration:
			return i, nil
		}
	}
	return applied, nil
}

// awaitCommitted returns index() once it is at or below raft's commit
// index, polling every readRoundPoll. On the leader it is at all times but
// one: raft's user restore (Load) replaces the leader's database, and so
// moves its applied index, before a quorum holds the load, which is
// committed only when the no-op raft appends after it is. A failover in
// between could still lose the load, so neither a read index nor a read of
// the leader's database may show it before then. awaitCommitted gives up
// with api.ErrNotLeader once deposed reports true, with ctx's error when
// ctx ends and with api.ErrClosed when the node closes.
func (n *Node) awaitCommitted(ctx context.Context, deposed func() bool, index func() (uint64, error)) (uint64, error) {
	var t *time.Timer
	for {
		i, err := index()
		if err != nil || i <= n.raft.CommitIndex() {
			return i, err
		}
		if deposed() {
			return 0, api.ErrNotLeader
		}
		if t == nil {
			t = time.NewTimer(readRoundPoll)
			defer t.Stop()
		} else {
			t.Reset(readRoundPoll)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for a load to commit: %w", ctx.Err())
		case <-n.ctx.Done():
			return 0, api.ErrClosed
		}
	}
}

// followerRound asks the leader for a read index, or computes it when this
// node has become the leader since its readers arrived.
func (n *Node) followerRound() (uint64, error) {
	if n.closed.Load() {
		return 0, api.ErrClosed
	}
	if n.IsLeader() {
		return n.leaderRound()
	}
	n.metrics.readIndexRounds.Add(1)
	_, leader := n.raft.LeaderWithID()
	ctx, cancel := n.watchRound(func() bool {
		_, now := n.raft.LeaderWithID()
		return now != leader
	})
	defer cancel()
	idx, err := n.forwardReadIndex(ctx, 0)
	if err != nil && ctx.Err() != nil {
		if errors.Is(context.Cause(ctx), errRoundAborted) {
			// Our idea of the leader changed while the request was out
			// (e.g. it was sent to a leader that is now partitioned away).
			return 0, fmt.Errorf("cluster: read index from leader: %w", api.ErrNoLeader)
		}
		return 0, fmt.Errorf("cluster: read index from leader: %w", roundErr(ctx))
	}
	return idx, err
}

// confirmTerm sends every other voter a heartbeat of term (the
// AppendEntries request without entries that raft's own heartbeats are)
// and returns nil once a quorum, this node included, has accepted one. A
// voter accepts only while its own term is term (a voter still in an
// earlier term moves up to it). The heartbeats go out after the call,
// which is what makes the round a confirmation of leadership after the
// read index was taken: unlike raft's VerifyLeader, no answer to an RPC
// sent earlier is counted.
//
// It gives up with api.ErrNotLeader as soon as deposed reports true (checked
// every readRoundPoll) or a quorum can no longer accept, and with a timeout
// error at deadline.
func (n *Node) confirmTerm(term uint64, deadline time.Time, deposed func() bool) error {
	servers, err := n.servers()
	if err != nil {
		return err
	}
	voters, self := 0, false
	var peers []raft.Server
	for _, s := range servers {
		if s.Suffrage != raft.Voter {
			continue
		}
		voters++
		if string(s.ID) == n.id {
			self = true
			continue
		}
		peers = append(peers, s)
	}
	if !self {
		return api.ErrNotLeader // removed from the configuration
	}
	need := voters/2 + 1 - 1 // the quorum, less this node's own vote
	if need <= 0 {
		return nil
	}
	local := n.transport.EncodePeer(raft.ServerID(n.id), raft.ServerAddress(n.advAddr))
	type answer struct {
		term    uint64
		success bool
		err     error
	}
	// Buffered: a straggler's answer is not needed once a quorum has
	// answered, and its call ends by itself (the transport's I/O timeout,
	// or Close).
	answers := make(chan answer, len(peers))
	for _, p := range peers {
		go func() {
			req := &raft.AppendEntriesRequest{
				RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte(n.id), Addr: local},
				Term:      term,
				Leader:    local,
			}
			var resp raft.AppendEntriesResponse
			err := n.transport.AppendEntries(p.ID, p.Address, req, &resp)
			answers <- answer{resp.Term, resp.Success, err}
		}()
	}
	yes, no := 0, 0
	var why error
	poll := time.NewTimer(readRoundPoll)
	defer poll.Stop()
	for {
		select {
		case a := <-answers:
			switch {
			case a.err != nil:
				no++
				why = a.err
			case a.success && a.term == term:
				yes++
			case a.term > term:
				// It has moved on to a later term (raft will depose this
				// leader as soon as it hears of it).
				no++
				why = fmt.Errorf("a voter is in term %d, after this leader's term %d", a.term, term)
			default:
				no++
			}
			if yes >= need {
				return nil
			}
			if len(peers)-no < need {
				if why != nil {
					return fmt.Errorf("%w: leadership not confirmed by a quorum: %w", api.ErrNotLeader, why)
				}
				return fmt.Errorf("%w: leadership not confirmed by a quorum", api.ErrNotLeader)
			}
		case <-poll.C:
			if deposed() {
				return api.ErrNotLeader
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("cluster: read index: confirming leadership: read-index round timed out: %w", context.DeadlineExceeded)
			}
			poll.Reset(readRoundPoll)
		case <-n.ctx.Done():
			return api.ErrClosed
		}
	}
}

// readBatcher runs rounds that each serve the waiters that arrived before
// the round started, never one that arrives while the round is under way.
// Up to maxRounds rounds run at once: a waiter that finds fewer under way
// starts one at once (so an idle node answers in one round trip), and
// otherwise joins the batch that the next round to finish starts.
type readBatcher struct {
	round     func() (uint64, error)
	maxRounds int
	wg        *sync.WaitGroup // the node's, so Close waits for the rounds

	mu      sync.Mutex
	next    *readBatch // waiters for the next round to start, nil if none
	running int        // rounds under way
	stopped bool
}

// readBatch is the outcome of one round, shared by its waiters.
type readBatch struct {
	done    chan struct{} // closed when index and err are set
	index   uint64
	err     error
	waiters int // how many wait calls joined it (under readBatcher.mu)
}

func newReadBatcher(wg *sync.WaitGroup, maxRounds int, round func() (uint64, error)) *readBatcher {
	return &readBatcher{round: round, maxRounds: max(maxRounds, 1), wg: wg}
}

// wait joins the next batch and returns its round's outcome, or ctx's error
// if ctx ends first.
func (b *readBatcher) wait(ctx context.Context) (uint64, error) {
	b.mu.Lock()
	if b.stopped {
		b.mu.Unlock()
		return 0, api.ErrClosed
	}
	batch := b.next
	if batch == nil {
		batch = &readBatch{done: make(chan struct{})}
		b.next = batch
	}
	batch.waiters++
	if b.running < b.maxRounds {
		b.startLocked()
	}
	b.mu.Unlock()
	select {
	case <-batch.done:
		return batch.index, batch.err
	case <-ctx.Done():
		return 0, fmt.Errorf("cluster: read index: %w", ctx.Err())
	}
}

// queued reports how many waiters wait for a round that has not started.
func (b *readBatcher) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == nil {
		return 0
	}
	return b.next.waiters
}

// startLocked starts a round for the waiting batch. b.mu is held.
func (b *readBatcher) startLocked() {
	batch := b.next
	b.next = nil
	b.running++
	b.wg.Add(1)
	go b.run(batch)
}

// run runs batch's round, then starts the next batch's, if any.
func (b *readBatcher) run(batch *readBatch) {
	defer b.wg.Done()
	batch.index, batch.err = b.round()
	close(batch.done)
	b.mu.Lock()
	b.running--
	if b.next != nil && b.running < b.maxRounds {
		b.startLocked()
	}
	b.mu.Unlock()
}

// renew starts a round with no waiters when none is under way or waiting,
// so that the round's side effect (extending the read lease) happens before
// the lease lapses.
func (b *readBatcher) renew() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped || b.running > 0 || b.next != nil {
		return
	}
	b.next = &readBatch{done: make(chan struct{})}
	b.startLocked()
}

// stop makes wait refuse new waiters. A batch already waiting is still run
// (its round fails fast once the node is closed).
func (b *readBatcher) stop() {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
}
