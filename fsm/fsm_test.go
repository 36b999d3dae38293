package fsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func openFSM(t testing.TB, dir string) *FSM {
	t.Helper()
	f, err := Open(Config{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func newFSM(t testing.TB) *FSM {
	t.Helper()
	return openFSM(t, t.TempDir())
}

func stmt(sql string, params ...any) api.Statement {
	s := api.Statement{SQL: sql}
	for _, p := range params {
		if np, ok := p.(api.Param); ok {
			s.Params = append(s.Params, np)
		} else {
			s.Params = append(s.Params, api.Param{Value: p})
		}
	}
	return s
}

func commandLog(t testing.TB, index uint64, c *Command) *raft.Log {
	t.Helper()
	b, err := EncodeCommand(c)
	if err != nil {
		t.Fatalf("EncodeCommand: %v", err)
	}
	return &raft.Log{Index: index, Term: 1, Type: raft.LogCommand, Data: b}
}

func execLog(t testing.TB, index uint64, req *api.Request) *raft.Log {
	t.Helper()
	return commandLog(t, index, &Command{Type: CmdExecute, Timestamp: time.Now().UnixNano(), Request: req})
}

// execAt applies one execute entry at index and returns its results.
func execAt(t testing.TB, f *FSM, index uint64, req *api.Request) []api.Result {
	t.Helper()
	return response(t, f.Apply(execLog(t, index, req))).Results
}

func response(t testing.TB, v any) *api.Response {
	t.Helper()
	r, ok := v.(*api.Response)
	if !ok {
		t.Fatalf("response is %T (%v), want *api.Response", v, v)
	}
	return r
}

// seq hands out consecutive log indexes.
type seq struct{ next uint64 }

func (s *seq) idx() uint64 { s.next++; return s.next }

func (s *seq) exec(t testing.TB, f *FSM, stmts ...api.Statement) []api.Result {
	t.Helper()
	return execAt(t, f, s.idx(), &api.Request{Statements: stmts})
}

func count(t testing.TB, f *FSM, table string) int64 {
	t.Helper()
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{{SQL: "SELECT COUNT(*) FROM " + table}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Error != "" {
		t.Fatalf("count %s: %s", table, res[0].Error)
	}
	return res[0].Rows[0][0].(int64)
}

// internalQuery runs sql on a read connection as raftlite's own read:
// clients cannot read raftlite's tables (hide.go).
func internalQuery(t testing.TB, f *FSM, sql string) [][]api.Value {
	t.Helper()
	ctx := context.Background()
	f.mu.RLock()
	defer f.mu.RUnlock()
	c, err := f.acquireReader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.releaseReader(c)
	c.guard.mode = modeInternal
	res, err := scanRows(c.conn.QueryContext(ctx, sql))
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return res.Rows
}

// wantRefused applies each statement of refusals as an entry of its own and
// checks that it fails with an error mentioning its value.
func wantRefused(t testing.TB, f *FSM, s *seq, refusals map[string]string) {
	t.Helper()
	for q, want := range refusals {
		got := s.exec(t, f, stmt(q))
		if !strings.Contains(got[0].Error, want) {
			t.Errorf("%q: error %q, want it to mention %q", q, got[0].Error, want)
		}
	}
}

func noErrors(t testing.TB, rs []api.Result) {
	t.Helper()
	for i, r := range rs {
		if r.Error != "" {
			t.Fatalf("result %d: %s", i, r.Error)
		}
	}
}

// sameResults compares results ignoring timings.
func sameResults(t testing.TB, got, want []api.Result) {
	t.Helper()
	strip := func(rs []api.Result) []api.Result {
		out := make([]api.Result, len(rs))
		for i, r := range rs {
			r.Seconds = 0
			out[i] = r
		}
		return out
	}
	if g, w := strip(got), strip(want); !reflect.DeepEqual(g, w) {
		t.Fatalf("results:\n got %#v\nwant %#v", g, w)
	}
}

func TestExecuteAndQueryShapes(t *testing.T) {
	f := newFSM(t)
	var s seq
	got := s.exec(t, f,
		stmt("CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, age INTEGER, score REAL, ts DATETIME)"),
		stmt(`INSERT INTO foo(name, age, score) VALUES("fiona", 20, 1.5)`),
		stmt(`INSERT INTO foo(name, age, ts) VALUES("sinead", 25, '2024-01-02 03:04:05')`),
		stmt("UPDATE foo SET age = age + 1"),
		stmt("UPDATE foo SET age = 0 WHERE id = 99"),
		stmt("CREATE TABLE bar (x)"),
		stmt("SELECT id, name, age, score, ts, age * 2, 'lit', NULL FROM foo ORDER BY id"),
		stmt("SELECT * FROM foo WHERE id = 99"),
		stmt("INSERT INTO foo(name) VALUES('una') RETURNING id, name"),
		stmt("DELETE FROM foo WHERE id = 3"),
		stmt("PRAGMA foreign_keys"),
	)
	sameResults(t, got, []api.Result{
		{},
		{LastInsertID: 1, RowsAffected: 1},
		{LastInsertID: 2, RowsAffected: 1},
		{LastInsertID: 2, RowsAffected: 2}, // as in rqlite: the entry's last insert

		{},
		{}, // DDL after DML: no stale last_insert_id or rows_affected
		{
			Columns: []string{"id", "name", "age", "score", "ts", "age * 2", "'lit'", "NULL"},
			Types:   []string{"integer", "text", "integer", "real", "datetime", "integer", "text", ""},
			Rows: [][]api.Value{
				{int64(1), "fiona", int64(21), 1.5, nil, int64(42), "lit", nil},
				{int64(2), "sinead", int64(26), nil, "2024-01-02T03:04:05Z", int64(52), "lit", nil},
			},
		},
		{Columns: []string{"id", "name", "age", "score", "ts"}, Types: []string{"integer", "text", "integer", "real", "datetime"}},
		{Columns: []string{"id", "name"}, Types: []string{"integer", "text"}, Rows: [][]api.Value{{int64(3), "una"}}},
		{LastInsertID: 3, RowsAffected: 1},
		{Columns: []string{"foreign_keys"}, Types: []string{"integer"}, Rows: [][]api.Value{{int64(0)}}},
	})
	for i, r := range got {
		if r.Seconds <= 0 {
			t.Errorf("result %d: no timing", i)
		}
	}
	if !got[7].IsQuery() || got[9].IsQuery() {
		t.Error("IsQuery does not follow the shape")
	}
}

func TestLastInsertIDDoesNotLeakAcrossEntries(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, n)"))
	s.exec(t, f, stmt("INSERT INTO foo(n) VALUES(1)"))
	// An UPDATE in a later entry must not report the earlier insert's
	// rowid: a replica that restarted in between would not.
	sameResults(t, s.exec(t, f, stmt("UPDATE foo SET n = 2")), []api.Result{{RowsAffected: 1}})
}

func TestNullAndBlob(t *testing.T) {
	f := newFSM(t)
	var s seq
	noErrors(t, s.exec(t, f,
		stmt("CREATE TABLE b (id INTEGER PRIMARY KEY, data BLOB, note TEXT)"),
		stmt("INSERT INTO b(data, note) VALUES(?, ?)", []byte{0, 1, 2, 255}, nil),
		stmt("INSERT INTO b(data, note) VALUES(NULL, x'CAFE')"),
	))
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{
		stmt("SELECT data, note, typeof(note) FROM b ORDER BY id"),
		stmt("SELECT x'00ff', NULL"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	sameResults(t, res, []api.Result{
		{
			Columns: []string{"data", "note", "typeof(note)"},
			Types:   []string{"blob", "text", "text"},
			Rows: [][]api.Value{
				{[]byte{0, 1, 2, 255}, nil, "null"},
				// A BLOB in a TEXT column, and one in a column without a
				// declared type, are strings, as rqlite answers them
				// (see types_rqlite.go).
				{nil, "\xca\xfe", "blob"},
			},
		},
		{Columns: []string{"x'00ff'", "NULL"}, Types: []string{"text", ""}, Rows: [][]api.Value{{"\x00\xff", nil}}},
	})
}

func TestParameters(t *testing.T) {
	f := newFSM(t)
	var s seq
	noErrors(t, s.exec(t, f,
		stmt("CREATE TABLE p (a, b, c)"),
		stmt("INSERT INTO p VALUES(?, ?, ?)", int64(1), 2.5, "three"),
		stmt("INSERT INTO p VALUES(?3, ?1, ?2)", int64(10), true, false),
		stmt("INSERT INTO p VALUES(:a, @b, $c)", api.Param{Name: "c", Value: "C"}, api.Param{Name: "a", Value: int64(7)}, api.Param{Name: "b", Value: nil}),
	))
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{
		stmt("SELECT a, b, c FROM p ORDER BY rowid"),
		stmt("SELECT a FROM p WHERE c = :c", api.Param{Name: "c", Value: "C"}),
	}})
	if err != nil {
		t.Fatal(err)
	}
	sameResults(t, res, []api.Result{
		{Columns: []string{"a", "b", "c"}, Types: []string{"integer", "real", "text"}, Rows: [][]api.Value{
			{int64(1), 2.5, "three"},
			{int64(0), int64(10), int64(1)},
			{int64(7), nil, "C"},
		}},
		{Columns: []string{"a"}, Types: []string{"integer"}, Rows: [][]api.Value{{int64(7)}}},
	})

	got := s.exec(t, f, stmt("INSERT INTO p VALUES(?, ?, ?)", int64(1)))
	if got[0].Error == "" {
		t.Fatal("missing parameter accepted")
	}
}

func TestErrorAmidGoodStatements(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"))
	got := s.exec(t, f,
		stmt("INSERT INTO foo(name) VALUES('a')"),
		stmt("INSERT INTO bar(name) VALUES('b')"),
		stmt("INSERT INTO foo(id, name) VALUES(1, 'dup')"),
		stmt("SELEC 1"),
		stmt("INSERT INTO foo(name) VALUES('c')"),
	)
	sameResults(t, got, []api.Result{
		{LastInsertID: 1, RowsAffected: 1},
		{Error: "no such table: bar"},
		{Error: "UNIQUE constraint failed: foo.id"},
		{Error: `near "SELEC": syntax error`},
		{LastInsertID: 2, RowsAffected: 1},
	})
	if n := count(t, f, "foo"); n != 2 {
		t.Fatalf("rows = %d, want 2", n)
	}
}

func TestFailedStatementUndoesItsPartialChanges(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE u (id INTEGER PRIMARY KEY)"), stmt("INSERT INTO u VALUES(3)"))
	// OR FAIL keeps the rows inserted before the conflict unless the
	// statement's savepoint undoes them.
	got := s.exec(t, f,
		stmt("INSERT OR FAIL INTO u WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 5) SELECT x FROM c"),
		stmt("INSERT INTO u VALUES(10)"),
	)
	if got[0].Error == "" || got[1].Error != "" {
		t.Fatalf("results %#v", got)
	}
	if n := count(t, f, "u"); n != 2 {
		t.Fatalf("rows = %d, want 2", n)
	}
}

func TestTransactionRollback(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"), stmt("INSERT INTO foo(id, name) VALUES(1, 'x')"))
	got := execAt(t, f, s.idx(), &api.Request{Transaction: true, Statements: []api.Statement{
		stmt("INSERT INTO foo(name) VALUES('a')"),
		stmt("UPDATE foo SET name = 'changed'"),
		stmt("INSERT INTO foo(id, name) VALUES(1, 'dup')"),
		stmt("INSERT INTO foo(name) VALUES('never')"),
	}})
	sameResults(t, got, []api.Result{
		{LastInsertID: 2, RowsAffected: 1},
		{LastInsertID: 2, RowsAffected: 2},
		{Error: "UNIQUE constraint failed: foo.id"},
	})
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt("SELECT id, name FROM foo")}})
	if err != nil {
		t.Fatal(err)
	}
	if want := [][]api.Value{{int64(1), "x"}}; !reflect.DeepEqual(res[0].Rows, want) {
		t.Fatalf("rows %v, want %v", res[0].Rows, want)
	}

	// A successful transaction applies everything.
	noErrors(t, execAt(t, f, s.idx(), &api.Request{Transaction: true, Statements: []api.Statement{
		stmt("INSERT INTO foo(name) VALUES('a')"), stmt("INSERT INTO foo(name) VALUES('b')"),
	}}))
	if n := count(t, f, "foo"); n != 3 {
		t.Fatalf("rows = %d, want 3", n)
	}
}

