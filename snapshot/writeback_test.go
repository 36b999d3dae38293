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
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wb := NewWriteback(f)
	w := wb.Writer(f)
	chunk := bytes.Repeat([]byte{7}, 1<<20)
	for range 20 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
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
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wb := NewWriteback(f)
	w := wb.Writer(f)
	chunk := bytes.Repeat([]byte{7}, 1<<20)
	for range syncEvery>>20 + 2*WritebackStep>>20 {
		if _, err := w.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
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
