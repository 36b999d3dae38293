package snapshot

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// sync_file_range flags (linux/fs.h).
const (
	syncFileRangeWaitBefore = 1
	syncFileRangeWrite      = 2
	syncFileRangeWaitAfter  = 4
)

// startWriteOut starts writing the n bytes of f at off out to the disk
// (data only: no metadata, no filesystem journal) without waiting.
func startWriteOut(f *os.File, off, n int64) {
	_ = syscall.SyncFileRange(int(f.Fd()), off, n, syncFileRangeWrite)
}

// waitWriteOut writes out whatever of the n bytes of f at off is still
// dirty and waits until all of them are on the disk.
func waitWriteOut(f *os.File, off, n int64) {
	if n > 0 {
		_ = syscall.SyncFileRange(int(f.Fd()), off, n, syncFileRangeWaitBefore|syncFileRangeWrite|syncFileRangeWaitAfter)
	}
}

// dropCached drops the n bytes of f at off, written out, from the page cache.
func dropCached(f *os.File, off, n int64) {
	if n > 0 {
		_ = unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
	}
}
