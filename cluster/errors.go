package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"
)

// Errors returned by Node methods. Callers compare with errors.Is: most are
// wrapped with context.
var (
	// ErrNotLeader means this node is not the leader, so the operation was
	// not attempted (nothing was proposed to the log). Forward to the leader.
	ErrNotLeader = errors.New("not leader")
	// ErrNoLeader means no leader is currently known, e.g. during an
	// election. Retry later.
	ErrNoLeader = errors.New("leader not found")
	// ErrLeadershipLost means the entry was proposed but this node lost
	// leadership (or shut down) before learning whether it committed: the
	// write MAY have been applied. Only an idempotent or deduplicated
	// (client_id/seq) retry is safe. See IsAmbiguous.
	ErrLeadershipLost = errors.New("leadership lost while committing; the write may or may not have been applied")
	// ErrCommitTimeout means the entry was proposed but the caller's context
	// ended before it committed: the write MAY still be applied. See
	// IsAmbiguous.
	ErrCommitTimeout = errors.New("timed out waiting for commit; the write may or may not have been applied")
	// ErrTimeout means the operation timed out before anything was proposed
	// (e.g. Raft's apply queue was full): it was not applied.
	ErrTimeout = errors.New("timed out before the entry was proposed; it was not applied")
	// ErrLeadershipTransfer means a leadership transfer is in progress and
	// the leader refused the entry: it was not applied. Retry shortly.
	ErrLeadershipTransfer = errors.New("leadership transfer in progress")
	// ErrClosed means the node is closed (or Raft shut down, e.g. after this
	// node was removed from the cluster).
	ErrClosed = errors.New("cluster node closed")
	// ErrBadRequest means the arguments were invalid (e.g. a missing node
	// ID, or a leadership transfer target that is not a voter).
	ErrBadRequest = errors.New("bad request")
	// ErrApplyFailed means the entry committed but this node's state
	// machine failed to apply it (it halted, or is closing): the write takes
	// effect on the other nodes, but its results are unknown here. See
	// IsAmbiguous.
	ErrApplyFailed = errors.New("committed to the log but not applied on this node; the write takes effect on the other nodes and its results are unknown")
	// ErrHalted means this node's state machine has halted (a batch could
	// not be committed to its database: disk full, I/O error), so it
	// proposes nothing: it was not applied. The leader hands leadership to
	// another voter within a reconciliation period; retry shortly.
	ErrHalted = errors.New("state machine halted on this node")
	// ErrEntryTooLarge means the write encodes to more than
	// Config.MaxEntryBytes; it was not proposed.
	ErrEntryTooLarge = errors.New("write too large for one log entry")
	// ErrUnknownNode means the node ID is not a member of the cluster.
	ErrUnknownNode = errors.New("unknown node")
	// ErrNotFormed means this node, started without Raft state, is not yet
	// part of a cluster: it is waiting for the nodes it expects, joining,
	// or refusing a cluster that is not the one it was told to form (see
	// Node.Form). Ready's error says which.
	ErrNotFormed = errors.New("not part of a cluster")
)

// IsAmbiguous reports whether err leaves the outcome of a write unknown: the
// entry was proposed but the proposer could not learn whether it committed.
func IsAmbiguous(err error) bool {
	return errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrCommitTimeout) || errors.Is(err, ErrApplyFailed)
}

// mapApplyError turns an error from a Raft future for an entry that was
// handed to Raft into this package's typed errors.
func mapApplyError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost):
		return ErrLeadershipLost
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrLeadershipTransfer
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrTimeout
	case errors.Is(err, raft.ErrRaftShutdown):
		// Raft fails every in-flight future on shutdown, and the same error
		// is used whether or not the entry was already in the log.
		return fmt.Errorf("%w (%w)", ErrLeadershipLost, ErrClosed)
	default:
		return err
	}
}

// mapError maps errors of Raft futures that do not propose data entries
// (configuration changes, barriers, leadership checks).
func mapError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost):
		return ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return ErrLeadershipTransfer
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrTimeout
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	default:
		return err
	}
}
