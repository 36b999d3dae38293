package fsm

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// TestRestoreSyncsInBackground: a Restore returns with the restored
// database marked unsynced and in use; the marker is gone once the
// background sync has run, and Close waits for it. A restart that finds the
// marker (a crash before the sync ended) discards the database, so that
// the snapshot is restored again, and leaves other files alone.
func TestRestoreSyncsInBackground(t *testing.T) {
	src := newFSM(t)
	var s seq
	s.exec(t, src, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"), stmt("INSERT INTO foo(name) VALUES('a')"))
	snap := snapshotOf(t, src)
	want := dump(t, src)

	dir := t.TempDir()
	dst := openFSM(t, dir)
	if err := dst.Restore(io.NopCloser(snap)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored database: %v", got)
	}
	marker := filepath.Join(dir, DBFile+".unsynced")
	dst.mu.Lock()
	dst.waitRestoreSynced()
	dst.mu.Unlock()
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("marker still there after the sync: %v", err)
	}
	idx := dst.AppliedIndex()
	if idx == 0 {
		t.Fatal("restored database at index 0")
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}

	// The sync finished: a restart keeps the database.
	dst = openFSM(t, dir)
	if got := dst.AppliedIndex(); got != idx {
		t.Fatalf("applied index after restart = %d, want %d", got, idx)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}

	// A crash before the sync ended: the marker is there.
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	dst = openFSM(t, dir)
	if got := dst.AppliedIndex(); got != 0 {
		t.Fatalf("applied index after a restart with the marker = %d, want 0 (database discarded)", got)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Errorf("marker survived Open: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("unrelated file: %v", err)
	}
	// The snapshot restores again.
	snap = snapshotOf(t, src)
	if err := dst.Restore(io.NopCloser(snap)); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("database restored again: %v", got)
	}
}

// TestDiscard: Discard leaves an empty database at applied index 0, also
// after a restart, that the same entries apply to again.
func TestDiscard(t *testing.T) {
	dir := t.TempDir()
	f := openFSM(t, dir)
	var s seq
	create := stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)")
	s.exec(t, f, create, stmt("INSERT INTO foo(name) VALUES('a')"))
	if err := f.Discard(); err != nil {
		t.Fatal(err)
	}
	if got := f.AppliedIndex(); got != 0 {
		t.Fatalf("applied index after Discard = %d, want 0", got)
	}
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt("SELECT name FROM sqlite_schema")}})
	if err != nil || len(res) != 1 || res[0].Error != "" || len(res[0].Rows) != 0 {
		t.Fatalf("schema after Discard: %+v, %v", res, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f = openFSM(t, dir)
	defer f.Close()
	if got := f.AppliedIndex(); got != 0 {
		t.Fatalf("applied index after Discard and a restart = %d, want 0", got)
	}
	s = seq{}
	s.exec(t, f, create)
	if got := f.AppliedIndex(); got == 0 {
		t.Fatal("nothing applied after Discard")
	}
}
