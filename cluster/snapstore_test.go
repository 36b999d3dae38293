package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/fsm"
	"github.com/raftlite/raftlite/snapshot"
)

// TestSnapshotStoreWritesAndOpens: snapshots round-trip through the store
// unchanged; it keeps the newest retained ones, removes a canceled one and
// an interrupted one's leftovers; and it reads the snapshots raft's file
// snapshot store wrote (the same layout), as a data directory from before
// holds them.
func TestSnapshotStoreWritesAndOpens(t *testing.T) {
	dir := t.TempDir()
	_, trans := raft.NewInmemTransport("")
	fs, err := raft.NewFileSnapshotStore(dir, 5, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	old, err := fs.Create(raft.SnapshotVersionMax, 5, 1, raft.Configuration{}, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(old, "written by raft's store")
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(dir, "snapshots", "1-4-123.tmp")
	if err := os.MkdirAll(stale, 0o755); err != nil {
		t.Fatal(err)
	}

	store, err := newSnapshotStore(dir, 2, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("interrupted snapshot left: %v", err)
	}
	readBack := func(id string) string {
		t.Helper()
		meta, rc, err := store.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, err := io.ReadAll(rc)
		if err != nil || meta.Size != int64(len(b)) {
			t.Fatalf("snapshot %s: read %d bytes, %v; meta says %d", id, len(b), err, meta.Size)
		}
		return string(b)
	}
	if got := readBack(old.ID()); got != "written by raft's store" {
		t.Fatalf("raft's snapshot reads %q", got)
	}

	data := bytes.Repeat([]byte("raftlite"), 3<<20) // 24 MiB: three writeback steps
	write := func(index uint64) string {
		t.Helper()
		sink, err := store.Create(raft.SnapshotVersionMax, index, 2, raft.Configuration{}, 1, trans)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sink.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		return sink.ID()
	}
	first := write(10)
	if got := readBack(first); got != string(data) {
		t.Fatal("snapshot read back differs")
	}
	second := write(11)
	third := write(12)
	metas, err := store.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(metas) != 2 || metas[0].ID != third || metas[1].ID != second {
		t.Fatalf("List = %v, want the two newest [%s %s]", metas, third, second)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, "snapshots"))
	if len(entries) != 2 {
		t.Fatalf("%d entries in the store's directory, want the 2 retained", len(entries))
	}

	canceled, err := store.Create(raft.SnapshotVersionMax, 13, 2, raft.Configuration{}, 1, trans)
	if err != nil {
		t.Fatal(err)
	}
	canceled.Write(data)
	if err := canceled.Cancel(); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "snapshots")); len(entries) != 2 {
		t.Fatalf("%d entries after a cancel, want 2", len(entries))
	}
}

// TestSnapshotStorePreparesReceivedSnapshots: a snapshot that is not the
// FSM's own is handed to prepare byte for byte as it is written; the FSM's
// own is not; and a snapshot whose decoding fails is not kept.
func TestSnapshotStorePreparesReceivedSnapshots(t *testing.T) {
	var got [][]byte
	fail := false
	store, err := newSnapshotStore(t.TempDir(), 5, func(r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, b)
		if fail {
			return errors.New("cannot decode")
		}
		return err
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
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

// TestRefusedAsCorrupt: a follower's refusal of a corrupt stream is
// recognised in the text that reaches the leader, and nothing else is.
func TestRefusedAsCorrupt(t *testing.T) {
	remote := errors.New("snapshot 2-10-123: restore snapshot 10: corrupt snapshot: checksum mismatch: stream says 0000002a, data has 00000000")
	for err, want := range map[error]bool{
		remote: true,
		fmt.Errorf("local: %w", snapshot.ErrCorrupt): true,
		errors.New("short read"):                     false,
		io.ErrUnexpectedEOF:                          false,
	} {
		if got := refusedAsCorrupt(err); got != want {
			t.Errorf("refusedAsCorrupt(%q) = %v, want %v", err, got, want)
		}
	}
}

// TestReplicationWithoutPipeline: raft never switches to pipelined
// replication (see noPipeline). It logs "pipelining replication" at info
// (the level these tests run raft at) whenever a pipeline starts, which
// with the pipeline allowed happens after the first successful
// AppendEntries to each follower.
func TestReplicationWithoutPipeline(t *testing.T) {
	nodes := startCluster(t, 3, nil)
	leader := waitLeader(t, nodes...)
	createTable(t, leader)
	idx := insertRows(t, leader, 0, 20)
	waitSame(t, idx, nodes...)
	if logs := testLogs(t); !strings.Contains(logs, "leader changed") || strings.Contains(logs, "pipelining replication") {
		t.Fatal("raft pipelined its replication (or the logs were not captured)")
	}
}
