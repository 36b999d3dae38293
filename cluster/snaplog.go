package cluster

import (
	"errors"
	"time"

	"github.com/hashicorp/raft"
)

// logSnapshotRetry is how long watchLogSize waits before it tries again
// after a snapshot failed, or while raft has applied nothing since the
// latest snapshot (at a start, or on a follower whose stored entries are
// not committed yet), rather than retrying at every stored entry.
const logSnapshotRetry = time.Second

// watchLogSize takes a snapshot whenever the entries stored since the
// latest one pass Config.SnapshotLogSize bytes (see meteredLogStore), so
// that a restart never reads much more than that from the log. It runs
// beside the apply path, not on it: storing an entry only signals it. It
// runs until Close.
func (n *Node) watchLogSize() {
	defer n.wg.Done()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.logs.due:
		}
		for n.logs.overLimit() {
			if n.raft.AppliedIndex() <= n.logs.snapshotIndex() {
				if !n.sleep(logSnapshotRetry) {
					return
				}
				continue
			}
			pending := n.logs.pendingBytes()
			n.logger.Info("raft log grew past its size limit since the last snapshot: taking a snapshot",
				"log_bytes", pending, "limit", n.cfg.SnapshotLogSize)
			start := time.Now()
			err := n.raft.Snapshot().Error()
			switch {
			case err == nil:
				n.metrics.logSizeSnapshots.Add(1)
				n.logger.Info("snapshot by log size taken", "took", time.Since(start).Round(time.Millisecond),
					"log_bytes_before", pending, "log_bytes_after", n.logs.pendingBytes())
				continue
			case errors.Is(err, raft.ErrRaftShutdown):
				return
			case errors.Is(err, raft.ErrNothingNewToSnapshot):
				n.logger.Debug("snapshot by log size: nothing applied since the last snapshot yet")
			default:
				n.logger.Warn("snapshot by log size failed", "error", err)
			}
			if !n.sleep(logSnapshotRetry) {
				return
			}
		}
	}
}

// sleep waits for d, or until Close; it reports whether the node is still
// open.
func (n *Node) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-n.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
