package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestReadLeaseGrantSuspend: a lease covers only its term, lapses at its
// end, and a transfer revokes it and keeps rounds that overlap the
// transfer from granting one.
func TestReadLeaseGrantSuspend(t *testing.T) {
	var l readLease
	now := time.Now()
	l.grant(3, now.Add(time.Second), l.epochNow())
	if l.remaining(3, now) <= 0 {
		t.Fatal("no lease after a grant")
	}
	if l.remaining(4, now) > 0 {
		t.Fatal("a lease of term 3 holds in term 4")
	}
	if l.remaining(3, now.Add(2*time.Second)) > 0 {
		t.Fatal("the lease outlives its end")
	}

	before := l.epochNow() // a round starts
	resume := l.suspend()  // a transfer starts
	if l.remaining(3, now) > 0 {
		t.Fatal("the lease holds during a transfer")
	}
	l.grant(3, now.Add(time.Second), before)
	l.grant(3, now.Add(time.Second), l.epochNow())
	resume()
	if l.remaining(3, now) > 0 {
		t.Fatal("a round that overlapped the transfer granted a lease")
	}
	l.grant(3, now.Add(time.Second), before)
	if l.remaining(3, now) > 0 {
		t.Fatal("a round that started before the transfer granted a lease after it")
	}
	l.grant(3, now.Add(time.Second), l.epochNow())
	if l.remaining(3, now) <= 0 {
		t.Fatal("no lease from a round after the transfer")
	}
}

// TestReadLeaseServesReadsAndLapses: with ReadLease, a leader answers most
// read-index requests without a round, every index still covers the writes
// acknowledged before it was asked for, and a leader cut off from its
// followers stops answering once the lease of its last round has run out.
func TestReadLeaseServesReadsAndLapses(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.ReadLease = true })
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	const reads = 200
	roundsBefore := leader.Counters()["read_index_rounds_total"]
	for i := range reads {
		acked := insertRow(t, leader, i)
		idx, err := leader.ReadIndex(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		if idx < acked {
			t.Fatalf("read index %d below the acknowledged write %d", idx, acked)
		}
	}
	rounds := leader.Counters()["read_index_rounds_total"] - roundsBefore
	leased := leader.Counters()["read_index_lease_total"]
	t.Logf("%d reads: %d rounds, %d on the lease", reads, rounds, leased)
	if leased == 0 || rounds > reads/2 {
		t.Fatalf("%d rounds and %d lease reads for %d reads: the lease is not used", rounds, leased, reads)
	}

	for _, f := range followers(leader, nodes...) {
		f.stop()
	}
	stopped := time.Now()
	var lastOK time.Time
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		// The lease is checked after asked, so a call's start bounds the
		// check from below however late the answer arrives.
		asked := time.Now()
		_, err := leader.ReadIndex(ctx)
		if err != nil {
			break
		}
		lastOK = asked
		if ctx.Err() != nil {
			t.Fatal("a leader without followers keeps answering read-index requests")
		}
	}
	if !lastOK.IsZero() && lastOK.Sub(stopped) > leader.leaseDuration() {
		t.Fatalf("answered %v after losing its followers, lease %v", lastOK.Sub(stopped), leader.leaseDuration())
	}
}

// TestReadLeaseEndsWithTransfer: a transfer suspends the lease from before
// it starts until raft has answered; after a leadership transfer, the old
// leader does not answer from its lease, and the new leader's indexes cover
// writes the old one acknowledged.
func TestReadLeaseEndsWithTransfer(t *testing.T) {
	nodes := startCluster(t, 3, func(c *Config) { c.ReadLease = true })
	old := waitLeader(t, nodes...)
	createTable(t, old)
	acked := insertRow(t, old, 1)
	if _, err := old.ReadIndex(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// transferLeadership revokes the lease before it starts the transfer
	// and restores it only after raft has answered.
	term := old.raft.CurrentTerm()
	if old.lease.remaining(term, time.Now()) <= 0 {
		t.Fatal("no lease after a round")
	}
	var during time.Duration
	err := old.transferLeadership(ctxT(t), func() raft.Future {
		during = old.lease.remaining(term, time.Now())
		return old.raft.Barrier(0)
	})
	if err != nil || during > 0 {
		t.Fatalf("lease left %v while the transfer started (err %v)", during, err)
	}
	if _, err := old.ReadIndex(ctxT(t)); err != nil || old.lease.remaining(term, time.Now()) <= 0 {
		t.Fatalf("no lease from a round after the transfer ended: %v", err)
	}
	if err := old.StepDown(ctxT(t), ""); err != nil {
		t.Fatal(err)
	}
	if _, ok := old.leaseReadIndex(); ok {
		t.Fatal("the old leader still answers from its lease")
	}
	leader := waitLeader(t, nodes...)
	for _, n := range nodes {
		idx, err := n.ReadIndex(ctxT(t))
		if err != nil {
			t.Fatalf("%s: %v", n.id, err)
		}
		if idx < acked {
			t.Fatalf("%s (leader %s): read index %d below the acknowledged write %d", n.id, leader.id, idx, acked)
		}
	}
}

// TestVoteGuardRefusesVotesAfterStart: for its hold time the guard answers
// vote and pre-vote requests with a refusal in the candidate's own term and
// passes nothing to raft; afterwards it passes them on.
func TestVoteGuardRefusesVotesAfterStart(t *testing.T) {
	newTransport := func() *raft.NetworkTransport {
		tr, err := raft.NewTCPTransport("127.0.0.1:0", nil, 2, 5*time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	candidate := newTransport()
	vote := func(to *voteGuard) (*raft.RequestVoteResponse, error) {
		var resp raft.RequestVoteResponse
		err := candidate.RequestVote("voter", to.LocalAddr(), &raft.RequestVoteRequest{
			RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("c"), Addr: []byte(candidate.LocalAddr())},
			Term:      7,
		}, &resp)
		return &resp, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	held := newVoteGuard(ctx, newTransport(), time.Hour)
	resp, err := vote(held)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Granted || resp.Term != 7 {
		t.Fatalf("vote during the hold: granted %v in term %d, want a refusal in term 7", resp.Granted, resp.Term)
	}
	var pre raft.RequestPreVoteResponse
	err = candidate.RequestPreVote("voter", held.LocalAddr(), &raft.RequestPreVoteRequest{
		RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("c"), Addr: []byte(candidate.LocalAddr())},
		Term:      7,
	}, &pre)
	if err != nil || pre.Granted || pre.Term != 7 {
		t.Fatalf("pre-vote during the hold: %+v %v", pre, err)
	}
	select {
	case rpc := <-held.Consumer():
		t.Fatalf("raft received %T during the hold", rpc.Command)
	default:
	}

	open := newVoteGuard(ctx, newTransport(), 0)
	go func() {
		rpc := <-open.Consumer()
		rpc.Respond(&raft.RequestVoteResponse{Term: 7, Granted: true}, nil)
	}()
	resp, err = vote(open)
	if err != nil || !resp.Granted {
		t.Fatalf("vote after the hold: %+v %v", resp, err)
	}
}
