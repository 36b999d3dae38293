package cluster

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"slices"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/fsm"
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
	if _, ok := sink.(*storeSink); !ok {
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

// TestSnapshotStorePreparesReceivedSnapshots: a snapshot that is not the
// FSM's own is handed to prepare byte for byte as it is written; the FSM's
// own is not; and a snapshot whose decoding fails is not kept.
func TestSnapshotStorePreparesReceivedSnapshots(t *testing.T) {
	dir := t.TempDir()
	fs, err := raft.NewFileSnapshotStore(dir, 5, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got [][]byte
	fail := false
	store := snapshotStore{FileSnapshotStore: fs, dir: dir + "/snapshots", prepare: func(r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, b)
		if fail {
			return errors.New("cannot decode")
		}
		return err
	}}
	_, trans := raft.NewInmemTransport("")
	write := func(index uint64, local bool, data []byte) error {
		sink, err := store.Create(raft.SnapshotVersionMax, index, 2, raft.Configuration{}, 1, trans)
		if err != nil {
			t.Fatal(err)
		}
		if local {
			sink.(fsm.LocalSnapshotSink).LocalSnapshot()
		}
		for chunk := range slices.Chunk(data, 1000) {
			if _, err := sink.Write(chunk); err != nil {
				sink.Cancel()
				return err
			}
		}
		return sink.Close()
	}

	received := bytes.Repeat([]byte("received"), 5000)
	if err := write(10, false, received); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !bytes.Equal(got[0], received) {
		t.Fatalf("prepare got %d streams, want the received one", len(got))
	}
	if err := write(11, true, []byte("own snapshot")); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatal("the FSM's own snapshot was prepared")
	}
	fail = true
	if err := write(12, false, received); err == nil {
		t.Fatal("a snapshot whose decoding failed was completed")
	}
	metas, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	var indexes []uint64
	for _, m := range metas {
		indexes = append(indexes, m.Index)
	}
	if !reflect.DeepEqual(indexes, []uint64{11, 10}) {
		t.Fatalf("stored snapshots at %v, want [11 10]", indexes)
	}
}
