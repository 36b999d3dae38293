package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/snapshot"
)

// A load (or boot) goes through raft's user restore, which on the leader
// stores the load as a snapshot at a new index, restores the FSM from it
// and moves raft's last log and applied indexes up to it (a hole in the
// log) before it appends the no-op whose commit tells that a quorum holds
// the load. Until then the load is this node's alone: if the node stops or
// loses leadership first, the others elect a leader at the lower index
// without it, and this node, which would restart from that snapshot with
// its indexes above the cluster's, would skip every entry the new leader
// sends and serve the load that never committed, for good.
//
// So install writes the marker loadPendingFile, durably, before it calls
// raft.Raft.Restore, and removes it once Restore has returned: the no-op
// committed, or nothing was installed. A Restore that fails after the
// snapshot was stored stops the node (Halted), marker kept. A start that
// finds the marker (repairPendingLoad), before raft runs, deletes the
// load's snapshot and the log entries after its hole (the no-op), and
// empties the database, which raft then rebuilds from the newest
// remaining snapshot and the log. If the load did commit elsewhere, the
// leader sends it again (InstallSnapshot); either way the node ends up
// with what the cluster committed. The one case this gets wrong is a
// process that dies in the instant between the no-op's commit and the
// marker's removal: the load is committed on the followers that hold it,
// but this node no longer counts among them.

// loadPendingFile, in the raft directory, holds the index of a load's
// snapshot that may be installed here without being committed.
const loadPendingFile = "load-pending"

// markLoadPending records, durably, that the load at index is about to be
// installed.
func markLoadPending(raftDir string, index uint64) error {
	f, err := os.Create(filepath.Join(raftDir, loadPendingFile))
	if err != nil {
		return fmt.Errorf("mark load pending: %w", err)
	}
	_, err = f.WriteString(strconv.FormatUint(index, 10))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = snapshot.SyncDir(raftDir)
	}
	if err != nil {
		return fmt.Errorf("mark load pending: %w", err)
	}
	return nil
}

// clearLoadPending removes the marker, durably.
func clearLoadPending(raftDir string) error {
	if err := os.Remove(filepath.Join(raftDir, loadPendingFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clear load pending: %w", err)
	}
	if err := snapshot.SyncDir(raftDir); err != nil {
		return fmt.Errorf("clear load pending: %w", err)
	}
	return nil
}

// snapshotStored reports whether snaps holds a snapshot at index (or
// cannot tell).
func snapshotStored(snaps *snapshotStore, index uint64) bool {
	metas, err := snaps.all()
	if err != nil {
		return true
	}
	for _, m := range metas {
		if m.Index == index {
			return true
		}
	}
	return false
}

// repairPendingLoad undoes, at start-up before raft runs, a load that may
// not have been committed (see above). It must run before anything can
// take a snapshot of the FSM (peers.json recovery does).
func (n *Node) repairPendingLoad(raftDir string, logs raft.LogStore, snaps *snapshotStore) error {
	b, err := os.ReadFile(filepath.Join(raftDir, loadPendingFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: read the load-pending marker: %w", err)
	}
	// A marker cut short by a crash was written before Restore was
	// called: no snapshot of the load exists, and 0 matches none.
	index, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("cluster: read the raft log's last index: %w", err)
	}
	metas, err := snaps.all()
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	removed := ""
	for _, m := range metas {
		if m.Index != index {
			continue
		}
		if err := os.RemoveAll(filepath.Join(snaps.dir, m.ID)); err != nil {
			return fmt.Errorf("cluster: remove the snapshot of an uncommitted load: %w", err)
		}
		if err := snapshot.SyncDir(snaps.dir); err != nil {
			return fmt.Errorf("cluster: remove the snapshot of an uncommitted load: %w", err)
		}
		removed = m.ID
	}
	// What follows the hole (the no-op) goes too: without the snapshot
	// the log would skip the indexes in between.
	if removed != "" && last >= index {
		if err := logs.DeleteRange(index, last); err != nil {
			return fmt.Errorf("cluster: remove the log entries after an uncommitted load: %w", err)
		}
	}
	n.logger.Warn("the node stopped while a load was being installed, before the cluster committed it: "+
		"discarding the load and the database, to rebuild the database from what the cluster committed",
		"load_index", index, "log_last_index", last, "removed_snapshot", removed, "fsm_index", n.fsm.AppliedIndex())
	if err := n.fsm.Discard(); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	return clearLoadPending(raftDir)
}
