package cluster

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/snapshot"
)

// storeSink is a snapshot being written to the store (see snapshotStore).
type storeSink struct {
	store *snapshotStore
	meta  raft.SnapshotMeta
	tmp   string   // the snapshot's directory until it is complete
	f     *os.File // its state file
	wb    *snapshot.Writeback
	w     io.Writer // f, tracked by wb
	local bool      // the FSM's own snapshot: not prepared
	pipe  *chunkPipe
	done  chan error // prepare's outcome, once pipe is set
	ended bool       // Close or Cancel was called
}

// Decoding buffer: the chunks of the pipe to the decoder, and the size of
// the reads in ReadFrom. Large reads and writes keep the per-call costs
// (the write system call, a hand-off to the decoder) low on a stream of
// hundreds of megabytes.
const (
	sinkChunk  = 1 << 20
	sinkChunks = 8
)

func (s *storeSink) ID() string { return s.meta.ID }

// LocalSnapshot marks the snapshot as the FSM's own (fsm.LocalSnapshotSink).
func (s *storeSink) LocalSnapshot() { s.local = true }

func (s *storeSink) Write(p []byte) (int, error) {
	if s.pipe == nil && !s.local && s.store.prepare != nil {
		s.startPrepare()
	}
	n, err := s.w.Write(p)
	s.meta.Size += int64(n)
	if err == nil && s.pipe != nil {
		if _, perr := s.pipe.Write(p[:n]); perr != nil {
			err = fmt.Errorf("decode snapshot %s as it arrives: %w", s.ID(), perr)
		}
	}
	return n, err
}

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

func (s *storeSink) startPrepare() {
	// Once decoded, the compressed copy is only read again should the
	// database have to be restored from it: it need not stay cached.
	s.wb.DropWritten()
	s.pipe, s.done = newChunkPipe(sinkChunks, sinkChunk), make(chan error, 1)
	go func() {
		err := s.store.prepare(s.pipe)
		// A decoder that stopped early must not leave Write blocked.
		s.pipe.closeRead(cmp.Or(err, errDecoderDone))
		s.done <- err
	}()
}

var (
	// errDecoderDone fails writes after the end of the snapshot stream.
	errDecoderDone      = errors.New("snapshot stream already complete")
	errSnapshotCanceled = errors.New("snapshot canceled")
)

// Close completes the snapshot: the state file and the metadata are synced
// and, once the decoding of the snapshot (if any) has succeeded as well,
// the directory is renamed into place and the older snapshots beyond the
// retained ones are removed. The decoder finishes while the files sync. A
// snapshot that fails is removed.
func (s *storeSink) Close() error {
	if s.ended {
		return nil
	}
	s.ended = true
	if s.pipe != nil {
		s.pipe.closeWrite(io.EOF)
	}
	err := s.sync()
	if s.pipe != nil {
		if perr := <-s.done; perr != nil {
			err = errors.Join(fmt.Errorf("snapshot %s: %w", s.ID(), perr), err)
		}
	}
	if err == nil {
		err = s.rename()
	}
	if err != nil {
		os.RemoveAll(s.tmp)
		return err
	}
	if err := s.store.reap(); err != nil {
		s.store.logger.Warn("cannot remove old snapshots", "error", err)
	}
	if s.store.completed != nil {
		s.store.completed(s.meta.Index)
	}
	return nil
}

// sync makes the state file and the metadata durable in the snapshot's
// temporary directory.
func (s *storeSink) sync() error {
	err := errors.Join(s.wb.Wait(), s.f.Sync(), s.f.Close())
	if err == nil {
		err = writeFileSynced(filepath.Join(s.tmp, snapshotMetaFile), s.meta)
	}
	if err == nil {
		err = snapshot.SyncDir(s.tmp)
	}
	if err != nil {
		return fmt.Errorf("complete snapshot %s: %w", s.ID(), err)
	}
	return nil
}

// rename moves the completed snapshot into place, durably.
func (s *storeSink) rename() error {
	err := os.Rename(s.tmp, filepath.Join(s.store.dir, s.ID()))
	if err == nil {
		err = snapshot.SyncDir(s.store.dir)
	}
	if err != nil {
		return fmt.Errorf("complete snapshot %s: %w", s.ID(), err)
	}
	return nil
}

// writeFileSynced writes v as JSON to a new file at path and syncs it.
func writeFileSynced(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Sync(), f.Close())
}

// Cancel abandons the snapshot and removes what was written of it.
func (s *storeSink) Cancel() error {
	if s.ended {
		return nil
	}
	s.ended = true
	if s.pipe != nil {
		s.pipe.closeWrite(errSnapshotCanceled)
		<-s.done
	}
	s.wb.Wait()
	s.f.Close()
	return os.RemoveAll(s.tmp)
}
