package cluster

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/snapshot"
)

// walLogStore is the raft.LogStore in front of the BoltDB log store
// (raft-boltdb/v2, which stays the log's home): a write-ahead file that
// makes each append durable with one fdatasync, while the entries reach
// BoltDB in the background.
//
// Why: a BoltDB write transaction syncs twice (its new pages, then its meta
// page that points at them), and raft waits for the log append on the
// leader before it replicates and on each follower before it answers, so a
// commit waited for four syncs in series, on a disk the three nodes share.
// Here a round waits for one sync per node, of blocks the file already has
// (after its first pass the file is overwritten in place, so fdatasync has
// no size or allocation to journal).
//
// What each sync protects:
//   - the record's fdatasync in StoreLogs: the entries raft is told are
//     stored (a follower's answer, the leader's own vote towards commit);
//   - the header's fdatasync in reset: the new epoch (random, see
//     nextWALEpoch). Records carry the epoch they were written in and only
//     those of the header's epoch are replayed, so space is reused only
//     after everything written there is in BoltDB, and no new record is
//     written before the header says so;
//   - BoltDB's own two per flush: the entries in their lasting home; only
//     after that may their records be overwritten.
//
// On the leader an append of commands does not wait for its sync (see
// "The leader's append" below); elsewhere, and for every other kind of
// entry, StoreLogs returns once the record is synced.
//
// Entries in the file but not yet known to be in BoltDB are kept in memory
// (mem) and served from there. Open replays the file's records into BoltDB
// before raft starts, so raft only ever sees a complete log. DeleteRange
// (log compaction, a follower's conflicting tail) first flushes everything
// and starts a new epoch, and only then deletes in BoltDB, so a replay can
// never bring back deleted entries.
type walLogStore struct {
	bolt   raft.LogStore
	f      *os.File
	logger *slog.Logger
	syncs  func(kind string, n int)

	// leading, once set, reports whether this node leads (see
	// deferSync); failed is told of a failed background sync.
	leading atomic.Pointer[func() bool]
	failed  func(error)
	// syncDeferred is syncLoop's sync: dataSync (a fault in tests).
	syncDeferred func(*os.File) error

	// wmu serialises the writers: StoreLogs, DeleteRange, Close.
	wmu   sync.Mutex
	epoch uint64
	off   int64 // where the next record goes
	// flushMu serialises flushes to BoltDB.
	flushMu sync.Mutex

	mu       sync.Mutex
	mem      []*raft.Log // in the file, not yet known to be in BoltDB; consecutive indexes
	memBytes int64
	// written is the last index appended; durable the last one known to be
	// on the disk, with every one before it. A sync counts for the entries
	// written before it began only if no tail was deleted meanwhile (gen).
	written, durable uint64
	gen              uint64
	syncErr          error         // a sync of the file failed: final (syncFailed)
	advanced         chan struct{} // closed, and replaced, when durable advances or syncErr is set

	wake     chan struct{}
	flushNow chan struct{} // walFlushEarly bytes wait
	syncWake chan struct{}
	stop     chan struct{}
	done     chan struct{}
	syncDone chan struct{}
}

const (
	// walHeaderBytes is the header's block: magic, epoch, CRC in its first
	// sector, which a device writes whole.
	walHeaderBytes = 4096
	// walReuseBytes is the file's size, written once (see preallocate),
	// and the offset past which the next append first flushes to BoltDB
	// and starts over at the beginning.
	walReuseBytes = 8 << 20
	// walMaxMemBytes bounds the entries waiting for BoltDB: past it an
	// append waits for the flush.
	walMaxMemBytes = 64 << 20
	// walRecordHeader: epoch u64 | payload length u32 | CRC-32C u32.
	walRecordHeader = 16
	// walFlushRetry is the pause after a failed flush to BoltDB.
	walFlushRetry = 100 * time.Millisecond
	// walFlushDelay is how long the background flush lets appends gather
	// before it writes them to BoltDB in one transaction: its two syncs
	// share the disk with the appends' and should be few, and a BoltDB
	// commit costs CPU by the transaction. At 20 ms the flushes were a
	// sixth of a follower's CPU with one client and a third of the
	// members' syncs; the file holds what waits (and walFlushEarly makes
	// room before the file fills).
	walFlushDelay = 200 * time.Millisecond
	// walFlushEarly is how many bytes of entries may wait for BoltDB
	// before an append starts the flush at once, so that an append that
	// finds the file full seldom has much to flush itself.
	walFlushEarly = 2 << 20
	// walFile is the file's name in the raft directory.
	walFile = "raft.wal"
	// boltSyncsPerTxn is how many fdatasyncs one BoltDB write transaction
	// makes: its new pages, then its meta page (bbolt's tx.Commit).
	boltSyncsPerTxn = 2
)

