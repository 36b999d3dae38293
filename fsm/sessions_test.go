package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// base is the leader time of the session tests' first entry: far from the
// test machine's clock, so that a test would notice expiry by local time.
var base = time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC).UnixNano()

func openFSMWithTTL(t testing.TB, dir string, ttl time.Duration) *FSM {
	t.Helper()
	f, err := Open(Config{Dir: dir, Logger: quietLogger(), SessionTTL: ttl})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// sessLog is an execute entry at index, stamped with leader time ts, in
// session (id, seq) ("" for none).
func sessLog(t testing.TB, index uint64, ts int64, id string, seq uint64, stmts ...api.Statement) *raft.Log {
	t.Helper()
	return commandLog(t, index, &Command{Type: CmdExecute, Timestamp: ts, Seed: index * 7,
		Request: &api.Request{Statements: stmts, ClientID: id, Seq: seq}})
}

// sessExec applies one session entry and returns its response.
func sessExec(t testing.TB, f *FSM, index uint64, ts int64, id string, seq uint64, stmts ...api.Statement) *api.Response {
	t.Helper()
	return response(t, f.Apply(sessLog(t, index, ts, id, seq, stmts...)))
}

func stripSeconds(rs []api.Result) []api.Result {
	if rs == nil {
		return nil
	}
	out := make([]api.Result, len(rs))
	for i, r := range rs {
		r.Seconds = 0
		out[i] = r
	}
	return out
}

// sessionRows dumps the session table (what every replica must hold alike).
func sessionRows(t testing.TB, f *FSM) [][]api.Value {
	t.Helper()
	return internalQuery(t, f, "SELECT client_id, seq, hex(response), last_seen FROM _raftlite_sessions ORDER BY client_id")
}

func sessionCountsOf(f *FSM) sessionCounts {
	return sessionCounts{f.sessions.live.Load(), f.sessions.deduplicated.Load(), f.sessions.expired.Load()}
}

func wantCounts(t testing.TB, f *FSM, want sessionCounts) {
	t.Helper()
	if got := sessionCountsOf(f); got != want {
		t.Fatalf("session counters %+v, want %+v", got, want)
	}
	st := f.SessionStats()
	if st["live"] != want.live || st["deduplicated"] != want.deduplicated || st["expired"] != want.expired {
		t.Fatalf("SessionStats %v, want %+v", st, want)
	}
}

func TestSessionDeduplicates(t *testing.T) {
	f := newFSM(t)
	ts := base
	noErrors(t, sessExec(t, f, 1, ts, "", 0, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, v TEXT)")).Results)

	first := sessExec(t, f, 2, ts, "c1", 1, stmt("INSERT INTO foo(v) VALUES('a')"))
	noErrors(t, first.Results)
	if first.Deduplicated || first.Err != nil || first.Index != 2 {
		t.Fatalf("first response %+v", first)
	}
	// The retry, as a later entry (a client resending after a timeout).
	again := sessExec(t, f, 3, ts+int64(time.Second), "c1", 1, stmt("INSERT INTO foo(v) VALUES('a')"))
	if !again.Deduplicated || again.Err != nil {
		t.Fatalf("retry response %+v", again)
	}
	if again.Index != first.Index {
		t.Fatalf("retry index %d, want the original's %d", again.Index, first.Index)
	}
	if g, w := stripSeconds(again.Results), stripSeconds(first.Results); !reflect.DeepEqual(g, w) {
		t.Fatalf("retry results %#v, want %#v", g, w)
	}
	if n := count(t, f, "foo"); n != 1 {
		t.Fatalf("rows = %d, want 1", n)
	}
	wantCounts(t, f, sessionCounts{live: 1, deduplicated: 1})

	// The next sequence number executes; gaps are allowed (seq > last).
	noErrors(t, sessExec(t, f, 4, ts, "c1", 2, stmt("INSERT INTO foo(v) VALUES('b')")).Results)
	noErrors(t, sessExec(t, f, 5, ts, "c1", 7, stmt("INSERT INTO foo(v) VALUES('c')")).Results)
	if n := count(t, f, "foo"); n != 3 {
		t.Fatalf("rows = %d, want 3", n)
	}

	// Errors execute nothing and are not remembered.
	for _, c := range []struct {
		id   string
		seq  uint64
		want error
	}{
		{"c1", 2, api.ErrSeqSuperseded},
		{"c1", 1, api.ErrSeqSuperseded},
		{"c2", 2, api.ErrSessionExpired},
		{"never-seen", 99, api.ErrSessionExpired},
		{"c1", 0, api.ErrBadSequence},
		{"c3", 0, api.ErrBadSequence},
	} {
		r := sessExec(t, f, f.AppliedIndex()+1, ts, c.id, c.seq, stmt("INSERT INTO foo(v) VALUES('no')"))
		if !errors.Is(r.Err, c.want) || r.Results != nil || r.Deduplicated {
			t.Fatalf("(%s, %d): %+v, want %v", c.id, c.seq, r, c.want)
		}
	}
	if n := count(t, f, "foo"); n != 3 {
		t.Fatalf("rows = %d after refused requests, want 3", n)
	}
	if api.ErrSeqSuperseded.Error() != "sequence number already superseded" || api.ErrSessionExpired.Error() != "unknown or expired session" {
		t.Fatal("session error messages differ from API.md")
	}
	// The last write is still the one remembered.
	r := sessExec(t, f, f.AppliedIndex()+1, ts, "c1", 7, stmt("INSERT INTO foo(v) VALUES('c')"))
	if !r.Deduplicated || r.Index != 5 {
		t.Fatalf("retry of seq 7: %+v", r)
	}
	// Requests without a session are not affected.
	noErrors(t, sessExec(t, f, f.AppliedIndex()+1, ts, "", 0, stmt("INSERT INTO foo(v) VALUES('d')")).Results)
	wantCounts(t, f, sessionCounts{live: 1, deduplicated: 2})
	// Clients can neither read nor write the session table.
	res := sessExec(t, f, f.AppliedIndex()+1, ts, "", 0, stmt("DELETE FROM _raftlite_sessions"))
	if res.Results[0].Error == "" {
		t.Fatal("a client deleted sessions")
	}
}

// A remembered response is the whole outcome: rows of every type, statement
// errors, a rolled-back transaction.
func TestSessionRemembersEveryOutcome(t *testing.T) {
	f := newFSM(t)
	ts := base
	noErrors(t, sessExec(t, f, 1, ts, "", 0,
		stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB, n)"),
		stmt("INSERT INTO foo(id) VALUES(100)")).Results)
	cases := []struct {
		name string
		req  api.Request
	}{
		{"returning", api.Request{Statements: []api.Statement{
			stmt("INSERT INTO foo(i, r, s, b, n) VALUES(?, ?, ?, ?, ?) RETURNING *", int64(-5), 2.5, "héllo", []byte{0, 1, 255}, nil),
			stmt("SELECT COUNT(*), 'x', 1.5, NULL FROM foo"),
			stmt("SELECT * FROM foo WHERE id = -1"),
			stmt("UPDATE foo SET i = i + 1"),
			stmt("CREATE TABLE bar (x)"),
		}}},
		{"statement errors", api.Request{Statements: []api.Statement{
			stmt("INSERT INTO foo(id) VALUES(100)"),
			stmt("INSERT INTO nope VALUES(1)"),
			stmt("INSERT INTO foo(i) VALUES(7)"),
		}}},
		{"rolled back transaction", api.Request{Transaction: true, Statements: []api.Statement{
			stmt("INSERT INTO foo(i) VALUES(8)"),
			stmt("INSERT INTO foo(id) VALUES(100)"),
			stmt("INSERT INTO foo(i) VALUES(9)"),
		}}},
		{"empty", api.Request{}},
	}
	for i, c := range cases {
		apply := func() *api.Response {
			req := c.req
			req.ClientID, req.Seq = fmt.Sprintf("client-%d", i), 1
			return response(t, f.Apply(commandLog(t, f.AppliedIndex()+1, &Command{Type: CmdExecute, Timestamp: ts, Request: &req})))
		}
		first := apply()
		if first.Err != nil || first.Deduplicated {
			t.Fatalf("%s: %+v", c.name, first)
		}
		before := count(t, f, "foo")
		again := apply()
		if !again.Deduplicated || again.Index != first.Index {
			t.Fatalf("%s: retry %+v", c.name, again)
		}
		if g, w := again.Results, stripSeconds(first.Results); !reflect.DeepEqual(g, w) {
			t.Fatalf("%s: retry results\n got %#v\nwant %#v", c.name, g, w)
		}
		if n := count(t, f, "foo"); n != before {
			t.Fatalf("%s: retry changed the table: %d rows, was %d", c.name, n, before)
		}
	}
	if n := count(t, f, "foo"); n != 3 {
		t.Fatalf("rows %d, want 3", n)
	}
}

// An entry that ends SQLite's transaction (INSERT OR ROLLBACK) is rerun as
// settled; its session must still remember its outcome, whatever the
// batching.
func TestSessionSettledEntry(t *testing.T) {
	entries := func(t *testing.T) []*raft.Log {
		return []*raft.Log{
			sessLog(t, 1, base, "", 0, stmt("CREATE TABLE r (id INTEGER PRIMARY KEY)"), stmt("INSERT INTO r VALUES(1)")),
			sessLog(t, 2, base, "a", 1, stmt("INSERT INTO r VALUES(2)")),
			sessLog(t, 3, base, "b", 1, stmt("INSERT INTO r VALUES(3)"), stmt("INSERT OR ROLLBACK INTO r VALUES(1)")),
			sessLog(t, 4, base, "b", 1, stmt("INSERT INTO r VALUES(3)"), stmt("INSERT OR ROLLBACK INTO r VALUES(1)")),
			sessLog(t, 5, base, "a", 2, stmt("INSERT INTO r VALUES(5)")),
		}
	}
	run := func(batched bool) ([]*api.Response, [][]api.Value, [][]api.Value) {
		f := newFSM(t)
		var resps []any
		if batched {
			resps = f.ApplyBatch(entries(t))
		} else {
			for _, l := range entries(t) {
				resps = append(resps, f.Apply(l))
			}
		}
		var out []*api.Response
		for _, r := range resps {
			rr := response(t, r)
			rr.Results = stripSeconds(rr.Results)
			out = append(out, rr)
		}
		res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt("SELECT id FROM r ORDER BY id")}})
		if err != nil {
			t.Fatal(err)
		}
		return out, res[0].Rows, sessionRows(t, f)
	}
	r1, rows1, s1 := run(true)
	r2, rows2, s2 := run(false)
	if !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(rows1, rows2) || !reflect.DeepEqual(s1, s2) {
		t.Fatalf("batched and single differ:\n%v %v %v\n%v %v %v", r1, rows1, s1, r2, rows2, s2)
	}
	if want := [][]api.Value{{int64(1)}, {int64(2)}, {int64(5)}}; !reflect.DeepEqual(rows1, want) {
		t.Fatalf("rows %v, want %v", rows1, want)
	}
	if !r1[3].Deduplicated || !reflect.DeepEqual(r1[3].Results, r1[2].Results) || r1[2].Results[1].Error == "" {
		t.Fatalf("settled entry %+v, its retry %+v", r1[2], r1[3])
	}
}

