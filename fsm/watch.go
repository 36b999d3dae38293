package fsm

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/raftlite/raftlite/api"
)

// Change capture: the history behind /db/watch.
//
// The write connection carries SQLite's pre-update hook. While a client
// statement runs (and only then), the hook records every row it inserts,
// updates or deletes in a table of the main database, with the old and new
// values by column position; writes to raftlite's own tables
// (_raftlite_*) are never recorded. Once the statement has run, its
// changes get their column names and primary key from the schema as it
// stands then (a statement is either DDL or DML, so that is the schema the
// changes were made under); a statement that fails, and is undone by its
// savepoint, drops its changes, and an entry that is undone as a whole
// drops all of them. When the entry's statements are done, its changes are
// encoded (encodeChanges) into one row of _raftlite_changes keyed by the
// entry's index, in the same transaction as the data: the history is
// exactly what committed, survives restarts, travels in snapshots, and is
// byte for byte the same on every replica, because it is a function of the
// log alone (values come out of the deterministic apply, the time is the
// leader's timestamp).
//
// The hook rather than triggers: triggers would have to be created, kept
// in step with ALTER TABLE and dropped for every user table, they would
// show in the schema (and in dumps, checksums and .schema), run under the
// client's guard, and cost an extra INSERT per row inside SQLite; the hook
// sees every row change whatever caused it (triggers, REPLACE, foreign key
// actions) with no schema of its own, and costs a Go callback per row.
//
// History is trimmed deterministically, per entry, by the leader's
// timestamp and index in the entry (retention by index window, bytes and
// age; -watch-retention) and by CmdCompactWatch entries (POST
// /db/compact). _raftlite_meta keeps watch_compacted, the last index
// trimmed (a watcher asking for an index at or below it gets
// api.ErrCompacted), and watch_bytes, the size of the history.

// WatchRetention says how much change history to keep. Every node of a
// cluster must use the same value, like SessionTTL: trimming is part of
// the replicated state.
type WatchRetention struct {
	// Off turns change capture off: nothing is recorded, and /db/watch
	// answers bad_request.
	Off bool
	// Entries keeps the history of the last Entries log indexes (0: no
	// limit).
	Entries uint64
	// Bytes bounds the encoded size of the history (0: no limit).
	Bytes int64
	// Age keeps the changes of entries the leader stamped within Age of
	// the newest entry (0: no limit).
	Age time.Duration
}

// DefaultWatchRetention is -watch-retention's default.
const DefaultWatchRetention = "bytes=64MiB,age=24h"

// ParseWatchRetention parses -watch-retention: "off", or a comma-separated
// list of entries=N, bytes=SIZE (with an optional KiB, MiB or GiB suffix)
// and age=DURATION.
func ParseWatchRetention(s string) (WatchRetention, error) {
	var r WatchRetention
	if s == "off" {
		return WatchRetention{Off: true}, nil
	}
	for _, part := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return r, fmt.Errorf("watch retention %q: want off or key=value pairs (entries, bytes, age)", s)
		}
		var err error
		switch key {
		case "entries":
			r.Entries, err = strconv.ParseUint(val, 10, 64)
		case "bytes":
			r.Bytes, err = parseSize(val)
		case "age":
			r.Age, err = time.ParseDuration(val)
			if err == nil && r.Age < 0 {
				err = errors.New("negative")
			}
		default:
			err = errors.New("unknown key")
		}
		if err != nil {
			return r, fmt.Errorf("watch retention %q: %s: %w", s, key, err)
		}
	}
	return r, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if n, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = n, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// watchSchema creates the history table and its counters (see schema).
var watchSchema = []string{
	`CREATE TABLE IF NOT EXISTS _raftlite_changes (idx INTEGER PRIMARY KEY, ts INTEGER NOT NULL, data BLOB NOT NULL)`,
	// A database from before change capture has no history of the
	// entries it holds: it starts as compacted up to its applied index.
	`INSERT OR IGNORE INTO _raftlite_meta (key, value) SELECT 'watch_compacted', value FROM _raftlite_meta WHERE key = 'applied_index'`,
	`INSERT OR IGNORE INTO _raftlite_meta (key, value) VALUES ('watch_bytes', 0)`,
}

