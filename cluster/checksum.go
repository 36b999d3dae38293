package cluster

import (
	"context"
	"fmt"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// TriggerChecksum proposes a checksum marker (fsm.CmdChecksum) and returns
// its index once it is applied here: every replica takes the checksum of its
// database as of that index, for ChecksumAt. Leader only, like Execute.
func (n *Node) TriggerChecksum(ctx context.Context) (uint64, error) {
	return n.proposeMarker(ctx, &fsm.Command{Type: fsm.CmdChecksum}, "checksum")
}

// proposeMarker proposes cmd, a command whose response carries only its
// index, and returns that index once the entry is applied here.
func (n *Node) proposeMarker(ctx context.Context, cmd *fsm.Command, what string) (uint64, error) {
	res, err := n.propose(ctx, cmd)
	if err != nil {
		return 0, err
	}
	switch v := res.(type) {
	case *api.Response:
		if v == nil {
			return 0, fmt.Errorf("cluster: %s: FSM returned a nil response", what)
		}
		return v.Index, nil
	case error:
		return 0, fmt.Errorf("cluster: %s: FSM: %w", what, v)
	default:
		return 0, fmt.Errorf("cluster: %s: unexpected FSM response type %T", what, res)
	}
}

// ChecksumAt returns this node's checksum at the checksum marker index,
// waiting until it has applied it; see fsm.FSM.ChecksumAt.
func (n *Node) ChecksumAt(ctx context.Context, index uint64) (string, error) {
	return n.fsm.ChecksumAt(ctx, index)
}

// Checksum returns the checksum of this node's database now, with the
// applied index it describes; see fsm.FSM.Checksum.
func (n *Node) Checksum(ctx context.Context) (uint64, string, error) {
	return n.fsm.Checksum(ctx)
}
