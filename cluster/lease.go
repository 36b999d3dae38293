package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// readLease lets a leader answer read-index requests without a quorum
// round for a short while after one succeeded.
//
// Why it is safe: a confirmation round (confirmTerm) whose heartbeats went
// out at time s in term T succeeded, so a quorum of voters accepted a
// heartbeat of T at or after s. Each of them then holds this node as its
// leader, and hashicorp/raft's voters refuse their vote (and pre-vote) to
// any other candidate while they know a leader; a follower forgets its
// leader only when its heartbeat timer finds no contact for
// HeartbeatTimeout, so not before s+HeartbeatTimeout. Any later leader
// needs the vote of one of them (quorums intersect), so none can exist, let
// alone acknowledge a write, before s+HeartbeatTimeout. Until then this
// node's commit index covers every acknowledged write and every state a
// reader may have seen, exactly as in a round of its own. Three things
// could break that, and each is closed:
//
//   - A leadership transfer (TimeoutNow) makes the target's voters vote
//     despite knowing a leader: transfers revoke the lease and suspend it
//     until they end (suspend).
//   - A voter that restarts forgets its leader at once: voteGuard makes a
//     node refuse votes for HeartbeatTimeout after it starts.
//   - Clocks: every duration is measured on the monotonic clock of the node
//     that measures it, and the lease keeps a margin (leaseFraction) for
//     the rate at which the clocks of two machines may differ. A process
//     paused past its lease finds it expired when it resumes.
//
// The lease is an optimisation only: when it has lapsed, reads fall back to
// rounds, which extend it.
type readLease struct {
	mu        sync.Mutex
	term      uint64
	until     time.Time
	epoch     uint64 // bumped by every suspend and resume
	suspended int    // transfers under way
}

// leaseFraction is the part of HeartbeatTimeout a lease lasts.
const leaseFraction = 0.6

// epochNow returns the epoch to pass to grant for a round that starts now.
func (l *readLease) epochNow() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch
}

// grant extends the lease of term to until, unless a transfer started or
// ended since the round began (epoch), or one is under way.
func (l *readLease) grant(term uint64, until time.Time, epoch uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.suspended > 0 || epoch != l.epoch {
		return
	}
	if term != l.term || until.After(l.until) {
		l.term, l.until = term, until
	}
}

// remaining reports how long the lease of term still lasts at now (zero or
// less: it has lapsed).
func (l *readLease) remaining(term uint64, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.suspended > 0 || term != l.term {
		return 0
	}
	return l.until.Sub(now)
}

// transferring reports whether a leadership transfer is under way.
func (l *readLease) transferring() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.suspended > 0
}

// suspend revokes the lease until the returned resume is called.
func (l *readLease) suspend() (resume func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.suspended++
	l.epoch++
	l.until = time.Time{}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.suspended--
			l.epoch++
		})
	}
}

// transferLeadership starts a leadership transfer with start and waits for
// it within ctx. The read lease is suspended from before the transfer
// starts until raft has finished it, even if ctx ends first: the target's
// election is the one kind that voters holding a leader take part in.
func (n *Node) transferLeadership(ctx context.Context, start func() raft.Future) error {
	resume := n.lease.suspend()
	return n.wait(ctx, thenFuture{start(), resume})
}

// thenFuture is a raft.Future that runs then once its future has answered
// (wait calls Error exactly once, even when its caller gives up first).
type thenFuture struct {
	raft.Future
	then func()
}

func (f thenFuture) Error() error {
	defer f.then()
	return f.Future.Error()
}

// leaseReadIndex returns the leader's read index without a round when its
// lease for the current term holds, and renews the lease in the background
// once half of it has gone, so that steady reads never wait for a round.
func (n *Node) leaseReadIndex() (uint64, bool) {
	if !n.cfg.ReadLease {
		return 0, false
	}
	term := n.raft.CurrentTerm()
	if n.raft.State() != raft.Leader || n.readyTerm.Load() != term {
		return 0, false
	}
	left := n.lease.remaining(term, time.Now())
	if left <= 0 {
		return 0, false
	}
	index, err := n.coveringIndex()
	if err != nil || index > n.raft.CommitIndex() {
		// A load not committed yet: a round waits for it (awaitCommitted).
		return 0, false
	}
	if left < n.leaseDuration()/2 {
		n.reads.leader.renew()
	}
	return index, true
}

// leaseDuration is how long a lease lasts after its round's heartbeats went
// out.
func (n *Node) leaseDuration() time.Duration {
	return time.Duration(float64(n.cfg.HeartbeatTimeout) * leaseFraction)
}
