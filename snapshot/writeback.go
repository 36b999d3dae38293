package snapshot

import (
	"fmt"
	"io"
	"os"
)

// WritebackStep is how many bytes a Writeback lets accumulate before it
// has the kernel write them out.
const WritebackStep = 8 << 20

// Writeback makes the kernel write a file out as it grows, in steps of
// WritebackStep bytes: each step's writeout starts as soon as the step is
// complete, and is waited for when the next step is, so that producing the
// data and writing it overlap while at most two steps are in flight. Without it a snapshot's or a
// restore's hundreds of megabytes sit dirty in the page cache until the
// final fsync, which then holds the disk (and on ext4 the journal) for
// seconds, stalling the Raft log's fsyncs, and so every write, behind it.
// Written in steps, the data reaches the disk at the pace it is produced,
// interleaved with the log's small syncs, and the final fsync finds little
// left to do. It only starts and waits for data writeback; it does not
// replace that fsync. On systems without sync_file_range it does nothing.
type Writeback struct {
	f       *os.File
	synced  int64 // bytes from the file's start whose writeout has started
	pending int64 // bytes appended since
	last    int64 // length of the step whose writeout may still be under way
}

// NewWriteback tracks f, which is being appended to from offset 0.
func NewWriteback(f *os.File) *Writeback { return &Writeback{f: f} }

// Wrote records that n more bytes were appended, and writes out the
// pending ones once there are WritebackStep of them. Failures are ignored:
// the fsync that follows reports the file's real state.
func (w *Writeback) Wrote(n int) {
	w.pending += int64(n)
	if w.pending < WritebackStep {
		return
	}
	startWriteOut(w.f, w.synced, w.pending)
	waitWriteOut(w.f, w.synced-w.last, w.last)
	w.last = w.pending
	w.synced += w.pending
	w.pending = 0
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

// SyncFile writes the file at path out to the disk and syncs it, in
// WritebackStep steps as a Writeback would have while it was written, so
// that a file written without one (whose bytes all sit dirty in the page
// cache) does not hold the disk for one long flush either.
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
	wb := NewWriteback(f)
	for left := st.Size(); left > 0; left -= WritebackStep {
		wb.Wrote(int(min(left, WritebackStep)))
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}
