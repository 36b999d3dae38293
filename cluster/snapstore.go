package cluster

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/snapshot"
)

// snapshotStore is the node's raft.SnapshotStore: a directory per snapshot,
// named <term>-<index>-<milliseconds>, holding meta.json (the
// raft.SnapshotMeta) and state.bin (the stream package fsm writes), built
// under the name <id>.tmp and renamed once complete and synced. That is the
// layout of raft's FileSnapshotStore, so either reads what the other wrote.
// It differs where whole-database snapshots of hundreds of megabytes need
// it:
//
//   - No CRC-64 of the file. raft's store computes one as it writes, which
//     is a fifth of a second of CPU per 250 MB on the path of every
//     snapshot taken or received, and checks it by reading the whole file
//     on every Open. The stream carries its own CRC-32C, which fsm.Restore
//     verifies as it reads, before the database is touched, here or on the
//     follower a snapshot is sent to.
//   - The snapshots it writes reach the disk as they are written rather
//     than all at once in the fsync that completes them (see
//     snapshot.Writeback): a large snapshot otherwise stalls the Raft log's
//     fsyncs, and so every write, for seconds.
//   - A snapshot that is not this node's own (one the leader sends, or a
//     user's load) is also handed, as it arrives, to prepare (the FSM's
//     PrepareRestore), which decodes it into the database file that the
//     Restore following the transfer then only has to swap in: decoding and
//     writing the database overlap the transfer instead of following it.
type snapshotStore struct {
	dir     string                // the snapshots directory
	retain  int                   // how many snapshots are kept
	prepare func(io.Reader) error // nil: never
	logger  *slog.Logger
	// completed, when set, is told the index of each snapshot completed
	// (taken here or received), from which a restart scans the log.
	completed func(index uint64)
}

const (
	snapshotStateFile = "state.bin"
	snapshotMetaFile  = "meta.json"
	snapshotTmpSuffix = ".tmp"
)

// newSnapshotStore opens the store in dir/snapshots, creating it if needed.
// It removes what an interrupted snapshot left (see
// removeStaleSnapshotTemps), so it must be opened before any snapshot can
// start.
func newSnapshotStore(dir string, retain int, prepare func(io.Reader) error, logger *slog.Logger) (*snapshotStore, error) {
	s := &snapshotStore{dir: filepath.Join(dir, "snapshots"), retain: max(retain, 1), prepare: prepare, logger: logger}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	s.removeStaleSnapshotTemps()
	return s, nil
}

// Stats is the "snapshot_store" object of /status, as rqlite names it: the
// directory and the IDs of the snapshots it holds, newest first.
func (s *snapshotStore) Stats() map[string]any {
	ids := []string{}
	if metas, err := s.List(); err == nil {
		for _, m := range metas {
			ids = append(ids, m.ID)
		}
	}
	return map[string]any{"dir": s.dir, "snapshots": ids, "retain": s.retain}
}

// Create starts a snapshot.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, _ raft.Transport) (raft.SnapshotSink, error) {
	if version != 1 {
		return nil, fmt.Errorf("snapshot store: unsupported snapshot version %d", version)
	}
	meta := raft.SnapshotMeta{
		Version:            version,
		ID:                 fmt.Sprintf("%d-%d-%d", term, index, time.Now().UnixMilli()),
		Index:              index,
		Term:               term,
		Configuration:      configuration,
		ConfigurationIndex: configurationIndex,
	}
	tmp := filepath.Join(s.dir, meta.ID+snapshotTmpSuffix)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", meta.ID, err)
	}
	f, err := os.Create(filepath.Join(tmp, snapshotStateFile))
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("create snapshot %s: %w", meta.ID, err)
	}
	wb := snapshot.NewWriteback(f)
	return &storeSink{store: s, meta: meta, tmp: tmp, f: f, wb: wb, w: wb.Writer(f)}, nil
}

// List returns the retained snapshots, newest first.
func (s *snapshotStore) List() ([]*raft.SnapshotMeta, error) {
	metas, err := s.all()
	if err != nil {
		return nil, err
	}
	return metas[:min(len(metas), s.retain)], nil
}

// all returns every complete snapshot, newest first.
func (s *snapshotStore) all() ([]*raft.SnapshotMeta, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	var metas []*raft.SnapshotMeta
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), snapshotTmpSuffix) {
			continue
		}
		meta, err := s.readMeta(e.Name())
		if err != nil {
			s.logger.Warn("skipping an unreadable snapshot", "id", e.Name(), "error", err)
			continue
		}
		if meta.Version < raft.SnapshotVersionMin || meta.Version > raft.SnapshotVersionMax {
			s.logger.Warn("skipping a snapshot of an unsupported version", "id", e.Name(), "version", meta.Version)
			continue
		}
		metas = append(metas, meta)
	}
	// Newest first: by term, then index, then ID (which ends in the time).
	slices.SortFunc(metas, func(a, b *raft.SnapshotMeta) int {
		return cmp.Or(cmp.Compare(b.Term, a.Term), cmp.Compare(b.Index, a.Index), strings.Compare(b.ID, a.ID))
	})
	return metas, nil
}

func (s *snapshotStore) readMeta(id string) (*raft.SnapshotMeta, error) {
	b, err := os.ReadFile(filepath.Join(s.dir, id, snapshotMetaFile))
	if err != nil {
		return nil, err
	}
	var meta raft.SnapshotMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("%s: %w", snapshotMetaFile, err)
	}
	return &meta, nil
}

// Open opens the snapshot id for reading.
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, err := s.readMeta(id)
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	f, err := os.Open(filepath.Join(s.dir, id, snapshotStateFile))
	if err != nil {
		return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
	}
	return meta, bufferedFile{Reader: bufio.NewReaderSize(f, sinkChunk), f: f, id: id}, nil
}

// reap removes the snapshots beyond the retained ones.
func (s *snapshotStore) reap() error {
	metas, err := s.all()
	if err != nil {
		return err
	}
	var errs []error
	for _, meta := range metas[min(len(metas), s.retain):] {
		if err := os.RemoveAll(filepath.Join(s.dir, meta.ID)); err != nil {
			errs = append(errs, fmt.Errorf("remove old snapshot %s: %w", meta.ID, err))
		}
	}
	return errors.Join(errs...)
}

// removeStaleSnapshotTemps removes the directories of snapshots that were
// never completed (<id>.tmp). A process killed while writing a snapshot
// leaves one behind, holding a whole compressed copy of the database; a node
// crashing repeatedly during snapshots would fill its disk.
func (s *snapshotStore) removeStaleSnapshotTemps() {
	paths, _ := filepath.Glob(filepath.Join(s.dir, "*"+snapshotTmpSuffix))
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			s.logger.Warn("cannot remove a stale temporary snapshot", "path", p, "error", err)
			continue
		}
		s.logger.Info("removed a temporary snapshot left by an interrupted snapshot", "path", p)
	}
}

// bufferedFile reads a snapshot's file through a buffer and closes the
// file.
type bufferedFile struct {
	*bufio.Reader
	f  *os.File
	id string // the snapshot's
}

func (b bufferedFile) Close() error { return b.f.Close() }
