package fsm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
)

// The reading side of change capture (see watch.go): pages of history for
// /db/watch, read on the read pool, filtered, and woken by the apply path.

// DefaultWatchLimit is the events a page holds when the request sets no
// limit, and maxWatchScan the history rows one page reads at most (rows
// the filters drop count too, so a page never scans without bound).
const (
	DefaultWatchLimit = 100
	maxWatchScan      = 1000
)

// ErrWatchOff is returned by WatchChanges when capture is off.
var ErrWatchOff = api.ErrBadRequest.New("change capture is off on this node (-watch-retention off)")

// WatchChanges returns the committed changes from req.From on that pass
// req's filters: one page of events in index order, and the index to ask
// for next. If there are none yet it waits, up to req.Wait, for the apply
// path to commit some (it is woken by every applied batch, never polls).
// An index at or below the last compacted one fails with an error matching
// api.ErrCompacted (an *api.CompactedError, with the oldest index still
// available). Only committed entries are ever applied, so a watcher never
// sees a change that is not committed; pages follow the history in order
// and Next covers exactly what was read, so resuming from Next (or from
// the last event's index + 1) neither skips nor repeats a change.
func (f *FSM) WatchChanges(ctx context.Context, req api.WatchRequest, wait time.Duration) (api.WatchPage, error) {
	if f.retention.Off {
		return api.WatchPage{}, ErrWatchOff
	}
	if err := req.Validate(); err != nil {
		return api.WatchPage{}, err
	}
	if req.Limit == 0 {
		req.Limit = DefaultWatchLimit
	}
	if req.From == 0 {
		req.From = f.applied.Load() + 1
	}
	waitCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		page, err := f.readChanges(ctx, &req)
		if err != nil || len(page.Events) > 0 || wait <= 0 {
			return page, err
		}
		if err := f.WaitApplied(waitCtx, page.Next); err != nil {
			if ctx.Err() != nil {
				return page, ctx.Err()
			}
			if waitCtx.Err() != nil {
				return page, nil
			}
			return page, err
		}
		req.From = page.Next
	}
}

