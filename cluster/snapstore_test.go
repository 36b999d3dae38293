package cluster

import (
	"bytes"
	"io"
	"testing"

	"github.com/hashicorp/raft"
)

// TestSnapshotStoreWritesAndOpens: the store finds the file raft's file
// snapshot store writes (so its layout is still the one snapshotStore
// assumes), and snapshots round-trip through it unchanged.
func TestSnapshotStoreWritesAndOpens(t *testing.T) {
	dir := t.TempDir()
	fs, err := raft.NewFileSnapshotStore(dir, 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	store := snapshotStore{FileSnapshotStore: fs, dir: dir + "/snapshots"}
	_, trans := raft.NewInmemTransport("")
	sink, err := store.Create(raft.SnapshotVersionMax, 10, 2, raft.Configuration{}, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sink.(*writebackSink); !ok {
		t.Fatalf("sink is a %T: raft's snapshot file layout changed", sink)
	}
	data := bytes.Repeat([]byte("raftlite"), 3<<20) // 24 MiB: three writeback steps
	if _, err := sink.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := sink.Close(); err != nil {
		t.Fatal(err)
	}
	_, rc, err := store.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back %d bytes, %v; wrote %d", len(got), err, len(data))
	}
}
