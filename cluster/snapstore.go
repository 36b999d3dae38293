package cluster

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/snapshot"
)

// snapshotStore is raft's file snapshot store with three changes for
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
//   - A snapshot that is not this node's own (one the leader sends, or a
//     user's load) is also handed, as it arrives, to prepare (the FSM's
//     PrepareRestore), which decodes it into the database file that the
//     Restore following the transfer then only has to swap in: decoding
//     and writing the database overlap the transfer instead of following
//     it.
type snapshotStore struct {
	*raft.FileSnapshotStore
	dir     string                // the store's snapshots directory
	prepare func(io.Reader) error // nil: never
}

// Create starts a snapshot. FileSnapshotStore writes it to
// <dir>/<id>.tmp/state.bin until Close renames the directory; the sink is
// tracked through a second descriptor of that file. Should the layout ever
// differ, the plain sink is returned: snapshots stay correct, only the
// pacing is lost.
func (s *snapshotStore) Create(version raft.SnapshotVersion, index, term uint64, configuration raft.Configuration,
	configurationIndex uint64, trans raft.Transport) (raft.SnapshotSink, error) {
	sink, err := s.FileSnapshotStore.Create(version, index, term, configuration, configurationIndex, trans)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(s.dir, sink.ID()+".tmp", "state.bin"))
	if err != nil {
		return sink, nil
	}
	return &storeSink{SnapshotSink: sink, dir: s.dir, prepare: s.prepare, f: f, w: snapshot.NewWriteback(f).Writer(sink)}, nil
}

// storeSink is the sink of a snapshot being written to the store (see
// snapshotStore).
type storeSink struct {
	raft.SnapshotSink
	dir     string // the store's
	prepare func(io.Reader) error
	f       *os.File  // the second descriptor
	w       io.Writer // the sink, tracked
	local   bool      // the FSM's own snapshot: not prepared
	pipe    *chunkPipe
	done    chan error // prepare's outcome, once pipe is set
}

// Decoding buffer: the chunks of the pipe to the decoder, and the size of
// the reads in ReadFrom. Large reads and writes keep the per-call cost
// (raft's checksum, the write system call, a hand-off to the decoder) low
// on a stream of hundreds of megabytes.
const (
	sinkChunk  = 1 << 20
	sinkChunks = 8
)

// ReadFrom copies r into the sink in reads of sinkChunk bytes. raft copies
// a snapshot it receives into the sink with io.Copy, which would otherwise
// write it in 32 KB pieces.
func (s *storeSink) ReadFrom(r io.Reader) (int64, error) {
	buf := make([]byte, sinkChunk)
	var total int64
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := s.Write(buf[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, err
		}
	}
}

// LocalSnapshot marks the snapshot as the FSM's own (fsm.LocalSnapshotSink).
func (s *storeSink) LocalSnapshot() { s.local = true }

func (s *storeSink) Write(p []byte) (int, error) {
	if s.pipe == nil && !s.local && s.prepare != nil {
		s.startPrepare()
	}
	n, err := s.w.Write(p)
	if err == nil && s.pipe != nil {
		if _, perr := s.pipe.Write(p[:n]); perr != nil {
			err = fmt.Errorf("decode snapshot %s as it arrives: %w", s.ID(), perr)
		}
	}
	return n, err
}

func (s *storeSink) startPrepare() {
	s.pipe, s.done = newChunkPipe(sinkChunks, sinkChunk), make(chan error, 1)
	go func() {
		err := s.prepare(s.pipe)
		// A decoder that stopped early must not leave Write blocked.
		s.pipe.closeRead(cmp.Or(err, errDecoderDone))
		s.done <- err
	}()
}

// errDecoderDone fails writes after the end of the snapshot stream.
var errDecoderDone = errors.New("snapshot stream already complete")

// Close completes the snapshot once its decoding, if any, has succeeded.
// The decoder's final sync and the snapshot file's run at the same time; a
// snapshot whose decoding failed is then removed again, as raft's store
// does with one that fails to complete.
func (s *storeSink) Close() error {
	defer s.f.Close()
	if s.pipe == nil {
		return s.SnapshotSink.Close()
	}
	s.pipe.closeWrite(io.EOF)
	err := s.SnapshotSink.Close()
	if perr := <-s.done; perr != nil {
		if err == nil {
			err = os.RemoveAll(filepath.Join(s.dir, s.ID()))
		}
		return errors.Join(fmt.Errorf("snapshot %s: %w", s.ID(), perr), err)
	}
	return err
}

func (s *storeSink) Cancel() error {
	if s.pipe != nil {
		s.pipe.closeWrite(errSnapshotCanceled)
		<-s.done
	}
	err := s.SnapshotSink.Cancel()
	s.f.Close()
	return err
}

var errSnapshotCanceled = errors.New("snapshot canceled")

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
func (s *snapshotStore) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
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