// readChanges reads one page from req.From in one read transaction, so
// that the compacted index, the applied index and the rows agree.
func (f *FSM) readChanges(ctx context.Context, req *api.WatchRequest) (api.WatchPage, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, err := f.acquireReader(ctx)
	if err != nil {
		return api.WatchPage{}, fmt.Errorf("watch: %w", err)
	}
	defer f.releaseReader(c)
	if err := c.internal(ctx, "BEGIN"); err != nil {
		return api.WatchPage{}, fmt.Errorf("watch: begin: %w", err)
	}
	defer func() {
		if err := c.internal(context.Background(), "ROLLBACK"); err != nil && !transactionGone(err) {
			f.logger.Error("end read transaction", "error", err)
		}
	}()
	// History is raftlite's own table: read it whatever the guard lets
	// clients see.
	c.guard.mode = modeInternal
	var compacted, applied int64
	err = c.conn.QueryRowContext(ctx, `SELECT
		(SELECT value FROM _raftlite_meta WHERE key = 'watch_compacted'),
		(SELECT value FROM _raftlite_meta WHERE key = 'applied_index')`).Scan(&compacted, &applied)
	if err != nil {
		return api.WatchPage{}, fmt.Errorf("watch: read state: %w", err)
	}
	if req.From <= uint64(compacted) {
		return api.WatchPage{}, &api.CompactedError{Requested: req.From, Oldest: uint64(compacted) + 1}
	}
	rows, err := c.conn.QueryContext(ctx, `SELECT idx, ts, data FROM _raftlite_changes WHERE idx >= ? ORDER BY idx LIMIT ?`,
		int64(req.From), maxWatchScan)
	if err != nil {
		return api.WatchPage{}, fmt.Errorf("watch: read changes: %w", err)
	}
	type stored struct {
		idx, ts int64
		data    []byte
	}
	var found []stored
	for rows.Next() {
		var s stored
		if err := rows.Scan(&s.idx, &s.ts, &s.data); err != nil {
			rows.Close()
			return api.WatchPage{}, fmt.Errorf("watch: read changes: %w", err)
		}
		found = append(found, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return api.WatchPage{}, fmt.Errorf("watch: read changes: %w", err)
	}

	page := api.WatchPage{Events: []api.ChangeEvent{}, Next: max(req.From, uint64(applied)+1)}
	if len(found) == maxWatchScan {
		page.Next = uint64(found[len(found)-1].idx) + 1
	}
	c.guard.mode = modeReadOnly
	flt := newChangeFilter(c, req)
	defer flt.close()
	for _, s := range found {
		ev, err := flt.event(ctx, uint64(s.idx), s.ts, s.data)
		if err != nil {
			return api.WatchPage{}, err
		}
		if ev == nil {
			continue
		}
		page.Events = append(page.Events, *ev)
		if len(page.Events) == req.Limit {
			page.Next = uint64(s.idx) + 1
			break
		}
	}
	return page, nil
}

// publishWatch makes the history's state as of the last committed batch
// visible to Stats.
func (f *FSM) publishWatch() {
	st := f.watch
	f.watchSeen.Store(&st)
}

// watchStats is the "watch" object of Stats: whether capture is on, the
// retention, the oldest index still available and the history's size.
func (f *FSM) watchStats() map[string]any {
	out := map[string]any{"capture": !f.retention.Off}
	if !f.retention.Off {
		r := f.retention
		out["retention"] = map[string]any{"entries": r.Entries, "bytes": r.Bytes, "age": r.Age.String()}
	}
	if st := f.watchSeen.Load(); st != nil {
		out["oldest_index"] = st.compacted + 1
		out["bytes"] = st.bytes
	}
	return out
}

// changeFilter applies a request's filters to history rows and turns them
// into events.
type changeFilter struct {
	c      *dbConn
	req    *api.WatchRequest
	tables map[string]bool
	ops    map[string]bool
	// where holds the statement evaluating req.Where, per list of column
	// names.
	where map[string]*sql.Stmt
}

func newChangeFilter(c *dbConn, req *api.WatchRequest) *changeFilter {
	flt := &changeFilter{c: c, req: req, where: map[string]*sql.Stmt{}}
	if len(req.Tables) > 0 {
		flt.tables = map[string]bool{}
		for _, t := range req.Tables {
			flt.tables[strings.ToLower(t)] = true
		}
	}
	if len(req.Ops) > 0 {
		flt.ops = map[string]bool{}
		for _, op := range req.Ops {
			flt.ops[op] = true
		}
	}
	return flt
}

func (flt *changeFilter) close() {
	for _, st := range flt.where {
		st.Close()
	}
}

// event decodes one history row and keeps the changes that pass; nil when
// none does.
func (flt *changeFilter) event(ctx context.Context, idx uint64, ts int64, data []byte) (*api.ChangeEvent, error) {
	changes, err := decodeChanges(data)
	if err != nil {
		return nil, fmt.Errorf("watch: history at index %d: %w", idx, err)
	}
	var kept []api.Change
	for i := range changes {
		ch := &changes[i]
		if flt.tables != nil && !flt.tables[strings.ToLower(ch.table)] || flt.ops != nil && !flt.ops[ch.op] {
			continue
		}
		ok, err := flt.matches(ctx, ch)
		if err != nil {
			return nil, err
		}
		if ok {
			kept = append(kept, flt.change(ch))
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	return &api.ChangeEvent{Index: idx, Time: time.Unix(0, ts).UTC().Format(time.RFC3339Nano), Changes: kept}, nil
}

// change is the wire form of ch.
func (flt *changeFilter) change(ch *decodedChange) api.Change {
	out := api.Change{Table: ch.table, Op: ch.op, Rowid: ch.rowid, New: rowMap(ch.columns, ch.new)}
	if flt.req.Prev {
		out.Old = rowMap(ch.columns, ch.old)
	}
	if len(ch.pk) > 0 {
		key := ch.new
		if key == nil {
			key = ch.old
		}
		out.PK = make(map[string]api.Value, len(ch.pk))
		for _, p := range ch.pk {
			out.PK[ch.columns[p]] = key[p]
		}
	}
	return out
}

func rowMap(columns []string, row []api.Value) map[string]api.Value {
	if row == nil {
		return nil
	}
	m := make(map[string]api.Value, len(row))
	for i, v := range row {
		m[columns[i]] = v
	}
	return m
}

// matches evaluates req.Where against the change's new row (its old one
// for a delete). The expression runs as a read-only SELECT over the row's
// values, bound as parameters, on a read connection (query_only, guard in
// read-only mode): it can read, never write, and one statement only.
func (flt *changeFilter) matches(ctx context.Context, ch *decodedChange) (bool, error) {
	if flt.req.Where == "" {
		return true, nil
	}
	row := ch.new
	if row == nil {
		row = ch.old
	}
	key := strings.Join(ch.columns, "\x00")
	st, ok := flt.where[key]
	if !ok {
		var b strings.Builder
		b.WriteString("SELECT CASE WHEN (")
		b.WriteString(flt.req.Where)
		b.WriteString(") THEN 1 ELSE 0 END FROM (SELECT ")
		for i, col := range ch.columns {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString("?" + strconv.Itoa(i+1) + ` AS "` + strings.ReplaceAll(col, `"`, `""`) + `"`)
		}
		b.WriteString(")")
		query := b.String()
		if multipleStatements(query) {
			return false, api.ErrBadRequest.New("where: must be one SQL expression")
		}
		flt.c.guard.reset()
		var err error
		if st, err = flt.c.conn.PrepareContext(ctx, query); err != nil {
			return false, api.ErrBadRequest.New(fmt.Sprintf("where on table %s: %s", ch.table, flt.c.guard.errorText(err)))
		}
		flt.where[key] = st
	}
	var hit int
	if err := st.QueryRowContext(ctx, row...).Scan(&hit); err != nil {
		if errors.Is(err, ctx.Err()) {
			return false, err
		}
		return false, api.ErrBadRequest.New(fmt.Sprintf("where on table %s: %s", ch.table, flt.c.guard.errorText(err)))
	}
	return hit == 1, nil
}