// watchQueries are the writer's statements for the history, in the order
// of watchStmts.list.
var watchQueries = []string{
	`INSERT INTO _raftlite_changes (idx, ts, data) VALUES (?, ?, ?)`,
	`DELETE FROM _raftlite_changes WHERE idx = ? RETURNING length(data)`,
	`SELECT COALESCE(SUM(length(data)), 0) FROM _raftlite_changes WHERE idx <= ?`,
	`DELETE FROM _raftlite_changes WHERE idx <= ?`,
	`SELECT COALESCE(MIN(idx), 0), COALESCE((SELECT ts FROM _raftlite_changes ORDER BY idx LIMIT 1), 0) FROM _raftlite_changes`,
	`UPDATE _raftlite_meta SET value = ? WHERE key = ?`,
}

// watchStmts are the writer's prepared statements for the history.
type watchStmts struct {
	insert, deleteOne, sizeUpTo, deleteUpTo, oldest, setMeta *sql.Stmt
}

func (s *watchStmts) list() []**sql.Stmt {
	return []**sql.Stmt{&s.insert, &s.deleteOne, &s.sizeUpTo, &s.deleteUpTo, &s.oldest, &s.setMeta}
}

// watchState is what the apply path knows of the history: derived from the
// database (and so alike on every replica), kept in memory so that an
// entry pays for trimming only when something is due.
type watchState struct {
	compacted uint64 // watch_compacted
	bytes     int64  // watch_bytes
	oldestIdx uint64 // the oldest row's index, 0 when the table is empty
	oldestTS  int64  // and its leader timestamp
	dirty     bool   // compacted or bytes changed in this batch
}

// rawChange is a row change as the pre-update hook saw it.
type rawChange struct {
	table      string
	op         int32
	rowid      int64
	old, new   []any
	oldR, newR bool
}

// tableInfo is what a change needs of its table's schema.
type tableInfo struct {
	// columns are the names of the columns a change reports, and pos
	// their positions among the hook's values: every column but the
	// virtual generated ones, which are computed, not stored (the hook has
	// no value for them).
	columns []string
	pos     []int
	// pk holds the declared primary key columns (indexes into columns),
	// in key order.
	pk        []int
	rowidLess bool // WITHOUT ROWID
}

// hiddenVirtualGenerated is pragma_table_xinfo's "hidden" value of a
// virtual generated column.
const hiddenVirtualGenerated = 2

// change is a recorded row change, with its table's schema.
type change struct {
	raw  rawChange
	info *tableInfo
}

// capture is the write connection's change capture.
type capture struct {
	on    bool // capture is configured (WatchRetention.Off is false)
	armed bool // a client statement is running
	// stmt holds the changes of the running statement, entry those of
	// the entry's statements that succeeded (of all its requests, for a
	// CmdBatch entry); reqStart is where the running request's begin.
	stmt     []rawChange
	entry    []change
	reqStart int
	// err is why the hook could not read a row (out of memory), for
	// statementDone to report: a change must not be recorded wrong.
	err error
	// tables caches tableInfo by lower-cased name; any DDL statement
	// empties it (only the write connection changes the schema, and a
	// restore makes a new writer).
	tables map[string]*tableInfo
}

// hook is the pre-update hook.
func (c *capture) hook(d sqlite.SQLitePreUpdateData) {
	if !c.armed || d.DatabaseName != "main" || strings.HasPrefix(strings.ToLower(d.TableName), internalPrefix) {
		return
	}
	rc := rawChange{table: d.TableName, op: d.Op}
	n := d.Count()
	var err error
	if d.Op != sqlite3.SQLITE_INSERT {
		rc.old, rc.oldR = make([]any, n), true
		err = d.Old(rc.old...)
		rc.rowid = d.OldRowID
	}
	if d.Op != sqlite3.SQLITE_DELETE && err == nil {
		rc.new, rc.newR = make([]any, n), true
		err = d.New(rc.new...)
		rc.rowid = d.NewRowID
	}
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("read changed row of %s: %w", d.TableName, err)
	}
	c.stmt = append(c.stmt, rc)
}

