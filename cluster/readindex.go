package cluster

import (
	"context"
	"fmt"
)

// ReadIndex returns an index i such that a read of any node's local copy,
// once that node's FSM has applied i (WaitApplied), is linearizable: it sees
// every write acknowledged before ReadIndex was called. On the leader it is
// computed locally; elsewhere the leader is asked through the cluster
// service ("linearizable follower reads").
//
// The leader computes it as follows: once per term it applies a barrier, so
// every entry committed by earlier leaders is applied locally; then it takes
// its FSM's applied index (every write it acknowledged is applied by then),
// and then confirms it is still leader with a quorum round, which rules out a
// newer leader having acknowledged later writes. The index is an FSM applied
// index, not raft's commit index: raft's index also counts entries the FSM
// never sees (no-ops, barriers), which WaitApplied would wait for forever.
func (n *Node) ReadIndex(ctx context.Context) (uint64, error) {
	return n.readIndex(ctx, 0)
}

func (n *Node) readIndex(ctx context.Context, hops int) (uint64, error) {
	if n.closed.Load() {
		return 0, ErrClosed
	}
	if !n.IsLeader() {
		var resp readIndexResponse
		if err := n.forward(ctx, pathReadIndex, hops, struct{}{}, &resp); err != nil {
			return 0, fmt.Errorf("cluster: read index from leader: %w", err)
		}
		return resp.Index, nil
	}
	n.metrics.readIndexes.Add(1)
	ctx, cancel := n.withApplyTimeout(ctx)
	defer cancel()
	if err := n.establishLeadership(ctx); err != nil {
		return 0, err
	}
	index := n.fsm.AppliedIndex()
	if err := n.VerifyLeader(ctx); err != nil {
		return 0, err
	}
	return index, nil
}
