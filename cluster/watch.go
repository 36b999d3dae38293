package cluster

import (
	"context"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// WatchChanges reads this node's change history; see
// fsm.FSM.WatchChanges. Any node serves it: the history holds only
// applied, hence committed, entries.
func (n *Node) WatchChanges(ctx context.Context, req api.WatchRequest, wait time.Duration) (api.WatchPage, error) {
	return n.fsm.WatchChanges(ctx, req, wait)
}

// CompactWatch proposes a CmdCompactWatch entry trimming the change
// history up to and including index on every replica, and returns its
// index once it is applied here. Leader only, like Execute.
func (n *Node) CompactWatch(ctx context.Context, index uint64) (uint64, error) {
	return n.proposeMarker(ctx, &fsm.Command{Type: fsm.CmdCompactWatch, CompactIndex: index}, "compact watch")
}