// register installs the hook on the connection.
func (c *capture) register(ctx context.Context, conn *sql.Conn) error {
	if !c.on {
		return nil
	}
	return conn.Raw(func(dc any) error {
		h, ok := dc.(interface {
			RegisterPreUpdateHook(sqlite.PreUpdateHookFn)
		})
		if !ok {
			return fmt.Errorf("driver connection %T has no pre-update hook", dc)
		}
		h.RegisterPreUpdateHook(c.hook)
		return nil
	})
}

// startEntry forgets the changes of an earlier entry (or of an earlier run
// of this one).
func (c *capture) startEntry() { c.entry, c.reqStart = c.entry[:0], 0 }

// startRequest marks where a request's changes begin in its entry's.
func (c *capture) startRequest() { c.reqStart = len(c.entry) }

// arm starts recording a client statement's changes.
func (c *capture) arm() {
	c.stmt = c.stmt[:0]
	c.armed = c.on
}

// statementDone stops recording; a failed statement's changes are dropped
// (its savepoint undid them), and with requestUndone all of the request's
// (not those of the entry's other requests, which stand). ddl
// says the statement changed the schema (as the guard saw it).
func (w *writer) statementDone(ctx context.Context, failed, requestUndone, ddl bool) error {
	c := &w.cap
	c.armed = false
	if err := c.err; err != nil {
		c.err = nil
		return fmt.Errorf("change capture: %w", err)
	}
	if requestUndone {
		c.entry = c.entry[:c.reqStart]
	}
	if ddl || c.tables == nil {
		c.tables = map[string]*tableInfo{}
	}
	if failed || len(c.stmt) == 0 {
		c.stmt = c.stmt[:0]
		return nil
	}
	for _, rc := range c.stmt {
		key := strings.ToLower(rc.table)
		info, ok := c.tables[key]
		if !ok {
			var err error
			if info, err = w.tableInfo(ctx, rc.table); err != nil {
				return err
			}
			c.tables[key] = info
		}
		c.entry = append(c.entry, change{raw: rc, info: info})
	}
	c.stmt = c.stmt[:0]
	return nil
}

// tableInfo reads a table's columns (in the order the hook reports
// values), primary key and kind.
func (w *writer) tableInfo(ctx context.Context, table string) (*tableInfo, error) {
	rows, err := w.conn.QueryContext(ctx, `SELECT name, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid`, table)
	if err != nil {
		return nil, fmt.Errorf("columns of %q: %w", table, err)
	}
	defer rows.Close()
	info := &tableInfo{}
	var pkOrder []int
	for pos := 0; rows.Next(); pos++ {
		var name string
		var pk, hidden int
		if err := rows.Scan(&name, &pk, &hidden); err != nil {
			return nil, fmt.Errorf("columns of %q: %w", table, err)
		}
		if hidden == hiddenVirtualGenerated {
			continue
		}
		if pk > 0 {
			info.pk = append(info.pk, len(info.columns))
			pkOrder = append(pkOrder, pk)
		}
		info.columns = append(info.columns, name)
		info.pos = append(info.pos, pos)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %q: %w", table, err)
	}
	sortByKey(info.pk, pkOrder)
	var wr int
	if err := w.conn.QueryRowContext(ctx, `SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?`, table).Scan(&wr); err != nil {
		return nil, fmt.Errorf("kind of %q: %w", table, err)
	}
	info.rowidLess = wr != 0
	return info, nil
}

