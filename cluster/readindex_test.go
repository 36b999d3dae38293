package cluster

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

// TestReadBatcherServesOnlyLaterRounds checks the property batching must
// keep: a waiter is served by a round that started after it arrived, never
// by one already under way (that round may have taken its index before the
// waiter's read began).
func TestReadBatcherServesOnlyLaterRounds(t *testing.T) {
	var wg sync.WaitGroup
	started := make(chan uint64)
	release := make(chan struct{})
	var rounds atomic.Uint64
	b := newReadBatcher(&wg, 1, func() (uint64, error) {
		r := rounds.Add(1)
		started <- r
		<-release
		return r, nil
	})
	type got struct {
		idx uint64
		err error
	}
	waiter := func() chan got {
		ch := make(chan got, 1)
		go func() {
			idx, err := b.wait(context.Background())
			ch <- got{idx, err}
		}()
		return ch
	}

	first := waiter()
	if r := <-started; r != 1 {
		t.Fatalf("first round = %d", r)
	}
	// Round 1 is under way: these must wait for round 2, and share it.
	var later []chan got
	for range 10 {
		later = append(later, waiter())
	}
	waitQueued(t, b, 10)
	release <- struct{}{}
	if g := <-first; g.idx != 1 || g.err != nil {
		t.Fatalf("first waiter got %d, %v; want round 1", g.idx, g.err)
	}
	if r := <-started; r != 2 {
		t.Fatalf("second round = %d", r)
	}
	release <- struct{}{}
	for i, ch := range later {
		if g := <-ch; g.idx != 2 || g.err != nil {
			t.Fatalf("later waiter %d got %d, %v; want round 2", i, g.idx, g.err)
		}
	}
	wg.Wait() // the runner exits when no batch is waiting
	if n := rounds.Load(); n != 2 {
		t.Fatalf("%d rounds for 11 waiters in two waves, want 2", n)
	}

	// A waiter whose context ends stops waiting; the round still runs.
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := b.wait(ctx)
		errc <- err
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled waiter: %v", err)
	}
	release <- struct{}{}
	wg.Wait()

	b.stop()
	if _, err := b.wait(context.Background()); !errors.Is(err, api.ErrClosed) {
		t.Fatalf("wait after stop: %v, want api.ErrClosed", err)
	}
}

// With overlapping rounds allowed, a waiter that finds a free slot starts a
// round at once, and one that does not is still served only by a round
// started after it arrived.
func TestReadBatcherOverlappingRounds(t *testing.T) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	release := map[uint64]chan struct{}{}
	started := make(chan uint64, 10)
	var rounds atomic.Uint64
	b := newReadBatcher(&wg, 2, func() (uint64, error) {
		r := rounds.Add(1)
		ch := make(chan struct{})
		mu.Lock()
		release[r] = ch
		mu.Unlock()
		started <- r
		<-ch
		return r, nil
	})
	free := func(r uint64) {
		mu.Lock()
		defer mu.Unlock()
		close(release[r])
	}
	waiter := func() chan uint64 {
		ch := make(chan uint64, 1)
		go func() {
			idx, err := b.wait(context.Background())
			if err != nil {
				t.Error(err)
			}
			ch <- idx
		}()
		return ch
	}
	a := waiter()
	if r := <-started; r != 1 {
		t.Fatalf("round %d", r)
	}
	bw := waiter()
	if r := <-started; r != 2 {
		t.Fatalf("round %d", r)
	}
	c := waiter() // both slots busy: waits for round 3
	// Queuing and starting a round happen under one lock: once c is
	// queued, a round for it would already have started.
	waitQueued(t, b, 1)
	select {
	case r := <-started:
		t.Fatalf("round %d started with both slots busy", r)
	default:
	}
	free(2)
	if got := <-bw; got != 2 {
		t.Fatalf("second waiter got round %d", got)
	}
	if r := <-started; r != 3 {
		t.Fatalf("round %d", r)
	}
	free(1)
	if got := <-a; got != 1 {
		t.Fatalf("first waiter got round %d", got)
	}
	free(3)
	if got := <-c; got != 3 {
		t.Fatalf("third waiter got round %d, want 3 (a round started after it arrived)", got)
	}
	wg.Wait()
}

