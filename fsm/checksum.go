package fsm

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftlite/raftlite/api"
)

// Replica checksums.
//
// A checksum covers the database's content, not its file: the schema (the
// type, name, table and SQL of every sqlite_schema row, not root pages) and
// every row of every ordinary table, raftlite's own included, in rowid (or,
// WITHOUT ROWID, primary key) order. The applied index row of _raftlite_meta
// is left out: it is the position the checksum is reported with, and it is
// the one thing two replicas at different indexes are expected to differ
// in. So is vacuum_pending, which lives only between a batch's commit and
// its VACUUM (vacuum.go). Virtual tables are skipped (their shadow tables hold their content).
// Values are hashed with their storage class, so 1, 1.0, '1' and x'31'
// differ. It is computed in a read transaction, streaming row by row: cost
// proportional to the data, memory constant, and in WAL mode it never
// blocks the apply path.
//
// Comparing replicas needs checksums at the same index, and a node cannot
// go back to an index it has passed. So the comparison goes through the log:
// a CmdChecksum entry (a checksum marker, proposed by Node.TriggerChecksum)
// makes every FSM, right after committing everything up to and including the
// marker and before applying anything after it, open a read transaction on a
// connection of its own (ApplyBatch ends the batch at a marker). That pins
// the database exactly as of the marker's index, cheaply; the checksum is
// then computed from that snapshot in the background while the apply path
// goes on, and kept (the last maxChecksums of them) for ChecksumAt. A node
// that restarts forgets them: markers it applied before do not pin again on
// replay.

// maxChecksums is how many marker checksums an FSM keeps.
const maxChecksums = 16

// checksumResult is the checksum taken at one marker.
type checksumResult struct {
	done chan struct{} // closed once sum or err is set
	sum  string
	err  error
}

func (r *checksumResult) completed() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// checksumStore keeps the checksums taken at markers.
type checksumStore struct {
	mu      sync.Mutex
	results map[uint64]*checksumResult
	order   []uint64
	last    uint64 // the index of the newest completed checksum
	lastSum string
	lastAt  time.Time
}

func (s *checksumStore) init() { s.results = map[uint64]*checksumResult{} }

// expect records that a checksum will be taken at index.
func (s *checksumStore) expect(index uint64) *checksumResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.results[index]; r != nil {
		return r
	}
	r := &checksumResult{done: make(chan struct{})}
	s.results[index] = r
	s.order = append(s.order, index)
	// Forget the oldest completed checksums beyond maxChecksums.
	for i := 0; len(s.order) > maxChecksums && i < len(s.order); {
		old := s.order[i]
		if or := s.results[old]; or != nil && !or.completed() {
			i++
			continue
		}
		delete(s.results, old)
		s.order = append(s.order[:i], s.order[i+1:]...)
	}
	return r
}

// finish completes the checksum at index.
func (s *checksumStore) finish(index uint64, r *checksumResult, sum string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.completed() {
		return
	}
	r.sum, r.err = sum, err
	close(r.done)
	if err == nil && index >= s.last {
		s.last, s.lastSum, s.lastAt = index, sum, time.Now()
	}
}

func (s *checksumStore) get(index uint64) *checksumResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.results[index]
}

// isChecksumMarker reports whether l is a CmdChecksum entry, without
// decoding all of it.
func isChecksumMarker(l *raft.Log) bool {
	return l.Type == raft.LogCommand && len(l.Data) >= 2 && l.Data[0] == commandVersion &&
		CommandType(l.Data[1]) == CmdChecksum
}

