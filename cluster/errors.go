package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// Node methods return the outcome errors of package api (api.ErrNotLeader,
// api.ErrLeadershipLost, ...), wrapped with context; callers compare with
// errors.Is. ErrNotFormed is the one error of this package's own: it is a
// state, which Ready reports, rather than an answer to a request.

// ErrNotFormed means this node, started without Raft state, is not yet
// part of a cluster: it is waiting for the nodes it expects, joining, or
// refusing a cluster that is not the one it was told to form (see
// Node.Form). Ready's error says which.
var ErrNotFormed = errors.New("not part of a cluster")

// mapApplyError turns an error from a Raft future for an entry that was
// handed to Raft into this package's typed errors.
func mapApplyError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return api.ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return api.ErrLeadershipLost
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return api.ErrLeadershipTransfer
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return api.ErrEnqueueTimeout
	case errors.Is(err, raft.ErrRaftShutdown):
		// Raft fails every in-flight future on shutdown, and the same error
		// is used whether or not the entry was already in the log.
		return fmt.Errorf("%w (%w)", api.ErrLeadershipLost, api.ErrClosed)
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
		return api.ErrNotLeader
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return api.ErrLeadershipTransfer
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return api.ErrEnqueueTimeout
	case errors.Is(err, raft.ErrRaftShutdown):
		return api.ErrClosed
	default:
		return err
	}
}