// Kinds of log-store syncs (raftlite_raft_log_syncs_total{kind}).
const (
	syncAppend = "append" // on the write path: raft waits for it
	syncFlush  = "flush"  // BoltDB's, in the background
)

var (
	walMagic = [8]byte{'r', 'l', 'w', 'a', 'l', 0, 0, 1}
	castagno = crc32.MakeTable(crc32.Castagnoli)
)

// openWALLogStore opens (or creates) the write-ahead file at path in front
// of bolt, replays into bolt the records a previous process left, and
// starts the background flush. syncs is told of every sync, by kind.
func openWALLogStore(path string, bolt raft.LogStore, logger *slog.Logger, syncs func(kind string, n int)) (*walLogStore, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open raft write-ahead file: %w", err)
	}
	w := &walLogStore{bolt: bolt, f: f, logger: logger, syncs: syncs, failed: func(error) {}, syncDeferred: dataSync,
		advanced: make(chan struct{}), wake: make(chan struct{}, 1), flushNow: make(chan struct{}, 1), syncWake: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{}), syncDone: make(chan struct{})}
	if err := w.recover(); err != nil {
		f.Close()
		return nil, fmt.Errorf("raft write-ahead file %s: %w", path, err)
	}
	if err := snapshot.SyncDir(filepath.Dir(path)); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync raft directory: %w", err)
	}
	// Everything the log holds now is on the disk: the replay went
	// through BoltDB, which syncs.
	last, err := bolt.LastIndex()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("raft log store: last index: %w", err)
	}
	w.written, w.durable = last, last
	go w.flushLoop()
	go w.syncLoop()
	return w, nil
}

// recover replays the current epoch's records into BoltDB and starts the
// next epoch.
func (w *walLogStore) recover() error {
	data, err := io.ReadAll(io.NewSectionReader(w.f, 0, 1<<62))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	epoch, ok := parseWALHeader(data)
	if !ok && len(data) > 0 {
		// A new file, or one whose header a crash tore while a new epoch
		// started (reset), when every record was in BoltDB. Its records
		// are void, but their epochs are unknown: counting the epochs
		// from 1 again would revive the old ones, so they are erased.
		w.logger.Warn("raft write-ahead file has no valid header; starting it afresh", "bytes", len(data))
		if err := w.f.Truncate(0); err != nil {
			return fmt.Errorf("erase: %w", err)
		}
		data = nil
	}
	if ok {
		w.epoch = epoch
		logs, err := replayWAL(data, epoch)
		if err != nil {
			return err
		}
		if len(logs) > 0 {
			if err := w.bolt.StoreLogs(logs); err != nil {
				return fmt.Errorf("replay %d entries (%d-%d) into the log store: %w", len(logs), logs[0].Index, logs[len(logs)-1].Index, err)
			}
			w.syncs(syncFlush, boltSyncsPerTxn)
			w.logger.Info("replayed the raft write-ahead file into the log store", "entries", len(logs),
				"first", logs[0].Index, "last", logs[len(logs)-1].Index)
		}
	}
	// (preallocate's fsync also makes an erasure's new size durable.)
	if err := w.preallocate(int64(len(data))); err != nil {
		return err
	}
	return w.reset()
}

// preallocate writes zeros up to walReuseBytes into a file that is
// shorter: appends then overwrite blocks the file has, whose fdatasync
// has no size or block allocation to commit to the file system's journal
// (measured here: 0.40-0.44 ms against 0.58-0.88 ms for appending).
func (w *walLogStore) preallocate(size int64) error {
	if size >= walReuseBytes {
		return nil
	}
	zeros := make([]byte, 1<<20)
	for off := size; off < walReuseBytes; off += int64(len(zeros)) {
		if _, err := w.f.WriteAt(zeros[:min(int64(len(zeros)), walReuseBytes-off)], off); err != nil {
			return fmt.Errorf("preallocate: %w", err)
		}
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("preallocate: %w", err)
	}
	w.syncs(syncAppend, 1)
	return nil
}