// pinChecksum opens the read transaction that fixes the checksum at index,
// which the apply path has just committed, and computes the checksum from
// it in the background. It is called on Raft's FSM goroutine between
// batches. The background work holds mu for reading, as a snapshot does,
// so that Restore and Close wait for it.
func (f *FSM) pinChecksum(index uint64, r *checksumResult) {
	f.mu.RLock()
	handedOff := false
	defer func() {
		if !handedOff {
			f.mu.RUnlock()
		}
	}()
	fail := func(err error) {
		f.checksums.finish(index, r, "", fmt.Errorf("checksum at index %d: %w", index, err))
	}
	if f.closed {
		fail(ErrClosed)
		return
	}
	ctx := context.Background()
	conn, err := f.db.Conn(ctx)
	if err != nil {
		fail(err)
		return
	}
	idx, err := beginSnapshotRead(ctx, conn)
	if err == nil && idx != index {
		err = fmt.Errorf("database at index %d", idx)
	}
	if err != nil {
		conn.ExecContext(ctx, "ROLLBACK")
		conn.Close()
		fail(err)
		return
	}
	handedOff = true
	go func() {
		defer f.mu.RUnlock()
		defer conn.Close()
		defer conn.ExecContext(context.Background(), "ROLLBACK")
		start := time.Now()
		sum, err := contentChecksum(ctx, conn)
		if err != nil {
			f.logger.Warn("replica checksum failed", "index", index, "error", err)
			fail(err)
			return
		}
		f.logger.Info("replica checksum", "index", index, "checksum", sum, "duration", time.Since(start))
		f.checksums.finish(index, r, sum, nil)
	}()
}

// ChecksumAt returns the checksum of the database as of index, which must
// be a checksum marker: it waits until this node has applied index and the
// checksum is computed, or ctx ends. It returns api.ErrNoChecksum when this node
// has no checksum for index.
func (f *FSM) ChecksumAt(ctx context.Context, index uint64) (string, error) {
	if err := f.WaitApplied(ctx, index); err != nil {
		return "", err
	}
	r := f.checksums.get(index)
	if r == nil {
		return "", fmt.Errorf("index %d: %w", index, api.ErrNoChecksum)
	}
	select {
	case <-r.done:
		return r.sum, r.err
	case <-ctx.Done():
		return "", fmt.Errorf("checksum at index %d: %w", index, ctx.Err())
	}
}

// LastChecksum returns the newest checksum taken at a marker: its index
// (0 if none), value and when it completed.
func (f *FSM) LastChecksum() (index uint64, sum string, at time.Time) {
	f.checksums.mu.Lock()
	defer f.checksums.mu.Unlock()
	return f.checksums.last, f.checksums.lastSum, f.checksums.lastAt
}

// Checksum computes the checksum of the database as this node has it now,
// in one read transaction on a read connection, and returns it with the
// applied index it describes. Comparing nodes needs a common index: see
// ChecksumAt.
func (f *FSM) Checksum(ctx context.Context) (index uint64, sum string, err error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, err := f.acquireReader(ctx)
	if err != nil {
		return 0, "", fmt.Errorf("checksum: %w", err)
	}
	defer f.releaseReader(c)
	c.guard.mode = modeInternal // raftlite's own reads
	if _, err := c.conn.ExecContext(ctx, "BEGIN"); err != nil {
		return 0, "", fmt.Errorf("checksum: begin: %w", err)
	}
	defer func() {
		if _, err := c.conn.ExecContext(context.Background(), "ROLLBACK"); err != nil && !transactionGone(err) {
			f.logger.Error("end read transaction", "error", err)
		}
	}()
	if index, err = queryAppliedIndex(ctx, c.conn); err != nil {
		return 0, "", fmt.Errorf("checksum: %w", err)
	}
	if sum, err = contentChecksum(ctx, c.conn); err != nil {
		return 0, "", fmt.Errorf("checksum: %w", err)
	}
	return index, sum, nil
}