// A statement whose conflict resolution is ROLLBACK ends SQLite's whole
// transaction, which holds the other entries of the batch too. The result
// must not depend on how entries were batched.
func TestConflictRollbackIsBatchIndependent(t *testing.T) {
	setup := []api.Statement{
		stmt("CREATE TABLE r (id INTEGER PRIMARY KEY, v)"),
		stmt("INSERT INTO r VALUES(1, 'one')"),
	}
	entries := []*api.Request{
		{Statements: []api.Statement{stmt("INSERT INTO r VALUES(2, 'two')")}},
		{Statements: []api.Statement{stmt("INSERT INTO r VALUES(3, 'three')"), stmt("INSERT OR ROLLBACK INTO r VALUES(1, 'dup')"), stmt("INSERT INTO r VALUES(4, 'four')")}},
		{Statements: []api.Statement{stmt("INSERT INTO r VALUES(5, 'five')")}},
	}
	run := func(batched bool) ([][]api.Result, [][]api.Value) {
		f := newFSM(t)
		execAt(t, f, 1, &api.Request{Statements: setup})
		var logs []*raft.Log
		for i, req := range entries {
			logs = append(logs, execLog(t, uint64(i+2), req))
		}
		var resps []any
		if batched {
			resps = f.ApplyBatch(logs)
		} else {
			for _, l := range logs {
				resps = append(resps, f.Apply(l))
			}
		}
		var results [][]api.Result
		for _, r := range resps {
			rs := response(t, r).Results
			for i := range rs {
				rs[i].Seconds = 0
			}
			results = append(results, rs)
		}
		if f.AppliedIndex() != 4 {
			t.Fatalf("applied index %d, want 4", f.AppliedIndex())
		}
		res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt("SELECT id FROM r ORDER BY id")}})
		if err != nil {
			t.Fatal(err)
		}
		return results, res[0].Rows
	}
	r1, rows1 := run(true)
	r2, rows2 := run(false)
	if !reflect.DeepEqual(r1, r2) || !reflect.DeepEqual(rows1, rows2) {
		t.Fatalf("batched %v %v\nsingle %v %v", r1, rows1, r2, rows2)
	}
	if want := [][]api.Value{{int64(1)}, {int64(2)}, {int64(5)}}; !reflect.DeepEqual(rows1, want) {
		t.Fatalf("rows %v, want %v", rows1, want)
	}
	if len(r1[1]) != 2 || r1[1][1].Error != "UNIQUE constraint failed: r.id" {
		t.Fatalf("entry results %#v", r1[1])
	}
}