// sortByKey sorts pos by the matching keys (insertion sort: keys are few).
func sortByKey(pos, keys []int) {
	for i := 1; i < len(pos); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			pos[j], pos[j-1] = pos[j-1], pos[j]
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// changesVersion is the first byte of an encoded _raftlite_changes row.
const changesVersion = 1

// Flags of an encoded change.
const (
	changeHasRowid = 1 << 0
	changeHasOld   = 1 << 1
	changeHasNew   = 1 << 2
)

// encodeChanges encodes an entry's changes for _raftlite_changes. The
// format (version 1) reuses the command encoding's strings and values:
//
//	version byte | n uvarint | n × change
//	change: table string | op byte (SQLite's code) | flags byte | [rowid varint]
//	        | ncol uvarint | ncol × column string | npk uvarint | npk × position uvarint
//	        | [old: ncol × value] | [new: ncol × value]
func encodeChanges(changes []change) ([]byte, error) {
	b := append(make([]byte, 0, 64*len(changes)), changesVersion)
	b = binary.AppendUvarint(b, uint64(len(changes)))
	for _, ch := range changes {
		rc, info := &ch.raw, ch.info
		b = appendString(b, rc.table)
		b = append(b, byte(rc.op))
		var flags byte
		if !info.rowidLess {
			flags |= changeHasRowid
		}
		if rc.oldR {
			flags |= changeHasOld
		}
		if rc.newR {
			flags |= changeHasNew
		}
		b = append(b, flags)
		if flags&changeHasRowid != 0 {
			b = binary.AppendVarint(b, rc.rowid)
		}
		b = binary.AppendUvarint(b, uint64(len(info.columns)))
		for _, name := range info.columns {
			b = appendString(b, name)
		}
		b = binary.AppendUvarint(b, uint64(len(info.pk)))
		for _, p := range info.pk {
			b = binary.AppendUvarint(b, uint64(p))
		}
		for _, row := range [][]any{rc.old, rc.new} {
			if row == nil {
				continue
			}
			for _, p := range info.pos {
				var v any
				if p < len(row) {
					v = row[p]
				}
				var err error
				if b, err = appendValue(b, v); err != nil {
					return nil, fmt.Errorf("table %s: %w", rc.table, err)
				}
			}
		}
	}
	return b, nil
}

// decodedChange is a change read back from _raftlite_changes.
type decodedChange struct {
	table    string
	op       string
	rowid    *int64
	columns  []string
	pk       []int
	old, new []api.Value
}

// decodeChanges decodes encodeChanges's output.
func decodeChanges(b []byte) ([]decodedChange, error) {
	d := decoder{b: b}
	v, err := d.byte()
	if err != nil {
		return nil, err
	}
	if v != changesVersion {
		return nil, fmt.Errorf("unsupported changes version %d", v)
	}
	n, err := d.count()
	if err != nil {
		return nil, err
	}
	out := make([]decodedChange, n)
	for i := range out {
		if err := d.change(&out[i]); err != nil {
			return nil, fmt.Errorf("change %d: %w", i, err)
		}
	}
	if d.off != len(d.b) {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b)-d.off)
	}
	return out, nil
}

func (d *decoder) change(c *decodedChange) error {
	var err error
	if c.table, err = d.string(); err != nil {
		return err
	}
	op, err := d.byte()
	if err != nil {
		return err
	}
	switch int32(op) {
	case sqlite3.SQLITE_INSERT:
		c.op = api.OpInsert
	case sqlite3.SQLITE_UPDATE:
		c.op = api.OpUpdate
	case sqlite3.SQLITE_DELETE:
		c.op = api.OpDelete
	default:
		return fmt.Errorf("unknown operation %d", op)
	}
	flags, err := d.byte()
	if err != nil {
		return err
	}
	if flags&changeHasRowid != 0 {
		r, err := d.varint()
		if err != nil {
			return err
		}
		c.rowid = &r
	}
	if c.columns, err = d.strings(); err != nil {
		return err
	}
	npk, err := d.count()
	if err != nil {
		return err
	}
	c.pk = make([]int, npk)
	for i := range c.pk {
		p, err := d.uvarint()
		if err != nil {
			return err
		}
		if p >= uint64(len(c.columns)) {
			return fmt.Errorf("primary key position %d of %d columns", p, len(c.columns))
		}
		c.pk[i] = int(p)
	}
	for _, dst := range []struct {
		flag byte
		row  *[]api.Value
	}{{changeHasOld, &c.old}, {changeHasNew, &c.new}} {
		if flags&dst.flag == 0 {
			continue
		}
		*dst.row = make([]api.Value, len(c.columns))
		for i := range *dst.row {
			if (*dst.row)[i], err = d.value(); err != nil {
				return err
			}
		}
	}
	return nil
}

