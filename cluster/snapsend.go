package cluster

import (
	"errors"
	"io"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/snapshot"
)

// snapshotSendCheck is the raft.Transport raft runs on: the voteGuard,
// except that when a follower refuses a snapshot the leader sent because
// the stream is corrupt (its decoder found bad compressed data or a bad
// checksum, snapshot.ErrCorrupt), the node takes a new snapshot at once.
//
// Why: raft sends a follower that needs a snapshot the newest one its
// store lists, and the store does not read a snapshot through before
// sending it (see snapshotStore). A newest snapshot file damaged on the
// leader's disk would be sent, refused and sent again for as long as no
// new snapshot replaces it, which on a quiet cluster is for ever: no new
// or lagging node could catch up. The new snapshot is listed first (same
// or later index, later ID), so raft's next attempt sends it. The damaged
// file is left for the store to reap like any older snapshot: removing the
// newest snapshot at once would leave raft, should the node restart
// before the new one is complete, without the snapshot its compacted log
// starts from.
//
// A stream damaged on the way rather than on the disk also causes a new
// snapshot; that only costs one snapshot.
type snapshotSendCheck struct {
	*voteGuard
	damaged func(id string) // called in its own goroutine
	busy    atomic.Bool     // a damaged call is under way
}

func (c *snapshotSendCheck) InstallSnapshot(id raft.ServerID, target raft.ServerAddress, args *raft.InstallSnapshotRequest,
	resp *raft.InstallSnapshotResponse, data io.Reader) error {
	err := c.voteGuard.InstallSnapshot(id, target, args, resp, data)
	if err != nil && refusedAsCorrupt(err) {
		if f, ok := data.(bufferedFile); ok && c.busy.CompareAndSwap(false, true) {
			go func() {
				defer c.busy.Store(false)
				c.damaged(f.id)
			}()
		}
	}
	return err
}

// refusedAsCorrupt reports whether err, the error a follower returned for
// an InstallSnapshot, says that the stream is corrupt. It comes over the
// network as text.
func refusedAsCorrupt(err error) bool {
	return errors.Is(err, snapshot.ErrCorrupt) || strings.Contains(err.Error(), snapshot.ErrCorrupt.Error())
}

// replaceDamagedSnapshot takes a new snapshot to replace the snapshot id,
// which a follower refused as corrupt (see snapshotSendCheck).
func (n *Node) replaceDamagedSnapshot(id string) {
	n.metrics.snapshotsDamaged.Add(1)
	n.logger.Error("a follower refused a snapshot as corrupt: taking a new snapshot to send instead", "snapshot", id)
	if err := n.raft.Snapshot().Error(); err != nil {
		n.logger.Error("cannot take a snapshot to replace a damaged one", "snapshot", id, "error", err)
	}
}