func parseWALHeader(b []byte) (epoch uint64, ok bool) {
	if len(b) < 20 || [8]byte(b[:8]) != walMagic {
		return 0, false
	}
	if crc32.Checksum(b[:16], castagno) != binary.LittleEndian.Uint32(b[16:20]) {
		return 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]), true
}

// replayWAL decodes the records of epoch from the file's content, up to
// the first that is not one (an older epoch's, a torn write, the end).
func replayWAL(data []byte, epoch uint64) ([]*raft.Log, error) {
	var logs []*raft.Log
	for off := walHeaderBytes; off+walRecordHeader <= len(data); {
		h := data[off : off+walRecordHeader]
		n := int(binary.LittleEndian.Uint32(h[8:12]))
		if binary.LittleEndian.Uint64(h[:8]) != epoch || n > len(data)-off-walRecordHeader {
			break
		}
		payload := data[off+walRecordHeader : off+walRecordHeader+n]
		if recordCRC(h[:12], payload) != binary.LittleEndian.Uint32(h[12:16]) {
			break
		}
		recs, err := decodeWALRecord(payload)
		if err != nil {
			// The CRC matched, so this is not a torn write.
			return nil, fmt.Errorf("record at offset %d: %w", off, err)
		}
		logs = append(logs, recs...)
		off += walRecordHeader + n
	}
	return logs, nil
}

func recordCRC(header, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(header, castagno), castagno, payload)
}

// reset starts a new epoch: the file's records become void. Every one of
// them must be in BoltDB already.
//
// Until the header is synced, the file counts as full, so that after a
// failure the next append starts a new epoch first: a record of the new
// epoch written where the old epoch's records stop would be replayed by
// neither header, the one on disk or the one that failed.
func (w *walLogStore) reset() error {
	w.off = walReuseBytes
	w.epoch = nextWALEpoch(w.epoch)
	var h [walHeaderBytes]byte
	copy(h[:8], walMagic[:])
	binary.LittleEndian.PutUint64(h[8:16], w.epoch)
	binary.LittleEndian.PutUint32(h[16:20], crc32.Checksum(h[:16], castagno))
	if _, err := w.f.WriteAt(h[:], 0); err != nil {
		return fmt.Errorf("write header: %w", err)
	}
	if err := dataSync(w.f); err != nil {
		return w.syncFailed(fmt.Errorf("sync raft write-ahead file header: %w", err))
	}
	w.syncs(syncAppend, 1)
	w.off = walHeaderBytes
	return nil
}

// nextWALEpoch returns a random epoch other than prev (and 0). Replay
// stops at the first record not of the header's epoch, where an older
// pass's bytes begin; among those are entries' data, which clients choose,
// so a counter would let data shaped as a record of the coming epoch be
// replayed as entries after a crash.
func nextWALEpoch(prev uint64) uint64 {
	var b [8]byte
	for {
		rand.Read(b[:]) // never fails (crypto/rand)
		if e := binary.LittleEndian.Uint64(b[:]); e != prev && e != 0 {
			return e
		}
	}
}

// encodeWALRecord encodes logs as one record, to be sealed.
func encodeWALRecord(logs []*raft.Log) []byte {
	size := walRecordHeader + binary.MaxVarintLen64
	for _, l := range logs {
		size += 5*binary.MaxVarintLen64 + 1 + len(l.Data) + len(l.Extensions)
	}
	b := make([]byte, walRecordHeader, size)
	b = binary.AppendUvarint(b, uint64(len(logs)))
	for _, l := range logs {
		b = binary.AppendUvarint(b, l.Index)
		b = binary.AppendUvarint(b, l.Term)
		b = append(b, byte(l.Type))
		b = binary.AppendVarint(b, l.AppendedAt.UnixNano())
		b = binary.AppendUvarint(b, uint64(len(l.Data)))
		b = append(b, l.Data...)
		b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
		b = append(b, l.Extensions...)
	}
	return b
}

