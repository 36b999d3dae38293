package sqlapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/raftlite/raftlite/api"
)

// The write queue (?queue on /db/execute) accepts writes at once and applies
// them in batches: a batch closes when it holds QueueBatchSize statements or
// when QueueTimeout has passed since its first request, and is applied as
// one log entry (no transaction: each statement stands alone, as in
// rqlite). ?wait makes the request wait until its batch is applied.
//
// The queue runs on the leader: a follower forwards queued requests to the
// leader like any other write. If leadership moves while a batch is
// pending, the batch is forwarded to the new leader. Batches are retried
// on transient failures (no leader, leadership lost, timeouts) under the
// queue's own client session (client_id/seq), so a retry after an
// ambiguous failure is not applied twice.
//
// A write without ?queue that reaches the leader waits for the queued
// writes that node accepted before it (awaitQueued), which close their
// batch at once: a client that queues writes and then writes without the
// queue sees them applied in the order it sent them. (Otherwise a queued
// DROP TABLE accepted before a CREATE TABLE of the same name could apply
// after it; gorqlite's own test suite does exactly that.)

var (
	errQueueClosed   = errors.New("write queue is shut down")
	errQueueTooLarge = errors.New("queued request too large for one log entry")
)

// queuedWrite is one accepted queued request.
type queuedWrite struct {
	stmts []api.Statement
	size  int // Store.StatementsSize(stmts)
	seq   int64
	auth  string     // Authorization header, used if the batch is forwarded
	done  chan error // nil unless the client waits; buffered
}

type writeQueue struct {
	s         *Server
	ch        chan *queuedWrite
	batchSize int
	maxBytes  int // bound on a batch's Store.StatementsSize; 0: none
	timeout   time.Duration

	nextSeq atomic.Int64 // last sequence number handed out
	lastSeq atomic.Int64 // highest sequence number applied

	// accepted counts the requests put in the queue, settled those whose
	// batch is done with (applied or failed for good); the queue is FIFO
	// with one runner, so settled >= n means the first n are. settledCh is
	// closed and replaced whenever settled moves; hurry (capacity 1)
	// closes the open batch. (Sequence numbers cannot serve: one is handed
	// out before its request is queued, and a request refused on a full
	// queue never settles its number.)
	accepted  atomic.Int64
	settled   atomic.Int64 // written under settledMu, with settledCh
	settledMu sync.Mutex
	settledCh chan struct{}
	hurry     chan struct{}

	ctx      context.Context // canceled when Shutdown's deadline passes
	cancel   context.CancelFunc
	stop     chan struct{}
	stopOnce sync.Once
	stopped  atomic.Bool
	done     chan struct{}

	// Owned by the runner goroutine.
	clientID   string
	sessionSeq uint64 // last sequence number applied in the session
}

// queueMaxBytes is the bound on a batch's statements that keeps its entry,
// with the command's own fields (session, time, seed), within entryLimit.
func queueMaxBytes(entryLimit int) int {
	const commandFields = 1 << 10
	if entryLimit <= 0 {
		return 0
	}
	return max(entryLimit-commandFields, 1)
}

func newWriteQueue(s *Server, capacity, batchSize int, timeout time.Duration) *writeQueue {
	ctx, cancel := context.WithCancel(context.Background())
	q := &writeQueue{
		s:         s,
		ch:        make(chan *queuedWrite, capacity),
		batchSize: batchSize,
		maxBytes:  queueMaxBytes(s.cfg.MaxEntryBytes),
		timeout:   timeout,
		ctx:       ctx,
		cancel:    cancel,
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
		settledCh: make(chan struct{}),
		hurry:     make(chan struct{}, 1),
	}
	// Sequence numbers grow across restarts, as rqlite's do.
	q.nextSeq.Store(time.Now().UnixNano())
	q.newSession()
	go q.run()
	return q
}

// newSession starts a fresh client session for the queue's batches.
func (q *writeQueue) newSession() {
	var b [8]byte
	_, _ = rand.Read(b[:])
	q.clientID = "queue-" + hex.EncodeToString(b[:])
	q.sessionSeq = 0
}

// enqueue accepts stmts and returns their sequence number and, when wait,
// a channel that receives the outcome of their batch. It fails when the
// queue stays full until ctx ends, or is shut down.
func (q *writeQueue) enqueue(ctx context.Context, stmts []api.Statement, wait bool, auth string) (int64, <-chan error, error) {
	if q.stopped.Load() {
		return 0, nil, errQueueClosed
	}
	size := q.s.store.StatementsSize(stmts)
	if q.maxBytes > 0 && size > q.maxBytes {
		return 0, nil, fmt.Errorf("%w: its statements take up to %d bytes, the limit is %d", errQueueTooLarge, size, q.maxBytes)
	}
	it := &queuedWrite{stmts: stmts, size: size, auth: auth, seq: q.nextSeq.Add(1)}
	if wait {
		it.done = make(chan error, 1)
	}
	select {
	case q.ch <- it:
		q.accepted.Add(1)
		q.s.metrics.queued.Inc()
		return it.seq, it.done, nil
	case <-q.stop:
		return 0, nil, errQueueClosed
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	}
}

