package fsm

import (
	"context"
	"fmt"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// TestPreparedStatementsStayCorrect: statements served from the prepared
// cache report what freshly prepared ones would: rows_affected and
// last_insert_id after the schema changed under them, the read-only guard
// for the same text sent as a read, and the right results when more texts
// pass through than the cache holds.
func TestPreparedStatementsStayCorrect(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE p (id INTEGER PRIMARY KEY, v TEXT)"))
	insert := stmt("INSERT INTO p(v) VALUES(?)", "a")
	for i := int64(1); i <= 3; i++ {
		r := s.exec(t, f, insert)[0]
		if r.Error != "" || r.RowsAffected != 1 || r.LastInsertID != i {
			t.Fatalf("insert %d: %+v", i, r)
		}
	}

	// A schema change makes SQLite re-prepare the cached INSERT, which the
	// guard sees again; the result keeps its shape.
	s.exec(t, f, stmt("ALTER TABLE p ADD COLUMN w INTEGER DEFAULT 7"))
	if r := s.exec(t, f, insert)[0]; r.Error != "" || r.RowsAffected != 1 || r.LastInsertID != 4 {
		t.Fatalf("insert after ALTER: %+v", r)
	}
	// DDL run from the cache twice reports no rows affected.
	ddl := stmt("CREATE INDEX IF NOT EXISTS p_v ON p(v)")
	for range 2 {
		if r := s.exec(t, f, ddl)[0]; r.Error != "" || r.RowsAffected != 0 || r.LastInsertID != 0 {
			t.Fatalf("DDL: %+v", r)
		}
	}

	// The write connection has the INSERT prepared for writes; as a read
	// through the log it must still be refused.
	ro := response(t, f.Apply(execLog(t, s.idx(), &api.Request{ReadOnly: true, Statements: []api.Statement{insert}}))).Results[0]
	if ro.Error != errReadOnly {
		t.Fatalf("INSERT as a read-only request: %+v", ro)
	}
	// And the same on the read pool.
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{insert}})
	if err != nil || res[0].Error == "" {
		t.Fatalf("INSERT through Query: %+v %v", res, err)
	}

	// More distinct texts than a connection keeps: evicted statements are
	// closed and prepared again when they come back.
	for round := range 2 {
		for i := range 3 * preparedPerConn {
			q := fmt.Sprintf("SELECT %d + id FROM p WHERE id = ?", i)
			res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt(q, 1)}})
			if err != nil || res[0].Error != "" || len(res[0].Rows) != 1 || res[0].Rows[0][0] != int64(i+1) {
				t.Fatalf("round %d, query %d: %+v %v", round, i, res, err)
			}
		}
	}
	if n := count(t, f, "p"); n != 4 {
		t.Fatalf("%d rows, want 4", n)
	}
}

// BenchmarkQueryPoint: a point SELECT through Query (a read transaction on
// a pooled connection), the work of a read at level none or weak.
func BenchmarkQueryPoint(b *testing.B) {
	f := newFSM(b)
	var s seq
	s.exec(b, f, stmt("CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)"))
	s.exec(b, f, stmt("WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i < 10000) INSERT INTO kv SELECT i, 'value ' || i FROM c"))
	for i := range 3000 { // a WAL past the auto-checkpoint, as in a server that has taken writes
		s.exec(b, f, stmt("INSERT INTO kv(v) VALUES(?)", fmt.Sprint(i)))
	}
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		res, err := f.Query(ctx, &api.Request{Statements: []api.Statement{stmt("SELECT v FROM kv WHERE id = ?", int64(i%10000+1))}})
		if err != nil || res[0].Error != "" || len(res[0].Rows) != 1 {
			b.Fatalf("%+v %v", res, err)
		}
	}
}

// TestReadPoolRefusesTransactionControl: a single-statement read runs
// without a BEGIN/ROLLBACK of its own, so nothing but the guard stands
// between a client's BEGIN and a pooled read connection left inside a
// transaction, pinned to an old snapshot. Each is refused, and reads keep
// seeing new writes on every pooled connection.
func TestReadPoolRefusesTransactionControl(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY)"))
	for range 2 { // through the prepared-statement cache too
		for _, q := range []string{"BEGIN", "BEGIN IMMEDIATE", "SAVEPOINT x", "COMMIT", "END", "ROLLBACK", "PRAGMA query_only=OFF"} {
			res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt(q)}})
			if err != nil || res[0].Error == "" {
				t.Fatalf("%s on the read pool: %+v %v", q, res, err)
			}
		}
	}
	for i := range int64(2 * f.nReader) {
		s.exec(t, f, stmt("INSERT INTO foo VALUES(?)", i))
		if n := count(t, f, "foo"); n != i+1 {
			t.Fatalf("after %d inserts a read saw %d rows: a pooled connection is stuck in an old snapshot", i+1, n)
		}
	}
}