// sealWALRecord fills an encoded record's header for epoch.
func sealWALRecord(rec []byte, epoch uint64) {
	binary.LittleEndian.PutUint64(rec[0:8], epoch)
	binary.LittleEndian.PutUint32(rec[8:12], uint32(len(rec)-walRecordHeader))
	binary.LittleEndian.PutUint32(rec[12:16], recordCRC(rec[:12], rec[walRecordHeader:]))
}

var errBadWALRecord = errors.New("malformed record")

func decodeWALRecord(p []byte) ([]*raft.Log, error) {
	d := decoderOf(p)
	n := d.uvarint()
	if d.err == nil && n > uint64(len(p)) {
		return nil, errBadWALRecord
	}
	logs := make([]*raft.Log, 0, int(min(n, uint64(len(p)))))
	for range n {
		l := &raft.Log{Index: d.uvarint(), Term: d.uvarint(), Type: raft.LogType(d.byte())}
		l.AppendedAt = time.Unix(0, d.varint())
		l.Data = d.bytes()
		l.Extensions = d.bytes()
		if d.err != nil {
			return nil, d.err
		}
		logs = append(logs, l)
	}
	if d.err == nil && len(d.p) != 0 {
		return nil, errBadWALRecord
	}
	return logs, d.err
}

// walDecoder reads a record's payload; the first failure sticks in err.
type walDecoder struct {
	p   []byte
	err error
}

func decoderOf(p []byte) *walDecoder { return &walDecoder{p: p} }

func (d *walDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.p)
	if n <= 0 {
		d.err = errBadWALRecord
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *walDecoder) varint() int64 {
	v, n := binary.Varint(d.p)
	if n <= 0 {
		d.err = errBadWALRecord
		return 0
	}
	d.p = d.p[n:]
	return v
}

func (d *walDecoder) byte() byte {
	if len(d.p) == 0 {
		d.err = errBadWALRecord
		return 0
	}
	v := d.p[0]
	d.p = d.p[1:]
	return v
}

func (d *walDecoder) bytes() []byte {
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.p)) {
		d.err = errBadWALRecord
		return nil
	}
	if n == 0 {
		return nil
	}
	v := append([]byte(nil), d.p[:n]...)
	d.p = d.p[n:]
	return v
}

func (w *walLogStore) FirstIndex() (uint64, error) {
	w.mu.Lock()
	var memFirst uint64
	if len(w.mem) > 0 {
		memFirst = w.mem[0].Index
	}
	w.mu.Unlock()
	first, err := w.bolt.FirstIndex()
	if err != nil || first != 0 {
		return first, err
	}
	// (Read after mem: an entry flushed meanwhile is in BoltDB.)
	return memFirst, nil
}

func (w *walLogStore) LastIndex() (uint64, error) {
	w.mu.Lock()
	if n := len(w.mem); n > 0 {
		last := w.mem[n-1].Index
		w.mu.Unlock()
		return last, nil
	}
	w.mu.Unlock()
	return w.bolt.LastIndex()
}

func (w *walLogStore) GetLog(index uint64, l *raft.Log) error {
	w.mu.Lock()
	if n := len(w.mem); n > 0 && index >= w.mem[0].Index && index <= w.mem[n-1].Index {
		*l = *w.mem[index-w.mem[0].Index]
		w.mu.Unlock()
		return nil
	}
	w.mu.Unlock()
	// Entries leave mem only once BoltDB holds them.
	return w.bolt.GetLog(index, l)
}

func (w *walLogStore) StoreLog(l *raft.Log) error { return w.StoreLogs([]*raft.Log{l}) }

