package cluster

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/snapshot"
)

// snapshotStore is raft's file snapshot store with two changes for
// snapshots of whole databases:
//
//   - The snapshots it writes (taken here, or received from the leader)
//     reach the disk as they are written rather than all at once in the
//     fsync that completes them (see snapshot.Writeback): a large snapshot
//     otherwise stalls the Raft log's fsyncs, and so every write, for
//     seconds.
//   - Open does not read the whole file first to check raft's CRC-64 of
//     it: every consumer of an opened snapshot is fsm.FSM.Restore (here,
//     or on the follower it is sent to), which verifies the stream's own
//     CRC-32 as it reads and rejects a damaged snapshot before touching the
//     database. The extra pass cost a large snapshot send or install a
//     second or more.
type snapshotStore struct {
	*raft.FileSnapshotStore
	dir string // the store's snapshots directory
}

// Create starts a snapshot. FileSnapshotStore writes it to
// <dir>/<id>.tmp/state.bin until Close renames the directory; the sink is
// tracked through a second descriptor of that file. Should the layout ever
// differ, the plain sink is returned: snapshots stay correct, only the
// pacing is lost.
func (s snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, sink.ID()+".tmp", "state.bin"))
	if err != nil {
		return sink, nil
	}
	return &writebackSink{SnapshotSink: sink, f: f, w: snapshot.NewWriteback(f).Writer(sink)}, nil
}

type writebackSink struct {
	raft.SnapshotSink
	f *os.File  // the second descriptor
	w io.Writer // the sink, tracked
}

func (s *writebackSink) Write(p []byte) (int, error) { return s.w.Write(p) }

func (s *writebackSink) Close() error {
	err := s.SnapshotSink.Close()
	s.f.Close()
	return err
}

func (s *writebackSink) Cancel() error {
	err := s.SnapshotSink.Cancel()
	s.f.Close()
	return err
}

// removeStaleSnapshotTemps removes the temporary directories of raft's file
// snapshot store in dir (<id>.tmp). Raft writes each snapshot into such a
// directory and renames it once complete; a process killed in between
// leaves it behind, and raft never removes it (it only skips it when
// listing snapshots), though it holds a whole compressed copy of the
// database: a node crashing repeatedly during snapshots would fill its
// disk. It must run before any snapshot can start.
func removeStaleSnapshotTemps(dir string, logger *slog.Logger) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.tmp"))
	for _, p := range paths {
		if err := os.RemoveAll(p); err != nil {
			logger.Warn("cannot remove a stale temporary snapshot", "path", p, "error", err)
			continue
		}
		logger.Info("removed a temporary snapshot left by an interrupted snapshot", "path", p)
	}
}

// Open opens the snapshot id for reading (see snapshotStore). A snapshot
// that List does not return (raft lists only the retained ones) is opened
// by the file store itself.
func (s snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	metas, err := s.List()
	if err != nil {
		return nil, nil, err
	}
	for _, meta := range metas {
		if meta.ID != id {
			continue
		}
		f, err := os.Open(filepath.Join(s.dir, id, "state.bin"))
		if err != nil {
			return nil, nil, fmt.Errorf("open snapshot %s: %w", id, err)
		}
		return meta, bufferedFile{Reader: bufio.NewReader(f), f: f}, nil
	}
	return s.FileSnapshotStore.Open(id)
}

// bufferedFile reads a file through a buffer and closes the file.
type bufferedFile struct {
	*bufio.Reader
	f *os.File
}

func (b bufferedFile) Close() error { return b.f.Close() }