// TestReadIndexBatchedAndCoversAcknowledgedWrites runs many concurrent
// read-index requests on the leader and on a follower while writes go on:
// every index covers every write acknowledged before its request began,
// and the requests share far fewer confirmation rounds than there are
// requests.
func TestReadIndexBatchedAndCoversAcknowledgedWrites(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	insertRows(t, leader, 0, 5)
	f := followers(leader, nodes...)[0]

	var acked atomic.Uint64 // the highest acknowledged write index
	stop := make(chan struct{})
	writerDone := make(chan error, 1)
	go func() {
		for id := 100; ; id++ {
			select {
			case <-stop:
				writerDone <- nil
				return
			default:
			}
			resp, err := tryExec(leader, insertStmt(id))
			if err != nil {
				writerDone <- err
				return
			}
			for {
				cur := acked.Load()
				if resp.Index <= cur || acked.CompareAndSwap(cur, resp.Index) {
					break
				}
			}
		}
	}()

	const readers, perReader = 32, 20
	for _, n := range []*testNode{leader, f} {
		roundsBefore := n.Counters()["read_index_rounds_total"]
		var wg sync.WaitGroup
		errs := make(chan error, readers)
		for range readers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range perReader {
					before := acked.Load()
					idx, err := n.ReadIndex(ctxT(t))
					if err != nil {
						errs <- err
						return
					}
					if idx < before {
						errs <- errors.New("read index below an acknowledged write")
						return
					}
					if err := n.WaitApplied(ctxT(t), idx); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("%s: %v", n.id, err)
		}
		rounds := n.Counters()["read_index_rounds_total"] - roundsBefore
		t.Logf("%s: %d read-index requests in %d rounds", n.id, readers*perReader, rounds)
		if rounds == 0 || rounds > readers*perReader/2 {
			t.Fatalf("%s: %d rounds for %d concurrent requests: not batched", n.id, rounds, readers*perReader)
		}
	}
	close(stop)
	if err := <-writerDone; err != nil {
		t.Fatalf("writer: %v", err)
	}
}

// TestReadIndexFailsWithoutQuorum: a leader that lost its followers, and a
// follower that lost its leader, answer read-index requests with an error,
// promptly, never with an index.
func TestReadIndexFailsWithoutQuorum(t *testing.T) {
	expectFailure := func(n *testNode, what string) {
		t.Helper()
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		idx, err := n.ReadIndex(ctx)
		if err == nil {
			t.Fatalf("%s: read index %d", what, idx)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%s: took %v to fail", what, d)
		}
		t.Logf("%s: %v (after %v)", what, err, time.Since(start).Round(time.Millisecond))
	}

	t.Run("leader", func(t *testing.T) {
		nodes := startCluster(t, 3, nil)
		leader := waitLeader(t, nodes...)
		createTable(t, leader)
		insertRows(t, leader, 0, 3)
		if _, err := leader.ReadIndex(ctxT(t)); err != nil {
			t.Fatalf("leader read index with a quorum: %v", err)
		}
		for _, f := range followers(leader, nodes...) {
			f.stop()
		}
		expectFailure(leader, "leader without a quorum")
	})
	t.Run("follower", func(t *testing.T) {
		nodes := startCluster(t, 3, nil)
		leader := waitLeader(t, nodes...)
		createTable(t, leader)
		insertRows(t, leader, 0, 3)
		fs := followers(leader, nodes...)
		if _, err := fs[0].ReadIndex(ctxT(t)); err != nil {
			t.Fatalf("follower read index with a leader: %v", err)
		}
		leader.stop()
		fs[1].stop()
		expectFailure(fs[0], "follower without a leader")
	})
}

// waitQueued waits until n waiters wait for a round that has not started.
func waitQueued(t *testing.T, b *readBatcher, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.queued() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters queued, want %d", b.queued(), n)
		}
		time.Sleep(time.Millisecond)
	}
}