func TestReadOnlyRequestRejectsWrites(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"), stmt("INSERT INTO foo(name) VALUES('a')"))
	schemaQuery := stmt("SELECT COUNT(*) FROM sqlite_schema")
	before, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{schemaQuery}})
	if err != nil {
		t.Fatal(err)
	}
	got := execAt(t, f, s.idx(), &api.Request{ReadOnly: true, Statements: []api.Statement{
		stmt("SELECT name FROM foo"),
		stmt("INSERT INTO foo(name) VALUES('b')"),
		stmt("UPDATE foo SET name = 'z'"),
		stmt("SELECT 1; DELETE FROM foo"),
		stmt("CREATE TABLE t2 (x)"),
		stmt("PRAGMA user_version = 5"),
		stmt("INSERT INTO foo(name) VALUES('c') RETURNING id"),
		stmt("VACUUM"),
	}})
	if got[0].Error != "" || !reflect.DeepEqual(got[0].Rows, [][]api.Value{{"a"}}) {
		t.Fatalf("read failed: %#v", got[0])
	}
	for i, r := range got[1:] {
		if r.Error != errReadOnly {
			t.Errorf("statement %d: error %q, want %q", i+1, r.Error, errReadOnly)
		}
	}
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{
		stmt("SELECT name FROM foo"), stmt("PRAGMA user_version"), schemaQuery,
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res[0].Rows, [][]api.Value{{"a"}}) || res[1].Rows[0][0] != int64(0) || !reflect.DeepEqual(res[2].Rows, before[0].Rows) {
		t.Fatalf("database changed: %#v", res)
	}
}

