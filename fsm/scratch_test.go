package fsm

import (
	"os"
	"path/filepath"
	"testing"
)

// TestOpenRemovesStaleScratch: the scratch files of a snapshot, a backup and
// a restore that a killed process left beside the database are gone after
// the next Open, and the database and unrelated files are untouched.
func TestOpenRemovesStaleScratch(t *testing.T) {
	dir := t.TempDir()
	f := openFSM(t, dir)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (x)"), stmt("INSERT INTO foo VALUES(1)"))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	stale := []string{
		DBFile + ".snapshot-123", DBFile + ".snapshot-123-journal",
		DBFile + ".backup-456",
		DBFile + ".restore", DBFile + ".restore-wal",
	}
	keep := []string{"other.sqlite.snapshot-1", "notes.txt"}
	for _, name := range append(append([]string(nil), stale...), keep...) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("scratch"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	f = openFSM(t, dir)
	for _, name := range stale {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("%s survived Open: %v", name, err)
		}
	}
	for _, name := range keep {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := count(t, f, "foo"); n != 1 {
		t.Fatalf("rows = %d after reopening, want 1", n)
	}
}
