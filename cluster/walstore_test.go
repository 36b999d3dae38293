package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// walFixture is a write-ahead store over a BoltDB store in dir.
type walFixture struct {
	dir  string
	bolt *raftboltdb.BoltStore
	wal  *walLogStore
}

func openWALFixture(t *testing.T, dir string) *walFixture {
	t.Helper()
	bolt, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	wal, err := openWALLogStore(filepath.Join(dir, walFile), bolt, slog.New(slog.NewTextHandler(io.Discard, nil)), func(string, int) {})
	if err != nil {
		bolt.Close()
		t.Fatal(err)
	}
	return &walFixture{dir: dir, bolt: bolt, wal: wal}
}

func (f *walFixture) close(t *testing.T) {
	t.Helper()
	if err := f.wal.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.bolt.Close(); err != nil {
		t.Fatal(err)
	}
}

// crashCopy copies the store's files as a crash would leave them now: what
// was written, whether or not the background flush has run. (Written data
// survives a process crash in the page cache; StoreLogs has synced it.)
func (f *walFixture) crashCopy(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	for _, name := range []string{"raft.db", walFile} {
		copyStoreFile(t, f.dir, dst, name)
	}
	return dst
}

func walTestLogs(from, to uint64, size int) []*raft.Log {
	var logs []*raft.Log
	for i := from; i <= to; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 3, Type: raft.LogCommand,
			Data: bytes.Repeat([]byte{byte(i)}, size), AppendedAt: time.Unix(0, int64(i)*1000)})
	}
	return logs
}

// checkLogs requires entries from..to with testLogs' content, and nothing
// after to.
func checkWALLogs(t *testing.T, s raft.LogStore, from, to uint64, size int) {
	t.Helper()
	last, err := s.LastIndex()
	if err != nil || last != to {
		t.Fatalf("LastIndex = %d, %v; want %d", last, err, to)
	}
	for i := from; i <= to; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
		if l.Index != i || l.Term != 3 || !bytes.Equal(l.Data, bytes.Repeat([]byte{byte(i)}, size)) || l.AppendedAt.UnixNano() != int64(i)*1000 {
			t.Fatalf("GetLog(%d) = index %d term %d, %d bytes, appended %v", i, l.Index, l.Term, len(l.Data), l.AppendedAt)
		}
	}
}

// TestWALStoreReplaysAfterCrash: entries StoreLogs returned for are there
// after a crash, also those the background flush had not yet written to
// BoltDB, and a clean close leaves them in BoltDB itself.
func TestWALStoreReplaysAfterCrash(t *testing.T) {
	f := openWALFixture(t, t.TempDir())
	if err := f.wal.StoreLogs(walTestLogs(1, 10, 100)); err != nil {
		t.Fatal(err)
	}
	if err := f.wal.StoreLogs(walTestLogs(11, 20, 100)); err != nil {
		t.Fatal(err)
	}
	checkWALLogs(t, f.wal, 1, 20, 100)
	crashed := f.crashCopy(t) // within the flush delay: BoltDB lacks them
	if err := f.wal.Close(); err != nil {
		t.Fatal(err)
	}
	checkWALLogs(t, f.bolt, 1, 20, 100)
	f.bolt.Close()

	g := openWALFixture(t, crashed)
	defer g.close(t)
	checkWALLogs(t, g.bolt, 1, 20, 100)
	if first, err := g.wal.FirstIndex(); err != nil || first != 1 {
		t.Fatalf("FirstIndex = %d, %v; want 1", first, err)
	}
}