// StoreLogs appends logs to the file, syncs it, and hands them to the
// background flush.
func (w *walLogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	if err := w.syncErr; err != nil {
		w.mu.Unlock()
		return err
	}
	follows := len(w.mem) == 0 || logs[0].Index == w.mem[len(w.mem)-1].Index+1
	tooMuch := w.memBytes > walMaxMemBytes
	w.mu.Unlock()
	// mem holds consecutive indexes; a gap (after a snapshot install) or
	// too much waiting first empties it.
	if !follows || tooMuch {
		if err := w.flushAll(); err != nil {
			return err
		}
	}
	rec := encodeWALRecord(logs)
	if w.off > walHeaderBytes && w.off+int64(len(rec)) > walReuseBytes {
		if err := w.flushAll(); err != nil {
			return err
		}
		if err := w.reset(); err != nil {
			return err
		}
	}
	sealWALRecord(rec, w.epoch)
	if _, err := w.f.WriteAt(rec, w.off); err != nil {
		return fmt.Errorf("write raft write-ahead file: %w", err)
	}
	deferred := w.deferSync(logs)
	if !deferred {
		if err := dataSync(w.f); err != nil {
			return w.syncFailed(fmt.Errorf("sync raft write-ahead file: %w", err))
		}
		w.syncs(syncAppend, 1)
	}
	w.off += int64(len(rec))
	var n int64
	for _, l := range logs {
		n += entryBytes(l)
	}
	last := logs[len(logs)-1].Index
	w.mu.Lock()
	w.mem = append(w.mem, logs...)
	w.memBytes += n
	w.written = last
	if !deferred {
		// The sync covered every earlier write too.
		w.advance(last)
	}
	early := w.memBytes >= walFlushEarly
	w.mu.Unlock()
	notify(w.wake)
	if early {
		notify(w.flushNow)
	}
	if deferred {
		notify(w.syncWake)
	}
	return nil
}

// notify signals ch (capacity 1) without blocking.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// The leader's append.
//
// Raft's leader appends a batch to its own log and only then sends it to
// the followers, so a round waited for two syncs in series: the leader's,
// then the followers'. Here the leader's append of commands returns once
// the record is written, and syncLoop syncs it while the followers store
// it (Raft thesis, 10.2.1: the leader may write its log in parallel with
// replicating). Raft counts the leader towards a commit as soon as
// StoreLogs returns; what makes that safe is that nothing acts on a commit
// the leader's own disk does not hold yet:
//   - the state machine applies an entry only once it is durable here
//     (gatedFSM, node.go), so no client hears of it before;
//   - the commit index the leader sends its followers is at most its
//     durable index (clampCommit), so no follower applies it before;
//   - configuration changes, no-ops and barriers are synced before
//     StoreLogs returns, as before: raft acts on their commit itself.
// A commit both hold is held by a majority on disk: the followers answer
// only after their own synced append. If the leader crashes first, its
// unsynced entries are as uncommitted as entries it never sent.

// deferSync reports whether an append of logs may return before its sync:
// only on the leader (raft's State, read on the goroutine that both calls
// StoreLogs and changes the state, so it is exact here) and only for
// commands.
func (w *walLogStore) deferSync(logs []*raft.Log) bool {
	leading := w.leading.Load()
	if leading == nil || !(*leading)() {
		return false
	}
	for _, l := range logs {
		if l.Type != raft.LogCommand {
			return false
		}
	}
	return true
}

// advance records that every entry up to index is on the disk, unless a
// sync has failed. The caller holds mu.
func (w *walLogStore) advance(index uint64) {
	if w.syncErr != nil {
		return
	}
	w.durable = index
	close(w.advanced)
	w.advanced = make(chan struct{})
}

// syncFailed makes a failed sync of the file final and returns err (the
// first such error). Whichever sync sees it, the kernel reports a failed
// writeback once per open file and may have dropped the pages: records
// written before it, deferred ones included, may be lost, and a later sync
// that succeeds says nothing of them. So nothing becomes durable any more,
// appends fail, and the node is told to halt (failed, once).
func (w *walLogStore) syncFailed(err error) error {
	w.mu.Lock()
	first := w.syncErr == nil
	if first {
		w.syncErr = err
		close(w.advanced)
		w.advanced = make(chan struct{})
	}
	err = w.syncErr
	w.mu.Unlock()
	if first {
		w.failed(err)
	}
	return err
}

// syncLoop syncs deferred appends, many at a time, until Close or a
// failed sync.
func (w *walLogStore) syncLoop() {
	defer close(w.syncDone)
	for {
		select {
		case <-w.stop:
			return
		case <-w.syncWake:
		}
		for {
			w.mu.Lock()
			target, gen, done := w.written, w.gen, w.durable >= w.written
			w.mu.Unlock()
			if done {
				break
			}
			if err := w.syncDeferred(w.f); err != nil {
				w.syncFailed(fmt.Errorf("sync raft write-ahead file: %w", err))
				return
			}
			w.mu.Lock()
			if gen == w.gen && target > w.durable {
				w.advance(target)
			}
			w.mu.Unlock()
			w.syncs(syncAppend, 1)
		}
	}
}

