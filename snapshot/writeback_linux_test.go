package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestWritebackDropsWritten: with DropWritten, the steps a Writeback has
// written out and waited for leave the page cache, and the data reads back
// whole; without it they stay cached. Checked on ext4 only, where the
// kernel honours the advice (tmpfs, for one, cannot drop its pages).
func TestWritebackDropsWritten(t *testing.T) {
	dir := t.TempDir()
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil || fs.Type != unix.EXT4_SUPER_MAGIC {
		t.Skipf("%s is not on ext4", dir)
	}
	resident := func(drop bool) (first, last int) {
		path := filepath.Join(dir, "f")
		f, _ := writeTracked(t, path, 3*WritebackStep>>20, drop)
		m, err := unix.Mmap(int(f.Fd()), 0, 3*WritebackStep, unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, 3*WritebackStep/os.Getpagesize())
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			t.Fatal(errno)
		}
		third := len(vec) / 3
		for i, v := range vec {
			if v&1 == 0 {
				continue
			}
			if i < third {
				first++
			} else if i >= 2*third {
				last++
			}
		}
		if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, bytes.Repeat([]byte{7}, 3*WritebackStep)) {
			t.Fatalf("file reads back differently: %v", err)
		}
		return first, last
	}
	// The first step has been written out and waited for; the last one,
	// still pending, stays cached either way.
	if first, last := resident(true); first != 0 || last == 0 {
		t.Fatalf("with DropWritten: %d pages of the first step cached, %d of the last", first, last)
	}
	if first, _ := resident(false); first == 0 {
		t.Fatal("without DropWritten the first step left the cache")
	}
}