// storeChanges writes the entry's recorded changes, if any, as its row of
// history.
func (f *FSM) storeChanges(ctx context.Context, e entry, st *watchState) error {
	c := &f.w.cap
	if len(c.entry) == 0 {
		return nil
	}
	data, err := encodeChanges(c.entry)
	c.entry = c.entry[:0]
	if err != nil {
		return fmt.Errorf("encode changes: %w", err)
	}
	if _, err := f.w.watch.insert.ExecContext(ctx, int64(e.Index), e.Timestamp, data); err != nil {
		return fmt.Errorf("store changes: %w", err)
	}
	st.bytes += int64(len(data))
	st.dirty = true
	if st.oldestIdx == 0 {
		st.oldestIdx, st.oldestTS = e.Index, e.Timestamp
	}
	return nil
}

// trimLimit bounds the history rows one entry trims by retention, so no
// entry pays for a large deletion; an entry adds at most one row, so
// trimming keeps up.
const trimLimit = 64

// trimChanges applies the retention as of the entry at index, stamped ts.
func (f *FSM) trimChanges(ctx context.Context, index uint64, ts int64, st *watchState) error {
	r := f.retention
	due := func() bool {
		switch {
		case st.oldestIdx == 0:
			return false
		case r.Entries > 0 && st.oldestIdx+r.Entries <= index:
			return true
		case r.Age > 0 && st.oldestTS < ts-int64(r.Age):
			return true
		}
		return r.Bytes > 0 && st.bytes > r.Bytes
	}
	for i := 0; i < trimLimit && due(); i++ {
		var n int64
		if err := f.w.watch.deleteOne.QueryRowContext(ctx, int64(st.oldestIdx)).Scan(&n); err != nil {
			return fmt.Errorf("trim changes: %w", err)
		}
		st.bytes -= n
		st.compacted = max(st.compacted, st.oldestIdx)
		st.dirty = true
		if err := f.w.loadOldest(ctx, st); err != nil {
			return err
		}
	}
	return nil
}

// compactChanges trims the history up to and including upTo (at most the
// entry's own index) for a CmdCompactWatch entry.
func (f *FSM) compactChanges(ctx context.Context, index, upTo uint64, st *watchState) error {
	upTo = min(upTo, index)
	if upTo <= st.compacted {
		return nil
	}
	var n int64
	if err := f.w.watch.sizeUpTo.QueryRowContext(ctx, int64(upTo)).Scan(&n); err != nil {
		return fmt.Errorf("compact changes: %w", err)
	}
	if _, err := f.w.watch.deleteUpTo.ExecContext(ctx, int64(upTo)); err != nil {
		return fmt.Errorf("compact changes: %w", err)
	}
	st.bytes -= n
	st.compacted = upTo
	st.dirty = true
	return f.w.loadOldest(ctx, st)
}

// loadOldest reads the oldest history row into st.
func (w *writer) loadOldest(ctx context.Context, st *watchState) error {
	var idx int64
	if err := w.watch.oldest.QueryRowContext(ctx).Scan(&idx, &st.oldestTS); err != nil {
		return fmt.Errorf("read oldest change: %w", err)
	}
	st.oldestIdx = uint64(idx)
	return nil
}

// loadWatchState reads the history's state at open.
func (w *writer) loadWatchState(ctx context.Context) (watchState, error) {
	var st watchState
	var compacted int64
	err := w.conn.QueryRowContext(ctx, `SELECT
		(SELECT value FROM _raftlite_meta WHERE key = 'watch_compacted'),
		(SELECT value FROM _raftlite_meta WHERE key = 'watch_bytes')`).Scan(&compacted, &st.bytes)
	if err != nil {
		return st, fmt.Errorf("read watch state: %w", err)
	}
	st.compacted = uint64(compacted)
	return st, w.loadOldest(ctx, &st)
}

// storeWatchState writes the batch's compacted index and size.
func (w *writer) storeWatchState(ctx context.Context, st *watchState) error {
	if !st.dirty {
		return nil
	}
	for _, kv := range []struct {
		key string
		v   int64
	}{{"watch_compacted", int64(st.compacted)}, {"watch_bytes", st.bytes}} {
		if _, err := w.watch.setMeta.ExecContext(ctx, kv.v, kv.key); err != nil {
			return fmt.Errorf("update %s: %w", kv.key, err)
		}
	}
	st.dirty = false
	return nil
}