// Err is the failed sync that stopped the store, if any.
func (w *walLogStore) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.syncErr
}

// DurableIndex is the last index known to be on the disk, with every one
// before it.
func (w *walLogStore) DurableIndex() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.durable
}

// WaitDurable blocks until the entry at index is on the disk. It fails
// once a sync of the file has failed (even for an entry counted durable
// before: see syncFailed) and once the store closes.
func (w *walLogStore) WaitDurable(index uint64) error {
	for {
		w.mu.Lock()
		durable, err, ch := w.durable, w.syncErr, w.advanced
		w.mu.Unlock()
		switch {
		case err != nil:
			return err
		case durable >= index:
			return nil
		}
		select {
		case <-ch:
		case <-w.stop:
			return fmt.Errorf("raft log entry %d: %w", index, raft.ErrLogNotFound)
		}
	}
}

// clampCommit wraps an AppendEntries so that the commit index it tells a
// follower is one this node's disk holds (see "The leader's append").
func (w *walLogStore) clampCommit(send appendFunc) appendFunc {
	return func(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
		if d := w.DurableIndex(); args.LeaderCommitIndex > d {
			args.LeaderCommitIndex = d
		}
		return send(id, target, args, resp)
	}
}

// DeleteRange flushes everything to BoltDB, voids the file's records and
// then deletes in BoltDB, so that no replay brings deleted entries back.
func (w *walLogStore) DeleteRange(first, last uint64) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	if last >= w.written && first <= w.written {
		// A tail: what is appended next at these indexes is another entry,
		// which a sync begun now does not cover.
		w.gen++
		w.written = first - 1
		w.durable = min(w.durable, first-1)
	}
	w.mu.Unlock()
	if err := w.flushAll(); err != nil {
		return err
	}
	if err := w.reset(); err != nil {
		return err
	}
	w.syncs(syncFlush, boltSyncsPerTxn)
	return w.bolt.DeleteRange(first, last)
}

// flushAll writes every waiting entry to BoltDB. The caller holds wmu, so
// none arrive meanwhile.
func (w *walLogStore) flushAll() error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()
	for {
		more, err := w.flushOnce()
		if err != nil || !more {
			return err
		}
	}
}

// flushOnce writes the entries waiting now to BoltDB in one transaction
// and reports whether it wrote any. The caller holds flushMu.
func (w *walLogStore) flushOnce() (bool, error) {
	w.mu.Lock()
	batch := w.mem[:len(w.mem):len(w.mem)]
	w.mu.Unlock()
	if len(batch) == 0 {
		return false, nil
	}
	if err := w.bolt.StoreLogs(batch); err != nil {
		return false, fmt.Errorf("flush %d entries to the raft log store: %w", len(batch), err)
	}
	w.syncs(syncFlush, boltSyncsPerTxn)
	var n int64
	for _, l := range batch {
		n += entryBytes(l)
	}
	w.mu.Lock()
	w.mem = append([]*raft.Log(nil), w.mem[len(batch):]...)
	w.memBytes -= n
	w.mu.Unlock()
	return true, nil
}

// flushLoop flushes to BoltDB whenever appends wait, until Close.
func (w *walLogStore) flushLoop() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		select {
		case <-w.stop:
			return
		case <-time.After(walFlushDelay):
		case <-w.flushNow:
		}
		w.flushMu.Lock()
		_, err := w.flushOnce()
		w.flushMu.Unlock()
		if err != nil {
			w.logger.Warn("flush to the raft log store failed; the entries stay in the write-ahead file, retrying", "error", err)
			select {
			case <-w.stop:
				return
			case <-time.After(walFlushRetry):
			}
			select {
			case w.wake <- struct{}{}:
			default:
			}
		}
	}
}

// Close stops the background flush, writes what waits to BoltDB and
// closes the file (not BoltDB). What it cannot flush stays in the file for
// the next Open.
func (w *walLogStore) Close() error {
	close(w.stop)
	<-w.done
	<-w.syncDone
	w.wmu.Lock()
	defer w.wmu.Unlock()
	return errors.Join(w.flushAll(), w.f.Close())
}