// TestWALStoreTornRecord: a record cut short by a crash during its write
// (never acknowledged) is dropped; those before it are kept.
func TestWALStoreTornRecord(t *testing.T) {
	f := openWALFixture(t, t.TempDir())
	if err := f.wal.StoreLogs(walTestLogs(1, 5, 100)); err != nil {
		t.Fatal(err)
	}
	end := f.wal.off
	if err := f.wal.StoreLogs(walTestLogs(6, 9, 100)); err != nil {
		t.Fatal(err)
	}
	crashed := f.crashCopy(t)
	f.close(t)
	wal, err := os.OpenFile(filepath.Join(crashed, walFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wal.WriteAt([]byte{0xff, 0xee}, end+walRecordHeader+20); err != nil {
		t.Fatal(err)
	}
	wal.Close()
	g := openWALFixture(t, crashed)
	defer g.close(t)
	checkWALLogs(t, g.wal, 1, 5, 100)
}

// TestWALStoreDeleteRangeStaysDeleted: a replay after DeleteRange does not
// bring the deleted entries back (a follower's truncated tail), and the
// entries stored after it are replayed.
func TestWALStoreDeleteRangeStaysDeleted(t *testing.T) {
	f := openWALFixture(t, t.TempDir())
	if err := f.wal.StoreLogs(walTestLogs(1, 10, 50)); err != nil {
		t.Fatal(err)
	}
	if err := f.wal.DeleteRange(6, 10); err != nil {
		t.Fatal(err)
	}
	checkWALLogs(t, f.wal, 1, 5, 50)
	if err := f.wal.StoreLogs(walTestLogs(6, 7, 50)); err != nil {
		t.Fatal(err)
	}
	crashed := f.crashCopy(t)
	f.close(t)
	g := openWALFixture(t, crashed)
	defer g.close(t)
	checkWALLogs(t, g.wal, 1, 7, 50)
}

// TestWALStoreReusesFile: past walReuseBytes the file starts over (after
// flushing to BoltDB), stays that size, and every entry stays readable,
// across a crash too.
func TestWALStoreReusesFile(t *testing.T) {
	f := openWALFixture(t, t.TempDir())
	const size = 64 << 10
	const n = 3 * walReuseBytes / size
	for i := uint64(1); i <= n; i += 4 {
		if err := f.wal.StoreLogs(walTestLogs(i, i+3, size)); err != nil {
			t.Fatal(err)
		}
	}
	checkWALLogs(t, f.wal, 1, n, size)
	st, err := os.Stat(filepath.Join(f.dir, walFile))
	if err != nil || st.Size() > walReuseBytes+walHeaderBytes {
		t.Fatalf("write-ahead file: %v, %v; want at most %d bytes", st.Size(), err, walReuseBytes+walHeaderBytes)
	}
	crashed := f.crashCopy(t)
	f.close(t)
	g := openWALFixture(t, crashed)
	defer g.close(t)
	checkWALLogs(t, g.wal, 1, n, size)
}

// TestWALStoreGapFlushes: entries after a gap (a follower that installed a
// snapshot) are stored after the earlier ones reach BoltDB.
func TestWALStoreGapFlushes(t *testing.T) {
	f := openWALFixture(t, t.TempDir())
	defer f.close(t)
	if err := f.wal.StoreLogs(walTestLogs(1, 3, 10)); err != nil {
		t.Fatal(err)
	}
	if err := f.wal.StoreLogs(walTestLogs(100, 101, 10)); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := f.bolt.GetLog(3, &l); err != nil {
		t.Fatalf("entry 3 not in BoltDB after the gap: %v", err)
	}
	for _, i := range []uint64{1, 3, 100, 101} {
		if err := f.wal.GetLog(i, &l); err != nil {
			t.Fatalf("GetLog(%d): %v", i, err)
		}
	}
	if err := f.wal.GetLog(50, &l); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("GetLog(50) = %v, want not found", err)
	}
}

// TestWALRecordDecodeRejectsGarbage: a record whose CRC matches but whose
// payload does not decode is an error, never a panic.
func TestWALRecordDecodeRejectsGarbage(t *testing.T) {
	rec := encodeWALRecord(walTestLogs(1, 2, 8))
	payload := rec[walRecordHeader:]
	for cut := range len(payload) {
		if _, err := decodeWALRecord(payload[:cut]); err == nil {
			t.Fatalf("payload cut at %d of %d decoded", cut, len(payload))
		}
	}
	if _, err := decodeWALRecord(append(append([]byte(nil), payload...), 0)); err == nil {
		t.Fatal("payload with a trailing byte decoded")
	}
	if logs, err := decodeWALRecord(payload); err != nil || len(logs) != 2 {
		t.Fatal(fmt.Sprint(logs, err))
	}
}

// copyStoreFile copies one of the store's files from dir into dst, as it
// is now.
func copyStoreFile(t *testing.T, dir, dst, name string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWALStoreFailedEpochStartKeepsLaterAppends: when a DeleteRange cannot
// write the new epoch's header (an I/O error; raft logs a failed compaction
// and goes on), the appends acknowledged after it still survive a crash.
// The header on disk then names the old epoch, so a record of the new one
// written where the old epoch's records stop would never be replayed.
func TestWALStoreFailedEpochStartKeepsLaterAppends(t *testing.T) {
	f := openWALFixture(t, t.TempDir())
	if err := f.wal.StoreLogs(walTestLogs(1, 3, 100)); err != nil {
		t.Fatal(err)
	}
	rw := f.wal.f
	ro, err := os.Open(rw.Name())
	if err != nil {
		t.Fatal(err)
	}
	f.wal.f = ro // the header's write fails
	if err := f.wal.DeleteRange(1, 1); err == nil {
		t.Fatal("DeleteRange with an unwritable header succeeded")
	}
	f.wal.f = rw
	ro.Close()
	// BoltDB holds 1-3 (DeleteRange flushed them); nothing waits in memory,
	// so its file as it is now is what a crash after the next append leaves.
	crashed := f.crashCopy(t)
	if err := f.wal.StoreLogs(walTestLogs(4, 5, 100)); err != nil {
		t.Fatal(err)
	}
	copyStoreFile(t, f.dir, crashed, walFile)
	f.close(t)
	g := openWALFixture(t, crashed)
	defer g.close(t)
	checkWALLogs(t, g.wal, 1, 5, 100)
}

// TestWALStoreBadHeaderNeverReplaysOldRecords: a header that does not
// parse (torn by a crash while a new epoch started, when every record was
// in BoltDB) must not let the file's old records come back. Starting the
// epochs over from 1 would make the first pass's records, for entries
// deleted since, records of the current epoch again.
func TestWALStoreBadHeaderNeverReplaysOldRecords(t *testing.T) {
	dir := t.TempDir()
	f := openWALFixture(t, dir)
	for i := uint64(1); i <= 3; i++ {
		if err := f.wal.StoreLogs(walTestLogs(i, i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.wal.DeleteRange(1, 3); err != nil { // a follower's truncated tail
		t.Fatal(err)
	}
	f.close(t)
	wal, err := os.OpenFile(filepath.Join(dir, walFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wal.WriteAt([]byte{0xa5}, 9); err != nil { // the epoch, torn
		t.Fatal(err)
	}
	wal.Close()
	for range 2 {
		g := openWALFixture(t, dir)
		last, err := g.wal.LastIndex()
		g.close(t)
		if err != nil || last != 0 {
			t.Fatalf("LastIndex after reopening = %d, %v; want 0: deleted entries came back", last, err)
		}
	}
}

// TestWALStoreIgnoresRecordsInsideOldRecords: the bytes after the current
// epoch's last record are an older pass's, and in those are entries' data,
// which clients choose. Data shaped as a record of the epoch that comes
// next is not replayed: the next epoch cannot be foreseen.
func TestWALStoreIgnoresRecordsInsideOldRecords(t *testing.T) {
	f := openWALFixture(t, t.TempDir())
	forgedLog := &raft.Log{Index: 999, Term: 99, Type: raft.LogCommand, Data: []byte("forged")}
	forged := encodeWALRecord([]*raft.Log{forgedLog})
	sealWALRecord(forged, f.wal.epoch+1) // what a counter would make next
	const prefix = 200
	carrier := walTestLogs(1, 1, prefix)[0]
	carrier.Data = append(carrier.Data, forged...)
	at := f.wal.off + int64(bytes.Index(encodeWALRecord([]*raft.Log{carrier}), forged)) // forged's offset in the file
	if err := f.wal.StoreLogs([]*raft.Log{carrier}); err != nil {
		t.Fatal(err)
	}
	if err := f.wal.DeleteRange(1, 1); err != nil { // a new epoch, from the start of the file
		t.Fatal(err)
	}
	// An entry whose record ends where the forged one starts.
	size := int(at - walHeaderBytes)
	for size > 0 && int64(walHeaderBytes+len(encodeWALRecord(walTestLogs(1, 1, size)))) > at {
		size--
	}
	if int64(walHeaderBytes+len(encodeWALRecord(walTestLogs(1, 1, size)))) != at {
		t.Fatalf("no entry size makes a record of %d bytes", at-walHeaderBytes)
	}
	if err := f.wal.StoreLogs(walTestLogs(1, 1, size)); err != nil {
		t.Fatal(err)
	}
	crashed := f.crashCopy(t)
	f.close(t)
	g := openWALFixture(t, crashed)
	defer g.close(t)
	checkWALLogs(t, g.wal, 1, 1, size)
}

// leadingFixture is a write-ahead store that believes it leads, whose
// background syncs wait for release (and then fail with fail, if set).
type leadingFixture struct {
	*walFixture
	release chan struct{}
	entered chan struct{} // a background sync has begun
	fail    error
	failed  chan error
}

func openLeadingFixture(t *testing.T) *leadingFixture {
	t.Helper()
	f := &leadingFixture{walFixture: openWALFixture(t, t.TempDir()), release: make(chan struct{}, 100),
		entered: make(chan struct{}, 100), failed: make(chan error, 1)}
	t.Cleanup(func() { f.close(t) })
	leading := func() bool { return true }
	f.wal.leading.Store(&leading)
	f.wal.failed = func(err error) { f.failed <- err }
	f.wal.syncDeferred = func(file *os.File) error {
		f.entered <- struct{}{}
		<-f.release
		if f.fail != nil {
			return f.fail
		}
		return dataSync(file)
	}
	return f
}

// TestWALStoreLeaderAppendSyncsBehind: on the leader an append of commands
// returns before its sync, the durable index follows the sync, and the
// commit index it lets out is at most that; other entries (configuration,
// no-ops) are synced before StoreLogs returns, and so is everything on a
// follower.
func TestWALStoreLeaderAppendSyncsBehind(t *testing.T) {
	f := openLeadingFixture(t)
	if err := f.wal.StoreLogs(walTestLogs(1, 5, 10)); err != nil {
		t.Fatal(err)
	}
	if d := f.wal.DurableIndex(); d != 0 {
		t.Fatalf("durable index %d before the sync; want 0", d)
	}
	checkWALLogs(t, f.wal, 1, 5, 10) // served before it is durable

	var sent *raft.AppendEntriesRequest
	send := f.wal.clampCommit(func(_ raft.ServerID, _ raft.ServerAddress, args *raft.AppendEntriesRequest, _ *raft.AppendEntriesResponse) error {
		sent = args
		return nil
	})
	if err := send("2", "addr", &raft.AppendEntriesRequest{LeaderCommitIndex: 5}, &raft.AppendEntriesResponse{}); err != nil || sent.LeaderCommitIndex != 0 {
		t.Fatalf("commit index sent before the sync = %d, %v; want 0", sent.LeaderCommitIndex, err)
	}

	applied := make(chan error, 1)
	go func() { applied <- f.wal.WaitDurable(5) }()
	select {
	case err := <-applied:
		t.Fatalf("WaitDurable(5) returned %v before the sync", err)
	case <-time.After(50 * time.Millisecond):
	}
	f.release <- struct{}{}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
	if err := send("2", "addr", &raft.AppendEntriesRequest{LeaderCommitIndex: 5}, &raft.AppendEntriesResponse{}); err != nil || sent.LeaderCommitIndex != 5 {
		t.Fatalf("commit index sent after the sync = %d, %v; want 5", sent.LeaderCommitIndex, err)
	}

	conf := walTestLogs(6, 6, 10)
	conf[0].Type = raft.LogConfiguration
	if err := f.wal.StoreLogs(conf); err != nil {
		t.Fatal(err)
	}
	if d := f.wal.DurableIndex(); d != 6 {
		t.Fatalf("durable index %d after a configuration entry; want 6 at once", d)
	}
	following := func() bool { return false }
	f.wal.leading.Store(&following)
	if err := f.wal.StoreLogs(walTestLogs(7, 8, 10)); err != nil {
		t.Fatal(err)
	}
	if d := f.wal.DurableIndex(); d != 8 {
		t.Fatalf("durable index %d after a follower's append; want 8 at once", d)
	}
}

// TestWALStoreDeletedTailIsNotDurable: a sync that began before a tail
// was deleted does not make the entries appended at those indexes since
// durable.
func TestWALStoreDeletedTailIsNotDurable(t *testing.T) {
	f := openLeadingFixture(t)
	if err := f.wal.StoreLogs(walTestLogs(1, 5, 10)); err != nil {
		t.Fatal(err)
	}
	f.release <- struct{}{}
	if err := f.wal.WaitDurable(5); err != nil {
		t.Fatal(err)
	}
	if err := f.wal.StoreLogs(walTestLogs(6, 8, 10)); err != nil {
		t.Fatal(err)
	}
	// Once syncLoop waits in a sync of 6-8, the tail goes, and 6-7 come
	// again.
	<-f.entered // the sync of 1-5
	<-f.entered
	if err := f.wal.DeleteRange(6, 8); err != nil {
		t.Fatal(err)
	}
	if err := f.wal.StoreLogs(walTestLogs(6, 7, 10)); err != nil {
		t.Fatal(err)
	}
	f.release <- struct{}{} // ends the sync begun before the delete
	f.release <- struct{}{} // and lets the next one through
	if err := f.wal.WaitDurable(7); err != nil {
		t.Fatal(err)
	}
	if d := f.wal.DurableIndex(); d != 7 {
		t.Fatalf("durable index %d; want 7 (8 was deleted)", d)
	}
}

// TestWALStoreFailedBackgroundSync: a failed background sync is final:
// nothing more becomes durable, waiters and later appends get the error,
// and the store reports it.
func TestWALStoreFailedBackgroundSync(t *testing.T) {
	f := openLeadingFixture(t)
	f.fail = errors.New("injected EIO")
	if err := f.wal.StoreLogs(walTestLogs(1, 3, 10)); err != nil {
		t.Fatal(err)
	}
	f.release <- struct{}{}
	if err := f.wal.WaitDurable(3); err == nil || !errors.Is(err, f.fail) {
		t.Fatalf("WaitDurable after a failed sync: %v; want the sync's error", err)
	}
	if err := <-f.failed; !errors.Is(err, f.fail) {
		t.Fatalf("failed told %v", err)
	}
	if err := f.wal.StoreLogs(walTestLogs(4, 4, 10)); !errors.Is(err, f.fail) {
		t.Fatalf("StoreLogs after a failed sync: %v; want the sync's error", err)
	}
	if d := f.wal.DurableIndex(); d != 0 {
		t.Fatalf("durable index %d after a failed sync; want 0", d)
	}
	// Even an entry counted durable before: the failed writeback may have
	// been its pages.
	if err := f.wal.WaitDurable(0); !errors.Is(err, f.fail) {
		t.Fatalf("WaitDurable(0) after a failed sync: %v; want the sync's error", err)
	}
}