func TestQueryRejectsWrites(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"))
	ctx := context.Background()
	for _, q := range []string{
		"INSERT INTO foo(name) VALUES('x')",
		"PRAGMA query_only = OFF",
		"CREATE TEMP TABLE t (x)",
		"ATTACH ':memory:' AS m",
		"BEGIN",
		"VACUUM",
		"SELECT 1; INSERT INTO foo(name) VALUES('y')",
	} {
		res, err := f.Query(ctx, &api.Request{Statements: []api.Statement{stmt(q)}})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Error != errReadOnly {
			t.Errorf("%q: error %q, want %q", q, res[0].Error, errReadOnly)
		}
	}
	if n := count(t, f, "foo"); n != 0 {
		t.Fatalf("rows = %d, want 0", n)
	}
	// The read connections still work and are still read-only.
	res, err := f.Query(ctx, &api.Request{Statements: []api.Statement{stmt("PRAGMA query_only")}})
	if err != nil || res[0].Rows[0][0] != int64(1) {
		t.Fatalf("query_only: %v %#v", err, res)
	}
}

func TestQueryErrors(t *testing.T) {
	f := newFSM(t)
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{
		stmt("SELECT * FROM nosuch"), stmt("SELECT 1"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Error != "no such table: nosuch" || res[1].Error != "" {
		t.Fatalf("results %#v", res)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := f.Query(ctx, &api.Request{Statements: []api.Statement{stmt("SELECT 1")}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled query: %v", err)
	}
}

func TestStatementsRefusedOnApplyPath(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (x)"))
	wantRefused(t, f, &s, map[string]string{
		"BEGIN":       "transaction control",
		"COMMIT":      "transaction control",
		"SAVEPOINT a": "transaction control",
		"INSERT INTO _raftlite_meta VALUES('a', 1)": "reserved",
		"DROP TABLE _raftlite_nodes":                "reserved",
		"CREATE TABLE _raftlite_x (a)":              "reserved",
		"CREATE INDEX i ON _raftlite_meta(value)":   "reserved",
		"CREATE TEMP TABLE t (x)":                   "temporary",
		"ATTACH ':memory:' AS m":                    "ATTACH",
		"PRAGMA journal_mode = DELETE":              "connection setting",
		"PRAGMA query_only = ON":                    "connection setting",
	})
	noErrors(t, s.exec(t, f, stmt("PRAGMA user_version = 3"), stmt("INSERT INTO foo VALUES(1)")))
	if f.AppliedIndex() != s.next {
		t.Fatalf("applied index %d, want %d", f.AppliedIndex(), s.next)
	}
}

func TestRestartSkipsAppliedEntries(t *testing.T) {
	dir := t.TempDir()
	f := openFSM(t, dir)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (x)"))
	insert := &api.Request{Statements: []api.Statement{stmt("INSERT INTO foo VALUES(1)")}}
	last := execLog(t, s.idx(), insert)
	response(t, f.Apply(last))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	f = openFSM(t, dir)
	if f.AppliedIndex() != 2 {
		t.Fatalf("applied index after restart %d, want 2", f.AppliedIndex())
	}
	// Raft replays entries it does not know the database holds.
	resps := f.ApplyBatch([]*raft.Log{execLog(t, 1, &api.Request{Statements: []api.Statement{stmt("CREATE TABLE foo (x)")}}), last})
	for _, r := range resps {
		if rs := response(t, r).Results; rs != nil {
			t.Fatalf("replayed entry executed: %#v", rs)
		}
	}
	if n := count(t, f, "foo"); n != 1 {
		t.Fatalf("rows = %d, want 1", n)
	}
	// A batch mixing old and new entries applies only the new ones.
	resps = f.ApplyBatch([]*raft.Log{last, execLog(t, 3, insert)})
	if response(t, resps[0]).Results != nil || response(t, resps[1]).Results == nil {
		t.Fatalf("responses %#v", resps)
	}
	if n := count(t, f, "foo"); n != 2 || f.AppliedIndex() != 3 {
		t.Fatalf("rows = %d at index %d, want 2 at 3", n, f.AppliedIndex())
	}
}

func TestNonCommandEntries(t *testing.T) {
	f := newFSM(t)
	resps := f.ApplyBatch([]*raft.Log{
		{Index: 1, Type: raft.LogConfiguration, Data: []byte("whatever raft puts here")},
		{Index: 2, Type: raft.LogCommand, Data: []byte{0xde, 0xad}},
		execLog(t, 3, &api.Request{Statements: []api.Statement{stmt("CREATE TABLE foo (x)")}}),
	})
	if resps[0] != nil {
		t.Fatalf("configuration entry: %#v", resps[0])
	}
	if err, ok := resps[1].(error); !ok || !errors.Is(err, ErrBadCommand) {
		t.Fatalf("undecodable entry: %#v", resps[1])
	}
	noErrors(t, response(t, resps[2]).Results)
	if f.AppliedIndex() != 3 || f.Err() != nil {
		t.Fatalf("applied %d, err %v", f.AppliedIndex(), f.Err())
	}
	if len(f.ApplyBatch(nil)) != 0 {
		t.Fatal("empty batch")
	}
}

func TestNodes(t *testing.T) {
	dir := t.TempDir()
	f := openFSM(t, dir)
	resps := f.ApplyBatch([]*raft.Log{
		commandLog(t, 1, &Command{Type: CmdSetNode, Node: &NodeMeta{ID: "1", APIAddr: "http://a:4001"}}),
		commandLog(t, 2, &Command{Type: CmdSetNode, Node: &NodeMeta{ID: "2", APIAddr: "http://b:4001"}}),
		commandLog(t, 3, &Command{Type: CmdSetNode, Node: &NodeMeta{ID: "1", APIAddr: "http://a:5001"}}),
		commandLog(t, 4, &Command{Type: CmdRemoveNode, Node: &NodeMeta{ID: "2"}}),
	})
	for i, r := range resps {
		if response(t, r).Index != uint64(i+1) {
			t.Fatalf("response %d: %#v", i, r)
		}
	}
	want := map[string]NodeMeta{"1": {ID: "1", APIAddr: "http://a:5001"}}
	if got := f.Nodes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("nodes %v, want %v", got, want)
	}
	f.Nodes()["x"] = NodeMeta{} // a copy
	f.Close()
	f = openFSM(t, dir)
	if got := f.Nodes(); !reflect.DeepEqual(got, want) {
		t.Fatalf("nodes after restart %v, want %v", got, want)
	}
}

func TestWaitApplied(t *testing.T) {
	f := newFSM(t)
	done := make(chan error, 1)
	go func() { done <- f.WaitApplied(context.Background(), 2) }()
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (x)"))
	select {
	case err := <-done:
		t.Fatalf("returned early: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	s.exec(t, f, stmt("INSERT INTO foo VALUES(1)"))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not woken")
	}
	if err := f.WaitApplied(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := f.WaitApplied(ctx, 10); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("timeout: %v", err)
	}
	// Whether the waiter is already blocked or arrives after Close, it
	// must end with ErrClosed rather than wait for ever.
	go func() { done <- f.WaitApplied(context.Background(), 10) }()
	f.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestAllReadOnly(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"))
	ctx := context.Background()
	cases := map[string]bool{
		"SELECT * FROM foo": true,
		"select 1":          true,
		"WITH c(x) AS (SELECT 1) SELECT x FROM c":        true,
		"PRAGMA table_info(foo)":                         true,
		"PRAGMA foreign_keys":                            true,
		"SELECT 'a;b' -- trailing; comment\n;":           true,
		"SELECT \"x;\" FROM (SELECT 1 AS \"x;\")":        true,
		"INSERT INTO foo(name) VALUES('x')":              false,
		"UPDATE foo SET name = 'y'":                      false,
		"DELETE FROM foo":                                false,
		"CREATE TABLE bar (x)":                           false,
		"DROP TABLE foo":                                 false,
		"PRAGMA foreign_keys = OFF":                      false,
		"VACUUM":                                         false,
		"BEGIN":                                          false,
		"INSERT INTO foo(name) VALUES('x') RETURNING id": false,
		"SELECT 1; DELETE FROM foo":                      false,
		"SELECT 1; SELECT 2":                             false,
		"SELECT * FROM nosuch":                           false,
		"SELEC":                                          false,
	}
	for q, want := range cases {
		for range 2 { // the second time from the cache
			got, err := f.AllReadOnly(ctx, &api.Request{Statements: []api.Statement{stmt(q)}})
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("%q: %v, want %v", q, got, want)
			}
		}
	}
	got, err := f.AllReadOnly(ctx, &api.Request{Statements: []api.Statement{stmt("SELECT 1"), stmt("DELETE FROM foo")}})
	if err != nil || got {
		t.Fatalf("mixed request: %v %v", got, err)
	}
	// A statement that failed to prepare is not cached: once its table
	// exists it is read-only.
	s.exec(t, f, stmt("CREATE TABLE nosuch (x)"))
	if got, _ := f.AllReadOnly(ctx, &api.Request{Statements: []api.Statement{stmt("SELECT * FROM nosuch")}}); !got {
		t.Fatal("verdict for a failed statement was cached")
	}
}

func TestStats(t *testing.T) {
	f := newFSM(t)
	st := f.Stats()
	if st["fk_constraints"] != "disabled" || st["path"] == "" || st["applied_index"] != uint64(0) {
		t.Fatalf("stats %v", st)
	}
	// rqlite's store.sqlite3.pragmas: per connection kind, as text.
	pragmas, _ := st["pragmas"].(map[string]map[string]string)
	want := map[string]string{"foreign_keys": "0", "journal_mode": "wal", "busy_timeout": "5000", "wal_autocheckpoint": "1000"}
	for _, conn := range []string{"rw", "ro"} {
		for k, v := range want {
			if pragmas[conn][k] != v {
				t.Errorf("pragmas[%s][%s] = %q, want %q (%v)", conn, k, pragmas[conn][k], v, pragmas)
			}
		}
	}
	if pragmas["rw"]["synchronous"] != "1" {
		t.Errorf("rw synchronous %q, want 1 (NORMAL)", pragmas["rw"]["synchronous"])
	}
}

// TestForeignKeys: constraints are off by default, as in SQLite and
// rqlite, and enforced with Config.ForeignKeys (-fk); a client cannot
// switch them with PRAGMA foreign_keys, which is refused with a reason
// rather than silently ignored inside the apply transaction.
func TestForeignKeys(t *testing.T) {
	schema := []api.Statement{
		stmt("CREATE TABLE parent (id INTEGER PRIMARY KEY)"),
		stmt("CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id))"),
	}
	for _, fk := range []bool{false, true} {
		f, err := Open(Config{Dir: t.TempDir(), Logger: quietLogger(), ForeignKeys: fk})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		var s seq
		noErrors(t, s.exec(t, f, schema...))
		res := s.exec(t, f, stmt("INSERT INTO child (p) VALUES (42)"))
		if violated := strings.Contains(res[0].Error, "FOREIGN KEY constraint failed"); violated != fk {
			t.Errorf("ForeignKeys %v: insert of a dangling reference: %+v", fk, res)
		}
		for _, q := range []string{"PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys=ON", "PRAGMA main.foreign_keys(1)"} {
			res = s.exec(t, f, stmt(q))
			if !strings.Contains(res[0].Error, "-fk") {
				t.Errorf("%q: %+v, want it refused naming -fk", q, res)
			}
		}
		read, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt("PRAGMA foreign_keys")}})
		if err != nil || len(read[0].Rows) != 1 || (read[0].Rows[0][0] == int64(1)) != fk {
			t.Errorf("ForeignKeys %v: PRAGMA foreign_keys reads %+v %v", fk, read, err)
		}
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	closed, canceled bool
}

func (s *memSink) ID() string    { return "test" }
func (s *memSink) Close() error  { s.closed = true; return nil }
func (s *memSink) Cancel() error { s.canceled = true; return nil }

func snapshotOf(t *testing.T, f *FSM) *memSink {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.canceled {
		t.Fatalf("sink closed %v canceled %v", sink.closed, sink.canceled)
	}
	return sink
}

func dump(t *testing.T, f *FSM) []api.Result {
	t.Helper()
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{
		stmt("SELECT * FROM foo ORDER BY id"),
		stmt("SELECT type, name, sql FROM sqlite_schema ORDER BY name"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range res {
		res[i].Seconds = 0
	}
	return res
}

func TestSnapshotRestore(t *testing.T) {
	src := newFSM(t)
	var s seq
	s.exec(t, src, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT, data BLOB)"), stmt("CREATE INDEX foo_name ON foo(name)"))
	for i := range 200 {
		s.exec(t, src, stmt("INSERT INTO foo(name, data) VALUES(?, ?)", fmt.Sprintf("name-%d", i), bytes.Repeat([]byte{byte(i)}, 100)))
	}
	src.Apply(commandLog(t, s.idx(), &Command{Type: CmdSetNode, Node: &NodeMeta{ID: "1", APIAddr: "http://a:4001"}}))
	want := dump(t, src)
	wantIndex := src.AppliedIndex()

	// Applies go on while the snapshot is persisted; the snapshot holds
	// the state at the index it was taken at.
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s.exec(t, src, stmt("DELETE FROM foo"), stmt("DROP INDEX foo_name"))
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := newFSM(t)
	var d seq
	d.exec(t, dst, stmt("CREATE TABLE other (x)"), stmt("INSERT INTO other VALUES(1)"))
	if err := dst.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if dst.AppliedIndex() != wantIndex {
		t.Fatalf("applied index %d, want %d", dst.AppliedIndex(), wantIndex)
	}
	if got := dump(t, dst); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored data differs:\n got %v\nwant %v", got, want)
	}
	if got := dst.Nodes(); !reflect.DeepEqual(got, map[string]NodeMeta{"1": {ID: "1", APIAddr: "http://a:4001"}}) {
		t.Fatalf("nodes %v", got)
	}
	// The restored database keeps applying, skipping what it holds.
	if rs := execAt(t, dst, wantIndex, &api.Request{Statements: []api.Statement{stmt("DELETE FROM foo")}}); rs != nil {
		t.Fatalf("old entry applied: %v", rs)
	}
	noErrors(t, execAt(t, dst, wantIndex+1, &api.Request{Statements: []api.Statement{stmt("INSERT INTO foo(name) VALUES('new')")}}))
	if n := count(t, dst, "foo"); n != 201 {
		t.Fatalf("rows = %d, want 201", n)
	}
	for _, suffix := range []string{".restore", ".restore-wal"} {
		if _, err := os.Stat(filepath.Join(filepath.Dir(dst.path), DBFile+suffix)); !os.IsNotExist(err) {
			t.Errorf("%s left behind", suffix)
		}
	}
	matches, _ := filepath.Glob(filepath.Join(filepath.Dir(src.path), DBFile+".snapshot-*"))
	if len(matches) != 0 {
		t.Errorf("snapshot scratch files left behind: %v", matches)
	}

	// And the restored FSM snapshots again.
	again := newFSM(t)
	if err := again.Restore(io.NopCloser(bytes.NewReader(snapshotOf(t, dst).Bytes()))); err != nil {
		t.Fatal(err)
	}
	if n := count(t, again, "foo"); n != 201 {
		t.Fatalf("rows = %d, want 201", n)
	}
}

func TestRestoreRejectsCorruptSnapshot(t *testing.T) {
	src := newFSM(t)
	var s seq
	s.exec(t, src, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"), stmt("INSERT INTO foo(name) VALUES('src')"))
	good := snapshotOf(t, src).Bytes()

	dst := newFSM(t)
	var d seq
	d.exec(t, dst, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"))
	d.exec(t, dst, stmt("INSERT INTO foo(name) VALUES('a')"), stmt("INSERT INTO foo(name) VALUES('b')"))
	want := dump(t, dst)

	flipped := bytes.Clone(good)
	flipped[len(flipped)/2] ^= 0xff
	for name, stream := range map[string][]byte{
		"flipped":   flipped,
		"truncated": good[:len(good)-3],
		"garbage":   []byte("not a snapshot at all"),
	} {
		if err := dst.Restore(io.NopCloser(bytes.NewReader(stream))); err == nil {
			t.Fatalf("%s: restore succeeded", name)
		}
		if got := dump(t, dst); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: database changed", name)
		}
		if dst.AppliedIndex() != 2 || dst.Err() != nil {
			t.Fatalf("%s: applied %d, err %v", name, dst.AppliedIndex(), dst.Err())
		}
	}
	if _, err := os.Stat(dst.path + ".restore"); !os.IsNotExist(err) {
		t.Fatal("restore file left behind")
	}
	noErrors(t, d.exec(t, dst, stmt("INSERT INTO foo(name) VALUES('c')")))
}

func TestClosed(t *testing.T) {
	f := newFSM(t)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt("SELECT 1")}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Query: %v", err)
	}
	if r := f.Apply(execLog(t, 1, &api.Request{})); !errors.Is(r.(error), ErrClosed) {
		t.Fatalf("Apply: %v", r)
	}
	if _, err := f.Snapshot(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Snapshot: %v", err)
	}
}

// BenchmarkApplyBatchInsert applies batches of single-row INSERT entries:
// batches of 1 are what a lone client produces, 64 what concurrent ones do.
func BenchmarkApplyBatchInsert(b *testing.B) {
	for _, batchSize := range []int{1, 64} {
		for _, capture := range []bool{false, true} {
			b.Run(fmt.Sprintf("batch=%d/capture=%v", batchSize, capture), func(b *testing.B) {
				f, err := Open(Config{Dir: b.TempDir(), Logger: quietLogger(), WatchRetention: WatchRetention{Off: !capture}})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { f.Close() })
				benchmarkApplyBatch(b, f, batchSize)
			})
		}
	}
}

