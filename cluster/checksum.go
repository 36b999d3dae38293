package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// TriggerChecksum proposes a checksum marker (fsm.CmdChecksum) and returns
// its index once it is applied here: every replica takes the checksum of its
// database as of that index, for ChecksumAt. Leader only, like Execute.
func (n *Node) TriggerChecksum(ctx context.Context) (uint64, error) {
	res, err := n.propose(ctx, &fsm.Command{Type: fsm.CmdChecksum})
	if err != nil {
		return 0, err
	}
	switch v := res.(type) {
	case *api.Response:
		if v == nil {
			return 0, errors.New("cluster: checksum: FSM returned a nil response")
		}
		return v.Index, nil
	case error:
		return 0, fmt.Errorf("cluster: checksum: FSM: %w", v)
	default:
		return 0, fmt.Errorf("cluster: checksum: unexpected FSM response type %T", res)
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