// Expiry is judged by the entries' leader timestamps only, and is the same
// on replicas that batch the same entries differently.
func TestSessionExpiryIsDeterministic(t *testing.T) {
	const ttl = time.Hour
	h := int64(time.Hour)
	rng := rand.New(rand.NewPCG(1, 2))
	ins := stmt("INSERT INTO t(v) VALUES(1)")

	var logs []*raft.Log
	idx := uint64(0)
	add := func(ts int64, id string, seq uint64) {
		idx++
		logs = append(logs, sessLog(t, idx, ts, id, seq, ins))
	}
	idx++
	logs = append(logs, sessLog(t, idx, base, "", 0, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")))
	// 40 sessions at time 0, 40 at 30 minutes.
	for i := range 40 {
		add(base, fmt.Sprintf("early-%02d", i), 1)
	}
	for i := range 40 {
		add(base+h/2, fmt.Sprintf("late-%02d", i), 1)
	}
	// At 61 minutes the early ones are expired, whether swept or not.
	add(base+h+h/60, "early-00", 2) // unknown or expired
	add(base+h+h/60, "late-00", 1)  // still remembered: deduplicated
	add(base+h+h/60, "early-01", 1) // a fresh session under the same id
	// A leader whose clock is behind does not bring them back, nor expire
	// anything early.
	add(base+h/2, "early-02", 2)
	add(base+h/2, "late-01", 2)
	// Quiet traffic without sessions keeps sweeping.
	for range 10 {
		add(base+2*h, "", 0)
	}
	add(base+2*h, "late-02", 1)

	apply := func(f *FSM, cut func() int) []*api.Response {
		var resps []*api.Response
		for i := 0; i < len(logs); {
			n := min(cut(), len(logs)-i)
			for _, r := range f.ApplyBatch(logs[i : i+n]) {
				rr := response(t, r)
				rr.Results = stripSeconds(rr.Results)
				resps = append(resps, rr)
			}
			i += n
		}
		return resps
	}
	one := openFSMWithTTL(t, t.TempDir(), ttl)
	r1 := apply(one, func() int { return 1 })
	many := openFSMWithTTL(t, t.TempDir(), ttl)
	r2 := apply(many, func() int { return 1 + rng.IntN(30) })
	if !reflect.DeepEqual(r1, r2) {
		t.Fatalf("responses differ between batchings:\n%v\n%v", r1, r2)
	}
	state := sessionRows(t, one)
	if !reflect.DeepEqual(state, sessionRows(t, many)) || sessionCountsOf(one) != sessionCountsOf(many) {
		t.Fatalf("session state differs between batchings:\n%v %+v\n%v %+v", state, sessionCountsOf(one), sessionRows(t, many), sessionCountsOf(many))
	}

	at := func(i int) *api.Response { return r1[i] }
	first := 1 + 80 // position of the entry after the 80 session creations
	if !errors.Is(at(first).Err, api.ErrSessionExpired) {
		t.Fatalf("expired session: %+v", at(first))
	}
	if !at(first + 1).Deduplicated {
		t.Fatalf("live session: %+v", at(first+1))
	}
	if at(first+2).Err != nil || at(first+2).Deduplicated {
		t.Fatalf("new session under an expired id: %+v", at(first+2))
	}
	if !errors.Is(at(first+3).Err, api.ErrSessionExpired) {
		t.Fatalf("expired session with a lagging leader clock: %+v", at(first+3))
	}
	if at(first+4).Err != nil || at(first+4).Deduplicated {
		t.Fatalf("late session with a lagging leader clock: %+v", at(first+4))
	}
	if last := r1[len(r1)-1]; last.Err != nil || last.Deduplicated {
		t.Fatalf("new session after expiry: %+v", last)
	}
	// At two hours only the sessions used after one hour are left: late-00
	// (its retry at 61 minutes kept it alive), early-01 (new at 61
	// minutes) and late-02 (new at two hours). The quiet entries swept the
	// rest.
	var ids []string
	for _, row := range state {
		ids = append(ids, row[0].(string))
	}
	if want := []string{"early-01", "late-00", "late-02"}; !reflect.DeepEqual(ids, want) {
		t.Fatalf("sessions left %v, want %v", ids, want)
	}
	wantCounts(t, one, sessionCounts{live: 3, deduplicated: 1, expired: 79})
	if n := count(t, one, "t"); n != 80+1+1+10+1 {
		t.Fatalf("rows %d", n)
	}

	// The local clock plays no part: entries stamped in 2001 expire
	// nothing by today's time.
	f := openFSMWithTTL(t, t.TempDir(), ttl)
	sessExec(t, f, 1, base, "", 0, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v)"))
	sessExec(t, f, 2, base, "old", 1, ins)
	if r := sessExec(t, f, 3, base+h-1, "old", 1, ins); !r.Deduplicated {
		t.Fatalf("session expired by the local clock: %+v", r)
	}
	// Entries without a timestamp expire nothing.
	if r := sessExec(t, f, 4, 0, "old", 1, ins); !r.Deduplicated {
		t.Fatalf("session expired by an unstamped entry: %+v", r)
	}
	// Zero TTL: never.
	g := openFSMWithTTL(t, t.TempDir(), 0)
	sessExec(t, g, 1, base, "", 0, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v)"))
	sessExec(t, g, 2, base, "old", 1, ins)
	if r := sessExec(t, g, 3, base+1000*h, "old", 1, ins); !r.Deduplicated {
		t.Fatalf("session expired without a TTL: %+v", r)
	}
	if g.SessionStats()["ttl"] != "0s" {
		t.Fatalf("ttl stats %v", g.SessionStats())
	}
	if _, err := Open(Config{Dir: t.TempDir(), SessionTTL: -1}); err == nil {
		t.Fatal("Open accepted a negative session TTL")
	}
}

func TestSessionsSurviveSnapshotAndReopen(t *testing.T) {
	dir := t.TempDir()
	src := openFSM(t, dir)
	sessExec(t, src, 1, base, "", 0, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v)"))
	first := sessExec(t, src, 2, base, "c", 1, stmt("INSERT INTO t(v) VALUES('x') RETURNING id, v"))
	sessExec(t, src, 3, base, "d", 1, stmt("INSERT INTO t(v) VALUES('y')"))
	sessExec(t, src, 4, base, "d", 1, stmt("INSERT INTO t(v) VALUES('y')"))
	sink := snapshotOf(t, src)
	wantState := sessionRows(t, src)
	wantC := sessionCountsOf(src)

	check := func(name string, f *FSM, next uint64) {
		t.Helper()
		if got := sessionRows(t, f); !reflect.DeepEqual(got, wantState) {
			t.Fatalf("%s: sessions %v, want %v", name, got, wantState)
		}
		if got := sessionCountsOf(f); got != wantC {
			t.Fatalf("%s: counters %+v, want %+v", name, got, wantC)
		}
		r := sessExec(t, f, next, base, "c", 1, stmt("INSERT INTO t(v) VALUES('x') RETURNING id, v"))
		if !r.Deduplicated || !reflect.DeepEqual(r.Results, stripSeconds(first.Results)) || r.Index != 2 {
			t.Fatalf("%s: retry %+v", name, r)
		}
		if r := sessExec(t, f, next+1, base, "d", 1, stmt("INSERT INTO t(v) VALUES('y')")); !r.Deduplicated {
			t.Fatalf("%s: retry %+v", name, r)
		}
		if r := sessExec(t, f, next+2, base, "c", 2, stmt("INSERT INTO t(v) VALUES('z')")); r.Err != nil || r.Deduplicated {
			t.Fatalf("%s: next write %+v", name, r)
		}
		if n := count(t, f, "t"); n != 3 {
			t.Fatalf("%s: rows %d, want 3", name, n)
		}
	}

	dst := newFSM(t)
	sessExec(t, dst, 1, base, "c", 1, stmt("CREATE TABLE other (x)")) // a different history, replaced
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	check("restored", dst, 5)

	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	check("reopened", openFSM(t, dir), 5)
}

func TestResponseEncoding(t *testing.T) {
	cases := []*api.Response{
		{Index: 0},
		{Index: 1<<63 + 5, Results: []api.Result{}},
		{Index: 7, Results: []api.Result{
			{},
			{LastInsertID: -3, RowsAffected: 1 << 40},
			{Error: "UNIQUE constraint failed: foo.id"},
			{Columns: []string{}, Types: []string{}},
			{Columns: []string{"a", "b", "c", "d", "e", "f", "g"}, Types: []string{"integer", "real", "text", "blob", "", "x", "y"},
				Rows: [][]api.Value{
					{int64(1), 1.5, "s", []byte{0, 9}, nil, true, false},
					{int64(-1 << 62), -0.0, "", []byte{}, nil, int64(0), 3.25},
				}},
		}},
	}
	for i, r := range cases {
		got, err := decodeResponse(encodeResponse(r))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		want := *r
		if want.Results == nil {
			want.Results = []api.Result{}
		}
		if !reflect.DeepEqual(got, &want) {
			t.Fatalf("case %d:\n got %#v\nwant %#v", i, got, &want)
		}
	}
	// Timings and Err are not remembered.
	got, err := decodeResponse(encodeResponse(&api.Response{Index: 1, Err: errors.New("x"), Deduplicated: true,
		Results: []api.Result{{RowsAffected: 1, Seconds: 0.5}}}))
	if err != nil || got.Err != nil || got.Deduplicated || got.Results[0].Seconds != 0 {
		t.Fatalf("%+v %v", got, err)
	}
	// Garbage never panics.
	enc := encodeResponse(cases[2])
	for n := range len(enc) {
		if _, err := decodeResponse(enc[:n]); err == nil {
			t.Fatalf("truncated at %d decoded", n)
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2000 {
		b := append([]byte(nil), enc...)
		for range 1 + rng.IntN(4) {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
		_, _ = decodeResponse(b)
	}
	if _, err := decodeResponse(append(enc, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

// An unreadable remembered response fails the retry (alike on every
// replica) instead of halting the state machine.
func TestSessionUnreadableResponse(t *testing.T) {
	f := newFSM(t)
	sessExec(t, f, 1, base, "", 0, stmt("CREATE TABLE t (x)"))
	sessExec(t, f, 2, base, "c", 1, stmt("INSERT INTO t VALUES(1)"))
	if err := f.w.internal(context.Background(), "UPDATE _raftlite_sessions SET response = x'ff'"); err != nil {
		t.Fatal(err)
	}
	r := sessExec(t, f, 3, base, "c", 1, stmt("INSERT INTO t VALUES(1)"))
	if r.Err == nil || f.Err() != nil || count(t, f, "t") != 1 {
		t.Fatalf("%+v, fsm err %v", r, f.Err())
	}
}

// TestMillionSessions checks that the session table stays cheap at a
// million sessions: it lives in SQLite (nothing per session in memory),
// lookups and new sessions cost an index probe, and expiry drains it a
// bounded number of rows per entry.
func TestMillionSessions(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("builds a million-session table: a few seconds normally, minutes under -race or in -short mode")
	}
	const n = 1_000_000
	h := int64(time.Hour)
	f := openFSMWithTTL(t, t.TempDir(), time.Hour)
	sessExec(t, f, 1, base, "", 0, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v)"))
	ctx := context.Background()

	start := time.Now()
	// Bulk-load n sessions as if each had inserted one row, with remembered
	// responses like the apply path's; last_seen spreads over half an hour.
	resp := encodeResponse(&api.Response{Index: 2, Results: []api.Result{{LastInsertID: 1, RowsAffected: 1}}})
	err := f.w.internal(ctx, `INSERT INTO _raftlite_sessions (client_id, seq, response, last_seen)
		WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1)
		SELECT printf('%032x', x * 2654435761), 1, ?2, ?3 + x * (?4 / ?1) FROM c`, n, resp, base, h/2)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.w.internal(ctx, `UPDATE _raftlite_meta SET value = ? WHERE key = 'sessions_live'`, n); err != nil {
		t.Fatal(err)
	}
	f.sessions.live.Store(n)
	if f.oldestSeen, err = f.w.oldestSeen(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d sessions in %v", n, time.Since(start))

	timeEntries := func(what string, k int, entry func(i int) *raft.Log) time.Duration {
		t.Helper()
		var logs []*raft.Log
		for i := range k {
			logs = append(logs, entry(i))
		}
		s := time.Now()
		for _, l := range logs {
			if r := response(t, f.Apply(l)); r.Err != nil && !errors.Is(r.Err, api.ErrSessionExpired) {
				t.Fatalf("%s: %v", what, r.Err)
			}
		}
		per := time.Since(s) / time.Duration(k)
		t.Logf("%s: %v per entry", what, per)
		return per
	}
	idx := f.AppliedIndex()
	next := func() uint64 { idx++; return idx }
	ins := stmt("INSERT INTO t(v) VALUES(1)")
	now := base + h/2
	timeEntries("new sessions", 2000, func(i int) *raft.Log {
		return sessLog(t, next(), now, fmt.Sprintf("new-%d", i), 1, ins)
	})
	timeEntries("retries of bulk sessions", 2000, func(i int) *raft.Log {
		return sessLog(t, next(), now, fmt.Sprintf("%032x", (i*397+1)*2654435761), 1, ins)
	})
	if got := sessionCountsOf(f); got.live != n+2000 || got.deduplicated != 2000 {
		t.Fatalf("counters %+v", got)
	}
	if c := count(t, f, "t"); c != 2000 {
		t.Fatalf("rows %d", c)
	}
	// Past the TTL of the oldest bulk sessions: every entry sweeps at most
	// sessionSweepLimit of them.
	later := base + h + h/4
	perSweep := timeEntries("sweeping entries", 2000, func(i int) *raft.Log {
		return sessLog(t, next(), later, "", 0, ins)
	})
	if got := sessionCountsOf(f); got.expired != 2000*sessionSweepLimit || got.live != n+2000-2000*sessionSweepLimit {
		t.Fatalf("counters after sweeping %+v", got)
	}
	if perSweep > 20*time.Millisecond {
		t.Fatalf("a sweeping entry takes %v", perSweep)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("took %v", d)
	}
}

// BenchmarkSessionOverhead measures what a session costs an applied write:
// batches of 64 single-INSERT entries, with and without a ClientID.
func BenchmarkSessionOverhead(b *testing.B) {
	for _, mode := range []string{"no-session", "session", "session-per-client"} {
		b.Run(mode, func(b *testing.B) {
			f := openFSMWithTTL(b, b.TempDir(), time.Hour)
			sessExec(b, f, 1, base, "", 0, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v)"))
			idx := uint64(1)
			const batch = 64
			var seq uint64
			b.ResetTimer()
			for i := 0; i < b.N; i += batch {
				b.StopTimer()
				logs := make([]*raft.Log, batch)
				for j := range logs {
					idx++
					seq++
					id := ""
					s := seq
					switch mode {
					case "session":
						id = "c"
					case "session-per-client":
						id, s = fmt.Sprintf("c%d", idx), 1
					}
					if id == "" {
						s = 0
					}
					logs[j] = sessLog(b, idx, base+int64(idx), id, s, stmt("INSERT INTO t(v) VALUES(?)", int64(idx)))
				}
				b.StartTimer()
				for _, r := range f.ApplyBatch(logs) {
					if rr := response(b, r); rr.Err != nil {
						b.Fatal(rr.Err)
					}
				}
			}
		})
	}
}

// The same (client_id, seq) with a different request is a client bug, not
// a retry: it is refused with api.ErrSeqReused, runs nothing and changes no
// session state, and the real retry is still answered from memory.
func TestSessionSeqReusedByDifferentRequest(t *testing.T) {
	f := newFSM(t)
	noErrors(t, sessExec(t, f, 1, base, "", 0, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")).Results)
	original := api.Request{Statements: []api.Statement{stmt("INSERT INTO t(v) VALUES(?)", "a")}}
	apply := func(req api.Request) *api.Response {
		t.Helper()
		req.ClientID, req.Seq = "c", 1
		return response(t, f.Apply(commandLog(t, f.AppliedIndex()+1, &Command{Type: CmdExecute, Timestamp: base, Request: &req})))
	}
	first := apply(original)
	if first.Err != nil || first.Deduplicated {
		t.Fatalf("first: %+v", first)
	}
	rows, counts := sessionRows(t, f), sessionCountsOf(f)

	for _, c := range []struct {
		name string
		req  api.Request
	}{
		{"other SQL", api.Request{Statements: []api.Statement{stmt("INSERT INTO t(v) VALUES(?) ", "a")}}},
		{"other value", api.Request{Statements: []api.Statement{stmt("INSERT INTO t(v) VALUES(?)", "b")}}},
		{"blob instead of text", api.Request{Statements: []api.Statement{stmt("INSERT INTO t(v) VALUES(?)", []byte("a"))}}},
		{"named parameter", api.Request{Statements: []api.Statement{stmt("INSERT INTO t(v) VALUES(:x)", api.Param{Name: "x", Value: "a"})}}},
		{"transaction", api.Request{Transaction: true, Statements: original.Statements}},
		{"extra statement", api.Request{Statements: append([]api.Statement{stmt("DELETE FROM t")}, original.Statements...)}},
		{"split statement", api.Request{Statements: []api.Statement{stmt("INSERT INTO t(v) "), stmt("VALUES(?)", "a")}}},
		{"no statements", api.Request{}},
	} {
		r := apply(c.req)
		if !errors.Is(r.Err, api.ErrSeqReused) || r.Deduplicated || r.Results != nil {
			t.Fatalf("%s: %+v (deduplicated %v), want api.ErrSeqReused", c.name, r.Err, r.Deduplicated)
		}
		if got := sessionRows(t, f); !reflect.DeepEqual(got, rows) || sessionCountsOf(f) != counts {
			t.Fatalf("%s: session state changed: %v %+v, was %v %+v", c.name, got, sessionCountsOf(f), rows, counts)
		}
	}
	if n := count(t, f, "t"); n != 1 {
		t.Fatalf("rows %d, want 1", n)
	}
	again := apply(original)
	if again.Err != nil || !again.Deduplicated || !reflect.DeepEqual(again.Results, stripSeconds(first.Results)) {
		t.Fatalf("retry after the conflicts: %+v", again)
	}
}

// Sequence numbers must grow but may skip: a client may burn numbers on
// requests refused before they reach the log. A skipped number sent later
// is superseded and never runs.
func TestSessionSequenceGaps(t *testing.T) {
	f := newFSM(t)
	noErrors(t, sessExec(t, f, 1, base, "", 0, stmt("CREATE TABLE t (v)")).Results)
	write := func(seq uint64, v string) *api.Response {
		t.Helper()
		return sessExec(t, f, f.AppliedIndex()+1, base, "g", seq, stmt("INSERT INTO t VALUES(?)", v))
	}
	if r := write(1, "s1"); r.Err != nil || r.Deduplicated {
		t.Fatalf("seq 1: %+v", r)
	}
	five := write(5, "s5")
	if five.Err != nil || five.Deduplicated {
		t.Fatalf("seq 5 after 1: %+v", five)
	}
	if r := write(3, "s3"); !errors.Is(r.Err, api.ErrSeqSuperseded) {
		t.Fatalf("skipped seq 3 sent late: %+v", r)
	}
	if r := write(5, "s5"); !r.Deduplicated || r.Index != five.Index {
		t.Fatalf("retry of seq 5: %+v", r)
	}
	if r := write(6, "s6"); r.Err != nil || r.Deduplicated {
		t.Fatalf("seq 6: %+v", r)
	}
	if got := sessionRows(t, f); len(got) != 1 || got[0][1] != int64(6) {
		t.Fatalf("session %v", got)
	}
	if n := count(t, f, "t"); n != 3 {
		t.Fatalf("rows %d, want 3 (seq 1, 5, 6)", n)
	}
}

// A retry that arrives after its session expired is refused, never run
// again: the state machine cannot tell whether it was applied. Only a
// session's first write (seq 1) cannot be told from a new session's.
func TestSessionRetryAfterExpiry(t *testing.T) {
	const ttl = time.Hour
	f := openFSMWithTTL(t, t.TempDir(), ttl)
	noErrors(t, sessExec(t, f, 1, base, "", 0, stmt("CREATE TABLE t (v)")).Results)
	ins := stmt("INSERT INTO t VALUES('x')")
	sessExec(t, f, 2, base, "e", 1, ins)
	sessExec(t, f, 3, base+int64(time.Minute), "e", 2, ins)
	late := base + int64(time.Minute) + int64(ttl) + 1
	for _, seq := range []uint64{2, 3} {
		r := sessExec(t, f, f.AppliedIndex()+1, late, "e", seq, ins)
		if !errors.Is(r.Err, api.ErrSessionExpired) || r.Results != nil {
			t.Fatalf("seq %d after expiry: %+v", seq, r)
		}
	}
	if n := count(t, f, "t"); n != 2 {
		t.Fatalf("rows %d, want 2: a retry after expiry ran", n)
	}
	if len(sessionRows(t, f)) != 0 {
		t.Fatalf("a refused request created a session: %v", sessionRows(t, f))
	}
	wantCounts(t, f, sessionCounts{expired: 1})
	// seq 1 starts a new session under the same id.
	if r := sessExec(t, f, f.AppliedIndex()+1, late, "e", 1, ins); r.Err != nil || r.Deduplicated {
		t.Fatalf("seq 1 after expiry: %+v", r)
	}
	wantCounts(t, f, sessionCounts{live: 1, expired: 1})
}

// testdata/sessions-v1.sqlite was written by the version before request
// digests (commit e4dd79a): entry 1 creates t, entries 2 and 3 insert 'one'
// and 'two' as seq 1 and 2 of session "v1-client". It must still open; its
// remembered write has no digest, so any retry of it is answered from
// memory as before; the session's next write is checked. Its checksum
// matches a database that applied the same entries from scratch once the
// session has written again, so the migration leaves no trace between
// replicas.
func TestSessionsV1DatabaseMigrates(t *testing.T) {
	v1, err := os.ReadFile(filepath.Join("testdata", "sessions-v1.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, DBFile), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	migrated := openFSM(t, dir)
	if migrated.AppliedIndex() != 3 || count(t, migrated, "t") != 2 {
		t.Fatalf("v1 database: applied %d", migrated.AppliedIndex())
	}
	fresh := newFSM(t)
	sessExec(t, fresh, 1, base, "", 0, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"))
	sessExec(t, fresh, 2, base, "v1-client", 1, stmt("INSERT INTO t(v) VALUES('one')"))
	sessExec(t, fresh, 3, base+int64(time.Second), "v1-client", 2, stmt("INSERT INTO t(v) VALUES(?)", "two"))

	ts := base + int64(time.Minute)
	for _, f := range []*FSM{migrated, fresh} {
		if r := sessExec(t, f, 4, ts, "v1-client", 3, stmt("INSERT INTO t(v) VALUES('three')")); r.Err != nil || r.Deduplicated {
			t.Fatalf("seq 3: %+v", r)
		}
		// The v1 database has no change history of entries 1 to 3
		// (see watchSchema); once the history up to the upgrade is
		// trimmed, nothing tells the two apart.
		f.Apply(commandLog(t, 5, &Command{Type: CmdCompactWatch, Timestamp: ts, CompactIndex: 4}))
	}
	_, want, err := fresh.Checksum(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := migrated.Checksum(context.Background()); err != nil || got != want {
		t.Fatalf("migrated checksum %s (%v), fresh %s", got, err, want)
	}
	if r := sessExec(t, migrated, 6, ts, "v1-client", 3, stmt("INSERT INTO t(v) VALUES('other')")); !errors.Is(r.Err, api.ErrSeqReused) {
		t.Fatalf("changed retry of a write applied after the migration: %+v", r)
	}

	// A session whose last write predates the migration.
	old := t.TempDir()
	if err := os.WriteFile(filepath.Join(old, DBFile), v1, 0o644); err != nil {
		t.Fatal(err)
	}
	f := openFSM(t, old)
	for i, sql := range []string{"INSERT INTO t(v) VALUES(?)", "INSERT INTO t(v) VALUES('other')"} {
		r := sessExec(t, f, uint64(4+i), ts, "v1-client", 2, stmt(sql, "two"))
		if r.Err != nil || !r.Deduplicated || r.Index != 3 {
			t.Fatalf("retry %d of the v1 write: %+v", i, r)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Opening again finds the migrated table and changes nothing.
	if got := count(t, openFSM(t, old), "t"); got != 2 {
		t.Fatalf("reopened: rows %d", got)
	}
}
