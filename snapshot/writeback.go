package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// WritebackStep is how many bytes a Writeback lets accumulate before it
// has the kernel write them out.
const WritebackStep = 8 << 20

// syncEvery is how many bytes a Writeback writes out between the fsyncs it
// starts in the background.
const syncEvery = 64 << 20

// Writeback makes the kernel write a file out as it grows, in steps of
// WritebackStep bytes: each step's writeout starts as soon as the step is
// complete, and is waited for when the next step is, so that producing the
// data and writing it overlap while at most two steps are in flight.
// Without it a snapshot's hundreds of megabytes sit dirty in the page cache
// until the final fsync, which then holds the disk (and on
// ext4 the journal) for seconds, stalling the Raft log's fsyncs, and so
// every write, behind it. Written in steps, the data reaches the disk at
// the pace it is produced, interleaved with the log's small syncs.
//
// Every syncEvery bytes it also starts an fsync in the background (one at
// a time), because writing the data out is not all the final fsync waits
// for: the disk's own cache flush takes time in proportion to what was
// written since the last one (110 ms after a 250 MB snapshot on the
// development machine's virtual disk), and done along the way it overlaps
// the writing. Wait must be called before the final fsync.
//
// On systems without sync_file_range only the background fsyncs remain.
type Writeback struct {
	f       *os.File
	synced  int64 // bytes from the file's start whose writeout has started
	pending int64 // bytes appended since
	last    int64 // length of the step whose writeout may still be under way

	drop bool // drop steps from the page cache once written out (DropWritten)

	unsynced int64         // bytes written out since the last background fsync started
	syncDone chan struct{} // closed when the background fsync ends; nil: none started
	syncErr  error         // the first background fsync's error
}

// NewWriteback tracks f, which is being appended to from offset 0.
func NewWriteback(f *os.File) *Writeback { return &Writeback{f: f} }

// Wrote records that n more bytes were appended, and writes out the
// pending ones once there are WritebackStep of them. Failures of the
// writeout are ignored: the fsyncs report the file's real state.
func (w *Writeback) Wrote(n int) {
	w.pending += int64(n)
	if w.pending < WritebackStep {
		return
	}
	startWriteOut(w.f, w.synced, w.pending)
	waitWriteOut(w.f, w.synced-w.last, w.last)
	if w.drop {
		dropCached(w.f, w.synced-w.last, w.last)
	}
	w.unsynced += w.last
	w.last = w.pending
	w.synced += w.pending
	w.pending = 0
	if w.unsynced >= syncEvery && w.syncIdle() {
		w.unsynced = 0
		done := make(chan struct{})
		w.syncDone = done
		go func() {
			defer close(done)
			if err := w.f.Sync(); err != nil && w.syncErr == nil {
				w.syncErr = err
			}
		}()
	}
}

// DropWritten makes the Writeback drop what it has written out from the
// page cache, for a file that is not read again soon: a snapshot received
// from the leader, which the node keeps only in case it must restore it
// again. The file then passes through a few steps' worth of cache instead
// of filling hundreds of megabytes of it, which costs the node's other
// files their cached pages and, where memory has not been used recently,
// makes every write slower (on the development VM five times).
func (w *Writeback) DropWritten() { w.drop = true }

// syncIdle reports whether no background fsync is under way.
func (w *Writeback) syncIdle() bool {
	if w.syncDone == nil {
		return true
	}
	select {
	case <-w.syncDone:
		return true
	default:
		return false
	}
}

// Wait waits for the fsync that Wrote may have started in the background
// and returns the first error of those it started. The file's final fsync
// must follow it, and its error must count: Linux reports a failed
// writeback to one fsync of an open file only, which may have been a
// background one.
func (w *Writeback) Wait() error {
	if w.syncDone != nil {
		<-w.syncDone
	}
	return w.syncErr
}

// Writer returns an io.Writer that passes writes on to dst, which appends
// to the tracked file (directly, or through a buffer of its own), and
// records them.
func (w *Writeback) Writer(dst io.Writer) io.Writer { return writebackWriter{w, dst} }

type writebackWriter struct {
	wb  *Writeback
	dst io.Writer
}

func (w writebackWriter) Write(p []byte) (int, error) {
	n, err := w.dst.Write(p)
	w.wb.Wrote(n)
	return n, err
}

// syncFileStep is SyncFile's step: smaller than a Writeback's, because the
// file is written out while the node goes on working, and a step in flight
// is what the Raft log's next fsync may have to wait behind.
const syncFileStep = 1 << 20

// SyncFile writes the file at path out to the disk and syncs it. It goes in
// steps of syncFileStep bytes, one waited for before the next starts, so
// that a file written without a Writeback (whose bytes all sit dirty in the
// page cache) does not hold the disk for one long flush.
func SyncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	for off := int64(0); off < st.Size(); off += syncFileStep {
		waitWriteOut(f, off, syncFileStep)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// SyncDir syncs the directory dir: the names created, renamed or removed
// in it are durable once it returns.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