func (q *writeQueue) pending() int { return len(q.ch) }

// close stops accepting writes and applies what the queue holds, within
// ctx.
func (q *writeQueue) close(ctx context.Context) error {
	q.stopOnce.Do(func() {
		q.stopped.Store(true)
		close(q.stop)
	})
	select {
	case <-q.done:
		q.cancel()
		return nil
	case <-ctx.Done():
		q.cancel()
		<-q.done // the runner gives up at once on a canceled context
		return fmt.Errorf("queued writes may be lost: %w", ctx.Err())
	}
}

func (q *writeQueue) run() {
	defer close(q.done)
	var carry *queuedWrite
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-q.ch:
			case <-q.stop:
				q.drain()
				return
			}
		}
		batch := []*queuedWrite{first}
		n, size := len(first.stmts), first.size
		timer := time.NewTimer(q.timeout)
	collect:
		for n < q.batchSize {
			select {
			case it := <-q.ch:
				if !q.fits(batch, size, it) {
					carry = it
					break collect
				}
				batch = append(batch, it)
				n += len(it.stmts)
				size += it.size
			case <-timer.C:
				break collect
			case <-q.hurry:
				break collect
			case <-q.stop:
				break collect
			}
		}
		timer.Stop()
		q.flush(batch)
	}
}

// drain applies everything still queued, in batches, at shutdown.
func (q *writeQueue) drain() {
	for {
		var batch []*queuedWrite
		n, size := 0, 0
	fill:
		for n < q.batchSize {
			select {
			case it := <-q.ch:
				if !q.fits(batch, size, it) {
					q.flush(batch)
					batch, n, size = nil, 0, 0
				}
				batch = append(batch, it)
				n += len(it.stmts)
				size += it.size
			default:
				break fill
			}
		}
		if len(batch) == 0 {
			return
		}
		q.flush(batch)
	}
}

// fits reports whether it may join batch, whose statements take size
// bytes: a forwarded batch carries one identity, and a batch is one log
// entry, so it must stay within the store's entry limit.
func (q *writeQueue) fits(batch []*queuedWrite, size int, it *queuedWrite) bool {
	if len(batch) == 0 {
		return true
	}
	return it.auth == batch[0].auth && (q.maxBytes <= 0 || size+it.size <= q.maxBytes)
}

// flush applies one batch and tells its waiters.
func (q *writeQueue) flush(batch []*queuedWrite) {
	var stmts []api.Statement
	maxSeq := int64(0)
	for _, it := range batch {
		stmts = append(stmts, it.stmts...)
		maxSeq = max(maxSeq, it.seq)
	}
	err := q.apply(stmts, batch[0].auth)
	if err == nil {
		for {
			old := q.lastSeq.Load()
			if maxSeq <= old || q.lastSeq.CompareAndSwap(old, maxSeq) {
				break
			}
		}
		q.s.metrics.queueBatches.Inc()
		q.s.metrics.queueStatements.Add(float64(len(stmts)))
	} else {
		q.s.metrics.queueBatchErrors.Inc()
		q.s.log.Error("queued writes were not applied", "statements", len(stmts),
			"first_seq", batch[0].seq, "last_seq", maxSeq, "err", err)
	}
	for _, it := range batch {
		if it.done != nil {
			it.done <- err
		}
	}
	q.settledMu.Lock()
	q.settled.Add(int64(len(batch)))
	close(q.settledCh)
	q.settledCh = make(chan struct{})
	q.settledMu.Unlock()
}

// awaitQueued waits until every write the queue accepted before the call
// has been applied (or has failed for good), hurrying their batches. It
// fails only when ctx ends.
func (q *writeQueue) awaitQueued(ctx context.Context) error {
	target := q.accepted.Load()
	if q.settled.Load() >= target {
		return nil // the usual case: nothing queued
	}
	for {
		q.settledMu.Lock()
		settled, ch := q.settled.Load(), q.settledCh
		q.settledMu.Unlock()
		if settled >= target {
			return nil
		}
		select {
		case q.hurry <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-q.done:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for the queued writes before it: %w", api.ErrEnqueueTimeout, ctx.Err())
		}
	}
}

