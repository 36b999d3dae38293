package cluster

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// Phases of a start that Open reports through Config.Startup.
const (
	PhaseOpeningLog        = "opening raft log"
	PhaseRecovering        = "recovering the cluster configuration from raft/peers.json"
	PhaseRestoringSnapshot = "restoring the latest snapshot"
	PhaseScanningLog       = "scanning raft log"
	PhaseFormingCluster    = "forming or joining the cluster"
)

// startupLogInterval is how often a long scan or replay logs its progress.
const startupLogInterval = 2 * time.Second

// replayPollInterval is how often watchReplay looks at raft's applied index.
const replayPollInterval = 20 * time.Millisecond

// Startup tells how far a node's start has got. Open updates it as it
// goes, so that the caller can tell clients why the node is not ready yet
// while Open is still running (raftlite serves /readyz and /status from
// the moment it starts). The zero value is ready to use.
type Startup struct {
	phase   atomic.Pointer[string]
	since   atomic.Int64 // when the phase began, Unix nanoseconds
	toScan  atomic.Uint64
	entries atomic.Uint64 // scanned so far
	bytes   atomic.Uint64
}

// StartupStatus is a Startup at one moment.
type StartupStatus struct {
	Phase string
	// InPhase is how long the phase has lasted.
	InPhase time.Duration
	// EntriesToScan, EntriesScanned and BytesScanned tell how far the scan
	// of the log (PhaseScanningLog) has got.
	EntriesToScan, EntriesScanned, BytesScanned uint64
}

// SetPhase records that the start has reached phase.
func (s *Startup) SetPhase(phase string) {
	s.phase.Store(&phase)
	s.since.Store(time.Now().UnixNano())
}

// Status returns where the start is.
func (s *Startup) Status() StartupStatus {
	st := StartupStatus{
		EntriesToScan:  s.toScan.Load(),
		EntriesScanned: s.entries.Load(),
		BytesScanned:   s.bytes.Load(),
	}
	if p := s.phase.Load(); p != nil {
		st.Phase = *p
		st.InPhase = time.Since(time.Unix(0, s.since.Load()))
	}
	return st
}

// scanned counts one entry of n bytes read by the scan.
func (s *Startup) scanned(n int64) {
	s.entries.Add(1)
	s.bytes.Add(uint64(n))
}

// tick calls f every interval until f returns false or stop is closed.
func tick(stop <-chan struct{}, interval time.Duration, f func() bool) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if !f() {
			return
		}
	}
}

// newRaft is raft.NewRaft with its start reported. NewRaft reads every log
// entry after the latest snapshot (looking for configuration changes)
// before it returns; the log store counts them into n.startup, which a
// goroutine logs as the scan goes on. The scan's total is also the log's
// size since the latest snapshot, which the snapshot-by-size trigger starts
// from.
func (n *Node) newRaft(rc *raft.Config, logs *meteredLogStore, snaps raft.SnapshotStore, trans raft.Transport) (*raft.Raft, error) {
	snapIndex := uint64(0)
	metas, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("cluster: list raft snapshots: %w", err)
	}
	if len(metas) > 0 {
		snapIndex = metas[0].Index
	}
	last, err := logs.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("cluster: read the raft log's last index: %w", err)
	}
	toScan := uint64(0)
	if last > snapIndex {
		toScan = last - snapIndex
	}
	p := n.startup
	if !rc.NoSnapshotRestoreOnStart {
		p.SetPhase(PhaseRestoringSnapshot)
	} else {
		p.SetPhase(PhaseScanningLog)
	}
	p.toScan.Store(toScan)
	if toScan > 0 {
		n.logger.Info("scanning the raft log after the latest snapshot", "from_index", snapIndex+1, "to_index", last, "entries", toScan)
	}
	logs.scan.Store(p)
	stop := make(chan struct{})
	go tick(stop, startupLogInterval, func() bool {
		st := p.Status()
		n.logger.Info("scanning the raft log", "phase", st.Phase, "entries_scanned", st.EntriesScanned, "of", toScan, "bytes_scanned", st.BytesScanned)
		return true
	})
	start := time.Now()
	r, err := raft.NewRaft(rc, gatedFSM{StateMachine: n.fsm, wal: n.wal, halt: n.halt, committed: n.proposer.entriesCommitted}, logs, n.store, snaps, trans)
	close(stop)
	logs.scan.Store(nil)
	if err != nil {
		return nil, err
	}
	st := p.Status()
	n.logger.Info("raft log scanned", "entries", st.EntriesScanned, "bytes", st.BytesScanned, "took", time.Since(start).Round(time.Millisecond))
	logs.snapshotted(snapIndex)
	logs.stored(last, int64(st.BytesScanned))
	return r, nil
}

// startReplay follows raft's re-delivery, after a restart, of the entries
// the FSM had already applied (raft starts applying after the latest
// snapshot; the FSM skips what it has). The node is not ready until raft
// has caught up with where the FSM was (see Ready): writes would wait
// behind the replay.
func (n *Node) startReplay() {
	target := n.fsm.AppliedIndex()
	from := n.raft.AppliedIndex()
	if from >= target {
		return
	}
	n.replayTo.Store(target)
	n.logger.Info("replaying the raft log up to the database's applied index", "from_index", from, "to_index", target)
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		defer n.replayTo.Store(0)
		start, lastLog := time.Now(), time.Now()
		tick(n.ctx.Done(), replayPollInterval, func() bool {
			applied := n.raft.AppliedIndex()
			if applied >= target {
				n.logger.Info("raft log replayed", "entries", target-from, "took", time.Since(start).Round(time.Millisecond))
				return false
			}
			if time.Since(lastLog) >= startupLogInterval {
				lastLog = time.Now()
				n.logger.Info("replaying the raft log", "applied_index", applied, "to_index", target)
			}
			return true
		})
	}()
}

// replaying returns why the node is not ready while raft replays its log
// after a restart, or nil.
func (n *Node) replaying() error {
	target := n.replayTo.Load()
	if target == 0 {
		return nil
	}
	return fmt.Errorf("cluster: replaying raft log: applied index %d of %d", n.raft.AppliedIndex(), target)
}