// queryer is what contentChecksum reads through.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// contentChecksum hashes the database content seen by q, which must be in
// a read transaction.
func contentChecksum(ctx context.Context, q queryer) (string, error) {
	h := sha256.New()
	w := &hashWriter{h: h}
	w.str("raftlite-checksum-v1")

	// The schema.
	rows, err := q.QueryContext(ctx, "SELECT type, name, tbl_name, sql FROM main.sqlite_schema ORDER BY type, name")
	if err != nil {
		return "", fmt.Errorf("read schema: %w", err)
	}
	if err := w.rows(rows, 4); err != nil {
		return "", fmt.Errorf("read schema: %w", err)
	}

	// The tables.
	type table struct {
		name         string
		withoutRowid bool
	}
	var tables []table
	rows, err = q.QueryContext(ctx, "SELECT name, wr FROM pragma_table_list WHERE schema = 'main' AND type IN ('table', 'shadow') ORDER BY name")
	if err != nil {
		return "", fmt.Errorf("list tables: %w", err)
	}
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.withoutRowid); err != nil {
			rows.Close()
			return "", fmt.Errorf("list tables: %w", err)
		}
		if isSchemaTable(t.name) {
			continue
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("list tables: %w", err)
	}
	rows.Close()

	for _, t := range tables {
		cols, pk, err := tableColumns(ctx, q, t.name)
		if err != nil {
			return "", fmt.Errorf("table %q: %w", t.name, err)
		}
		var sel []string
		order := "_rowid_"
		if !t.withoutRowid {
			sel = append(sel, "+_rowid_")
		} else {
			order = strings.Join(pk, ", ")
		}
		for _, c := range cols {
			// The unary plus leaves the value as it is but drops the
			// declared type, which would make the driver turn DATE
			// and TIMESTAMP values into time.Time.
			sel = append(sel, "+"+c)
		}
		query := "SELECT " + strings.Join(sel, ", ") + " FROM main." + quoteIdent(t.name)
		if t.name == "_raftlite_meta" {
			query += " WHERE key NOT IN ('applied_index', '" + vacuumPendingKey + "')"
		}
		if order != "" {
			query += " ORDER BY " + order
		}
		w.str("table")
		w.str(t.name)
		rows, err := q.QueryContext(ctx, query)
		if err != nil {
			return "", fmt.Errorf("table %q: %w", t.name, err)
		}
		if err := w.rows(rows, len(sel)); err != nil {
			return "", fmt.Errorf("table %q: %w", t.name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// tableColumns returns the quoted columns of table and its quoted primary
// key columns in key order.
func tableColumns(ctx context.Context, q queryer, table string) (cols, pk []string, err error) {
	rows, err := q.QueryContext(ctx, "SELECT name, pk FROM pragma_table_info(?, 'main') ORDER BY cid", table)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var pks []struct {
		n    int
		name string
	}
	for rows.Next() {
		var name string
		var n int
		if err := rows.Scan(&name, &n); err != nil {
			return nil, nil, err
		}
		cols = append(cols, quoteIdent(name))
		if n > 0 {
			pks = append(pks, struct {
				n    int
				name string
			}{n, quoteIdent(name)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	pk = make([]string, len(pks))
	for _, p := range pks {
		if p.n-1 < len(pk) {
			pk[p.n-1] = p.name
		}
	}
	return cols, pk, nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// hashWriter feeds values to a hash in a self-delimiting encoding.
type hashWriter struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64 + 1]byte
}

const (
	hashNull  = 0
	hashInt   = 1
	hashFloat = 2
	hashText  = 3
	hashBlob  = 4
	hashRow   = 5
)

func (w *hashWriter) str(s string) {
	w.h.Write([]byte{hashText})
	w.h.Write(binary.AppendUvarint(w.buf[:0], uint64(len(s))))
	w.h.Write([]byte(s))
}

func (w *hashWriter) value(v any) error {
	switch v := v.(type) {
	case nil:
		w.h.Write([]byte{hashNull})
	case int64:
		b := append(w.buf[:0], hashInt)
		w.h.Write(binary.BigEndian.AppendUint64(b, uint64(v)))
	case float64:
		b := append(w.buf[:0], hashFloat)
		w.h.Write(binary.BigEndian.AppendUint64(b, math.Float64bits(v)))
	case string:
		w.str(v)
	case []byte:
		w.h.Write([]byte{hashBlob})
		w.h.Write(binary.AppendUvarint(w.buf[:0], uint64(len(v))))
		w.h.Write(v)
	case bool:
		if v {
			return w.value(int64(1))
		}
		return w.value(int64(0))
	case time.Time:
		return errors.New("unexpected time value")
	default:
		return fmt.Errorf("unexpected value type %T", v)
	}
	return nil
}

// rows hashes every row of rows, which has n columns, and closes it.
func (w *hashWriter) rows(rows *sql.Rows, n int) error {
	defer rows.Close()
	dest := make([]any, n)
	ptrs := make([]any, n)
	for i := range dest {
		ptrs[i] = &dest[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		w.h.Write([]byte{hashRow})
		for _, v := range dest {
			if err := w.value(v); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}