// apply applies stmts as one log entry, retrying transient failures until
// it succeeds, fails for good, or the queue is shut down.
func (q *writeQueue) apply(stmts []api.Statement, auth string) error {
	if len(stmts) == 0 {
		return nil
	}
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := q.applyOnce(stmts, auth)
		if err == nil {
			q.sessionSeq++
			return nil
		}
		if errors.Is(err, api.ErrSessionExpired) {
			q.newSession() // nothing was applied under the expired session
			continue
		}
		if !isTransient(err) {
			return err
		}
		q.s.metrics.queueFailures.Inc()
		if attempt == 1 || attempt%20 == 0 {
			q.s.log.Warn("applying queued writes failed; retrying", "attempt", attempt, "err", err)
		}
		select {
		case <-q.ctx.Done():
			return fmt.Errorf("%w: %w", errQueueClosed, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// isTransient reports whether a failed attempt may succeed if retried.
func isTransient(err error) bool {
	var te interface{ Temporary() bool }
	return errors.Is(err, api.ErrNotLeader) || errors.Is(err, api.ErrNoLeader) || errors.Is(err, api.ErrLeadershipLost) ||
		errors.Is(err, api.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, api.ErrUnavailable) || (errors.As(err, &te) && te.Temporary())
}

// transientError is a failure worth retrying (from a forwarded batch).
type transientError struct{ msg string }

func (e *transientError) Error() string   { return e.msg }
func (e *transientError) Temporary() bool { return true }

// applyOnce makes one attempt: Execute when this node leads, else forward
// the batch to the leader.
func (q *writeQueue) applyOnce(stmts []api.Statement, auth string) error {
	if q.ctx.Err() != nil {
		return errQueueClosed
	}
	ctx, cancel := context.WithTimeout(q.ctx, q.s.cfg.DefaultTimeout)
	defer cancel()
	seq := q.sessionSeq + 1
	if q.s.store.IsLeader() {
		resp, err := q.s.store.Execute(ctx, &api.Request{Statements: stmts, Transaction: q.s.cfg.QueueTx, ClientID: q.clientID, Seq: seq})
		if err != nil {
			return err
		}
		if resp != nil && resp.Err != nil {
			return resp.Err
		}
		return nil
	}
	leader := q.s.leaderURL()
	if leader == "" {
		return api.ErrNoLeader
	}
	if leader == q.s.cfg.AdvAddr {
		return api.ErrNotLeader
	}
	return q.forwardBatch(ctx, leader, stmts, auth, seq)
}

// forwardBatch sends a batch to the leader's /db/execute under the queue's
// session.
func (q *writeQueue) forwardBatch(ctx context.Context, leader string, stmts []api.Statement, auth string, seq uint64) error {
	body := appendRequestBody(nil, stmts)
	u := leader + "/db/execute?client_id=" + url.QueryEscape(q.clientID) + "&seq=" + strconv.FormatUint(seq, 10)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build forwarded batch: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(forwardedHeader, "1")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := q.s.client.Do(req)
	if err != nil {
		return &transientError{fmt.Sprintf("forward batch to the leader at %s: %v", leader, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return &transientError{fmt.Sprintf("read the leader's answer: %v", err)}
	}
	var top struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	_ = json.Unmarshal(raw, &top)
	switch {
	case top.Code == api.ErrSessionExpired.Code:
		return api.ErrSessionExpired
	case resp.StatusCode == http.StatusOK && top.Error == "":
		return nil
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusBadGateway ||
		resp.StatusCode == http.StatusGatewayTimeout:
		return &transientError{fmt.Sprintf("leader at %s answered %d: %s", leader, resp.StatusCode, strings.TrimSpace(string(raw)))}
	}
	return fmt.Errorf("leader at %s answered %d: %s", leader, resp.StatusCode, strings.TrimSpace(string(raw)))
}

// stats is the http.queue object of /status.
func (q *writeQueue) stats() map[string]any {
	return map[string]any{
		"_default": map[string]any{
			"sequence_number": q.lastSeq.Load(),
			"max_size":        cap(q.ch),
			"pending":         len(q.ch),
			"batch_size":      q.batchSize,
			"timeout":         q.timeout.String(),
		},
	}
}

// queuedExecute serves /db/execute?queue: accept the write into the queue
// and answer {"results":[],"sequence_number":N} at once, or (with ?wait)
// when its batch is applied.
func (s *Server) queuedExecute(w http.ResponseWriter, r *http.Request, p *params, body []byte, stmts []api.Statement) {
	o := p.encodeOpts(epExecute)
	if p.clientID != "" {
		writeError(w, api.ErrBadRequest, "client_id and seq cannot be used with queue")
		return
	}
	if !s.store.IsLeader() {
		s.toLeader(w, r, p, epExecute, body)
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	seq, done, err := s.queue.enqueue(ctx, stmts, p.wait, r.Header.Get("Authorization"))
	if err != nil {
		if errors.Is(err, errQueueClosed) {
			writeError(w, api.ErrUnavailable, err.Error())
			return
		}
		if errors.Is(err, errQueueTooLarge) {
			writeError(w, api.ErrEntryTooLarge, err.Error())
			return
		}
		writeRequestError(w, &requestError{api.ErrQueueFull, "write queue is full"}, o)
		return
	}
	out := &apiResponse{seqNum: seq}
	if done != nil {
		select {
		case err := <-done:
			if err != nil {
				out.err, out.code = err.Error(), api.ErrQueueFailed.Code
				writeResponse(w, http.StatusInternalServerError, out, o)
				return
			}
		case <-ctx.Done():
			out.err, out.code = "timeout waiting for queued statements to be applied", api.ErrTimeout.Code
			writeResponse(w, http.StatusGatewayTimeout, out, o)
			return
		}
	}
	if p.timings {
		out.time = time.Since(p.start).Seconds()
	}
	writeResponse(w, http.StatusOK, out, o)
}
