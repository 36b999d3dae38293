package snapshot

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestWritebackSteps: writes pass through unchanged, and the tracked
// file is written out in whole steps as it grows.
func TestWritebackSteps(t *testing.T) {
	f, wb := writeTracked(t, filepath.Join(t.TempDir(), "f"), 20, false)
	if wb.synced != 2*WritebackStep || wb.pending != 20<<20-2*WritebackStep {
		t.Fatalf("synced %d, pending %d after 20 MiB", wb.synced, wb.pending)
	}
	if st, _ := f.Stat(); st.Size() != 20<<20 {
		t.Fatalf("file has %d bytes", st.Size())
	}
}

// TestWritebackSyncsInBackground: once syncEvery bytes have been written
// out, a Writeback has started an fsync in the background, and Wait waits
// for it and reports no error.
func TestWritebackSyncsInBackground(t *testing.T) {
	_, wb := writeTracked(t, filepath.Join(t.TempDir(), "f"), syncEvery>>20+2*WritebackStep>>20, false)
	if wb.syncDone == nil {
		t.Fatal("no background fsync started")
	}
	if err := wb.Wait(); err != nil {
		t.Fatal(err)
	}
	if !wb.syncIdle() {
		t.Fatal("background fsync still under way after Wait")
	}
}

// writeTracked writes mib MiB of sevens to a new file at path through a
// Writeback (dropping what it writes out if drop), in 1 MiB writes, and
// returns both; the file is closed when the test ends.
func writeTracked(t *testing.T, path string, mib int, drop bool) (*os.File, *Writeback) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	wb := NewWriteback(f)
	if drop {
		wb.DropWritten()
	}
	w := wb.Writer(f)
	chunk := bytes.Repeat([]byte{7}, 1<<20)
	for range mib {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	return f, wb
}
