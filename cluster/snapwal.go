package cluster

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// walCheckInterval is how often the node compares the WAL's size with
// Config.SnapshotWALSize.
const walCheckInterval = time.Second

// watchWAL takes a snapshot whenever the database's WAL file has grown past
// Config.SnapshotWALSize, besides Raft's own trigger by log entries, and
// then truncates the WAL. A WAL grows past SQLite's automatic checkpoints
// when long reads (snapshot or backup copies) pin it while writes go on;
// the snapshot compacts the log of the same writes, and the truncating
// checkpoint returns the WAL's disk space. It runs until Close.
func (n *Node) watchWAL() {
	defer n.wg.Done()
	limit := n.cfg.SnapshotWALSize
	if limit <= 0 {
		return
	}
	tick(n.ctx.Done(), walCheckInterval, func() bool {
		size := n.fsm.WALSize()
		if size <= limit {
			return true
		}
		n.logger.Info("WAL over its size limit: taking a snapshot", "wal_bytes", size, "limit", limit)
		err := n.raft.Snapshot().Error()
		if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
			if errors.Is(err, raft.ErrRaftShutdown) {
				return false
			}
			n.logger.Warn("WAL-size snapshot failed", "error", err)
		}
		if err := n.fsm.TruncateWAL(n.ctx); err != nil {
			n.logger.Warn("truncating the WAL failed", "error", err)
		}
		return true
	})
}
