package cluster

import (
	"fmt"

	"github.com/hashicorp/raft"
)

// gatedFSM is the state machine as raft drives it: an entry is applied
// only once this node's log holds it on disk. On a follower that is
// always so (it syncs before it answers); on the leader, whose append of
// commands does not wait for its sync, it is the rule that keeps a commit
// counted on the leader's unsynced copy from reaching a client (see "The
// leader's append", walstore.go).
//
// Being handed entries also tells the node they are committed (see
// maxProposalsInFlight).
type gatedFSM struct {
	StateMachine
	wal       *walLogStore
	halt      func(error) // the node's, run on its own goroutine
	committed func()
}

func (g gatedFSM) Apply(l *raft.Log) any {
	g.committed()
	if err := g.wait(l.Index); err != nil {
		return err
	}
	return g.StateMachine.Apply(l)
}

func (g gatedFSM) ApplyBatch(logs []*raft.Log) []any {
	if len(logs) == 0 {
		return nil
	}
	g.committed()
	if err := g.wait(logs[len(logs)-1].Index); err != nil {
		resps := make([]any, len(logs))
		for i := range resps {
			resps[i] = err
		}
		return resps
	}
	return g.StateMachine.ApplyBatch(logs)
}

// Snapshot refuses once the log's sync has failed: raft counts the
// batches answered with the error as applied, so a snapshot labelled with
// raft's index would hold a database that lacks them.
func (g gatedFSM) Snapshot() (raft.FSMSnapshot, error) {
	if err := g.wal.Err(); err != nil {
		return nil, fmt.Errorf("cluster: snapshot: %w", err)
	}
	return g.StateMachine.Snapshot()
}

// wait blocks until index is durable. If it never will be (the log's sync
// failed), nothing more may be applied: the node halts, and the entries
// are answered with the error, unapplied, as a halted state machine
// answers them.
func (g gatedFSM) wait(index uint64) error {
	err := g.wal.WaitDurable(index)
	if err != nil {
		err = fmt.Errorf("cluster: apply entry %d: %w", index, err)
		go g.halt(err)
	}
	return err
}
