package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// proposer gathers concurrent writes into log entries on the leader, so
// that many clients share one replication round.
//
// Why: raft takes whatever waits in its apply queue whenever its leader
// loop comes round, and a round costs an fdatasync on every node of a disk
// they may share. With writes proposed as they arrive, 32 clients made
// rounds of about four to nine entries, and the disk's syncs, not the
// clients, set the pace. Here at most maxProposalsInFlight entries of
// writes are proposed and not yet committed at a time (see there); writes
// that arrive meanwhile wait and go together as one entry (fsm.CmdBatch)
// once it is committed. A lone write waits for nothing.
//
// Each write keeps what it had in an entry of its own: the FSM applies the
// requests of a batch one after the other, each in its own savepoint with
// its own session check (client_id/seq: exactly once), results and errors,
// and answers with one response per request (fsm.BatchResponse).
type proposer struct {
	n *Node

	mu       sync.Mutex
	waiting  []*pendingWrite
	inflight int

	// committed is signalled (capacity 1) whenever raft hands the state
	// machine committed entries.
	committed chan struct{}
}

// maxProposalsInFlight is how many entries of writes may be proposed and
// not yet committed at a time. With one, the writes that arrive while an
// entry is replicated all go in the next: at 32 clients, rounds carried
// 15.5 writes against 10 with two in flight (which let the leader append
// one round while the followers store the one before), for the same
// throughput within the noise of a shared machine and fewer syncs.
//
// An entry stops counting once it is committed, not applied: the next
// entry is then replicated while the leader applies this one (about a
// quarter of a round at 32 clients). The commit is signalled by the state
// machine raft drives being handed entries (gatedFSM), which raft does
// only for committed ones; a signal of another entry (a part of a large
// write, a node or checksum entry) can end the wait early, so that two
// entries of writes are in flight for a while. Entries still reach raft in
// the order their batches were taken: the next batch is taken only once
// this one's entry is in raft's queue.
const maxProposalsInFlight = 1

// pendingWrite is one write waiting for its entry.
type pendingWrite struct {
	req   *api.Request
	size  int // fsm.RequestSize(req)
	since time.Time
	// state: writeWaiting until a proposal takes it (writeTaken) or its
	// caller gives up first (writeAbandoned).
	state atomic.Int32
	done  chan writeResult // buffered
}

const (
	writeWaiting int32 = iota
	writeTaken
	writeAbandoned
)

type writeResult struct {
	resp *api.Response
	err  error
}

// execute proposes req with the writes waiting alongside it and returns
// its own response.
func (p *proposer) execute(ctx context.Context, req *api.Request) (*api.Response, error) {
	if err := ctx.Err(); err != nil {
		// Not queued: nothing can have been proposed.
		return nil, fmt.Errorf("%w: %w", api.ErrEnqueueTimeout, err)
	}
	w := &pendingWrite{req: req, size: fsm.RequestSize(req), since: time.Now(), done: make(chan writeResult, 1)}
	p.mu.Lock()
	p.waiting = append(p.waiting, w)
	start := p.inflight < maxProposalsInFlight
	if start {
		p.inflight++
	}
	p.mu.Unlock()
	if start {
		go p.run()
	}
	select {
	case r := <-w.done:
		return r.resp, r.err
	case <-ctx.Done():
		if w.state.CompareAndSwap(writeWaiting, writeAbandoned) {
			return nil, fmt.Errorf("%w: %w", api.ErrEnqueueTimeout, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %w", api.ErrCommitTimeout, ctx.Err())
	}
}

// run proposes the waiting writes, an entry at a time, until none wait.
func (p *proposer) run() {
	for {
		p.mu.Lock()
		batch := p.take()
		if len(batch) == 0 {
			p.inflight--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		p.propose(batch)
	}
}

// entriesCommitted tells the proposer that raft committed entries.
func (p *proposer) entriesCommitted() { notify(p.committed) }

// take removes from the queue the writes of the next entry: the oldest
// waiting, and those after it while the entry stays within MaxEntryBytes
// (a write larger than that goes alone, in parts). The caller holds p.mu.
func (p *proposer) take() []*pendingWrite {
	var batch []*pendingWrite
	size, i := 0, 0
	for ; i < len(p.waiting); i++ {
		w := p.waiting[i]
		if len(batch) > 0 && size+w.size > p.n.cfg.MaxEntryBytes {
			break
		}
		if w.state.CompareAndSwap(writeWaiting, writeTaken) {
			batch = append(batch, w)
			size += w.size
		}
	}
	p.waiting = append(p.waiting[:0:0], p.waiting[i:]...)
	return batch
}

// propose proposes batch as one entry, whose writes are answered once it
// is applied, and returns once it is committed (or answered). It returns
// no earlier than the entry is in raft's queue, so entries reach the log
// in the order their batches were taken.
func (p *proposer) propose(batch []*pendingWrite) {
	select {
	case <-p.committed: // an earlier entry's
	default:
	}
	answered, handed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(answered)
		p.proposeAndAnswer(batch, func() { close(handed) })
	}()
	<-handed
	select {
	case <-answered:
	case <-p.committed:
	}
}

// proposeAndAnswer proposes batch as one entry and answers each write;
// handed is called once the entry is in raft's queue (see proposeThen).
func (p *proposer) proposeAndAnswer(batch []*pendingWrite, handed func()) {
	m := &p.n.metrics
	now := time.Now()
	for _, w := range batch {
		m.proposeWaitSeconds.Observe(now.Sub(w.since).Seconds())
	}
	m.proposalRequests.Observe(float64(len(batch)))
	cmd := &fsm.Command{Type: fsm.CmdExecute, Request: batch[0].req}
	if len(batch) > 1 {
		cmd = &fsm.Command{Type: fsm.CmdBatch, Requests: make([]*api.Request, len(batch))}
		for i, w := range batch {
			cmd.Requests[i] = w.req
		}
	}
	// The writes' own contexts bound their waits (execute); the entry is
	// bounded by ApplyTimeout and by Close.
	ctx, cancel := context.WithTimeout(p.n.ctx, p.n.cfg.ApplyTimeout)
	defer cancel()
	res, err := p.n.proposeThen(ctx, cmd, handed)
	for i, w := range batch {
		resp, err := responseFor(res, err, i, len(batch))
		w.done <- writeResult{resp: resp, err: err}
	}
}

// responseFor picks the i-th write's answer out of an entry's outcome.
func responseFor(res any, err error, i, n int) (*api.Response, error) {
	if err != nil {
		return nil, err
	}
	var resp *api.Response
	switch v := res.(type) {
	case *api.Response:
		if n == 1 {
			resp = v
		}
	case fsm.BatchResponse:
		if len(v) == n {
			resp = v[i]
		}
	case error:
		return nil, fmt.Errorf("cluster: execute: %w: %w", api.ErrApplyFailed, v)
	}
	if resp == nil {
		return nil, fmt.Errorf("cluster: execute: %w: unexpected FSM response %T for %d requests", api.ErrApplyFailed, res, n)
	}
	return resp, nil
}