// BenchmarkApplyGatheredInserts applies entries of 16 gathered requests
// (CmdBatch), one single-row INSERT each: what 32 concurrent clients
// produce on the leader. ns/request is the state machine's cost of one
// write, paid on every replica.
func BenchmarkApplyGatheredInserts(b *testing.B) {
	for _, capture := range []bool{false, true} {
		b.Run(fmt.Sprintf("capture=%v", capture), func(b *testing.B) {
			f, err := Open(Config{Dir: b.TempDir(), Logger: quietLogger(), WatchRetention: WatchRetention{Off: !capture}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { f.Close() })
			execAt(b, f, 1, &api.Request{Statements: []api.Statement{stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")}})
			const perEntry = 16
			next := uint64(2)
			b.ReportAllocs()
			for b.Loop() {
				reqs := make([]*api.Request, perEntry)
				for i := range reqs {
					reqs[i] = &api.Request{Statements: []api.Statement{stmt("INSERT INTO foo(name, n) VALUES(?, ?)", "fiona", int64(next)*perEntry+int64(i))}}
				}
				resps := f.Apply(commandLog(b, next, &Command{Type: CmdBatch, Timestamp: time.Now().UnixNano(), Requests: reqs}))
				for _, r := range resps.(BatchResponse) {
					if r.Results[0].Error != "" {
						b.Fatal(r.Results[0].Error)
					}
				}
				next++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perEntry), "ns/request")
		})
	}
}

func benchmarkApplyBatch(b *testing.B, f *FSM, batchSize int) {
	execAt(b, f, 1, &api.Request{Statements: []api.Statement{stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)")}})
	next := uint64(2)
	logs := make([]*raft.Log, batchSize)
	b.ReportAllocs()
	for b.Loop() {
		for i := range logs {
			logs[i] = execLog(b, next, &api.Request{Statements: []api.Statement{
				stmt("INSERT INTO foo(name, n) VALUES(?, ?)", "fiona", int64(next)),
			}})
			next++
		}
		for _, r := range f.ApplyBatch(logs) {
			if rs := r.(*api.Response).Results; rs[0].Error != "" {
				b.Fatal(rs[0].Error)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batchSize), "ns/entry")
}

func TestMultipleStatements(t *testing.T) {
	for sql, want := range map[string]bool{
		"SELECT 1":                       false,
		"SELECT 1;":                      false,
		"SELECT 1 ; -- done\n  ;  ":      false,
		"SELECT ';' || \"a;b\" || `c;d`": false,
		"SELECT [x;y] FROM t":            false,
		"SELECT 'it''s; fine'":           false,
		"SELECT 1 /* ; SELECT 2 */":      false,
		"SELECT 1; /* c */ -- c":         false,
		"SELECT 'unterminated;":          false,
		"SELECT 1; SELECT 2":             true,
		"SELECT 1;DELETE FROM t":         true,
		"SELECT 1; 'x'":                  true,
		"SELECT 1; /* c */ x":            true,
	} {
		if got := multipleStatements(sql); got != want {
			t.Errorf("%q: %v, want %v", sql, got, want)
		}
	}
}

// failOnErrorLog is a slog handler that fails the test on Error records.
type failOnErrorLog struct {
	slog.Handler
	t *testing.T
}

func (h failOnErrorLog) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.t.Errorf("error logged: %s", r.Message)
	}
	return nil
}

func TestConflictRollbackLogsNoError(t *testing.T) {
	f, err := Open(Config{Dir: t.TempDir(), Logger: slog.New(failOnErrorLog{slog.NewTextHandler(io.Discard, nil), t})})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s seq
	s.exec(t, f, stmt("CREATE TABLE r (id INTEGER PRIMARY KEY)"), stmt("INSERT INTO r VALUES(1)"))
	got := s.exec(t, f, stmt("INSERT OR ROLLBACK INTO r VALUES(1)"))
	if got[0].Error == "" || f.Err() != nil || f.AppliedIndex() != 2 {
		t.Fatalf("results %v, err %v, index %d", got, f.Err(), f.AppliedIndex())
	}
}

func TestHaltsWhenBatchCannotCommit(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (x)"))
	// Pull the write connection away, as a failing disk would.
	f.w.conn.Close()
	resps := f.ApplyBatch([]*raft.Log{
		execLog(t, 2, &api.Request{Statements: []api.Statement{stmt("INSERT INTO foo VALUES(1)")}}),
		{Index: 3, Type: raft.LogConfiguration},
	})
	for i, r := range resps {
		if _, ok := r.(error); !ok {
			t.Fatalf("response %d: %#v, want an error", i, r)
		}
	}
	if f.Err() == nil || f.AppliedIndex() != 1 {
		t.Fatalf("err %v, applied %d", f.Err(), f.AppliedIndex())
	}
	if _, ok := f.Apply(execLog(t, 4, &api.Request{})).(error); !ok {
		t.Fatal("halted FSM applied an entry")
	}
	if _, err := f.Snapshot(); err == nil {
		t.Fatal("halted FSM took a snapshot")
	}
	if f.Stats()["error"] == nil {
		t.Fatal("Stats does not report the failure")
	}
}

// TestConcurrentUse runs reads, classification, stats and snapshots while
// entries are applied, for the race detector.
func TestConcurrentUse(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, n INTEGER)"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 4)
	reader := func(check func() error) {
		for ctx.Err() == nil {
			if err := check(); err != nil && ctx.Err() == nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}
	go reader(func() error {
		// Both statements see the same snapshot, whatever is applied
		// meanwhile.
		res, err := f.Query(ctx, &api.Request{Statements: []api.Statement{
			stmt("SELECT COUNT(*) FROM foo"), stmt("SELECT COUNT(*) FROM foo"),
		}})
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(res[0].Rows, res[1].Rows) {
			return fmt.Errorf("inconsistent read: %v then %v", res[0].Rows, res[1].Rows)
		}
		return nil
	})
	go reader(func() error {
		_, err := f.AllReadOnly(ctx, &api.Request{Statements: []api.Statement{stmt(fmt.Sprintf("SELECT %d", time.Now().UnixNano()%50))}})
		return err
	})
	go reader(func() error { f.Stats(); f.Nodes(); return nil })
	go reader(func() error { return f.WaitApplied(ctx, f.AppliedIndex()) })

	for i := range 100 {
		s.exec(t, f, stmt("INSERT INTO foo(n) VALUES(?)", int64(i)))
		if i%25 == 0 {
			snapshotOf(t, f)
		}
	}
	cancel()
	for range 4 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}
