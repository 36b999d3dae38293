package fsm

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// TestInternalTablesHidden: no client statement shows raftlite's tables,
// their indexes or the views that hide them, however it reads the schema,
// on the read path and through the log; what cannot be rewritten fails
// rather than leaks; raftlite's tables can be neither read nor changed.
func TestInternalTablesHidden(t *testing.T) {
	ctx := context.Background()
	f := newFSM(t)
	var s seq
	noErrors(t, s.exec(t, f,
		stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT UNIQUE)"),
		stmt("CREATE INDEX t_a ON t (a)"),
		stmt("CREATE TABLE names (n TEXT)"),
	))
	// A view reading the schema, as a database loaded from elsewhere may
	// bring: creating one is refused now, using one must not leak.
	if err := f.w.internal(ctx, "CREATE VIEW old_leak AS SELECT name FROM sqlite_master"); err != nil {
		t.Fatal(err)
	}
	userObjects := "names,old_leak,sqlite_autoindex_t_1,t,t_a"

	leaks := func(res api.Result) bool {
		return strings.Contains(strings.ToLower(fmt.Sprint(res.Rows)), "raftlite")
	}
	read := func(q string) (api.Result, api.Result) {
		t.Helper()
		r, err := f.Query(ctx, &api.Request{Statements: []api.Statement{stmt(q)}})
		if err != nil {
			t.Fatal(err)
		}
		strong := execAt(t, f, s.idx(), &api.Request{ReadOnly: true, Statements: []api.Statement{stmt(q)}})
		return r[0], strong[0]
	}
	for q, want := range map[string]string{
		"SELECT group_concat(name) FROM (SELECT name FROM sqlite_master ORDER BY name)":                       userObjects,
		"SELECT group_concat(name) FROM (SELECT name FROM main.sqlite_schema ORDER BY 1)":                     userObjects,
		`SELECT group_concat(x.name) FROM (SELECT "SQLITE_MASTER".name FROM "SQLITE_MASTER" ORDER BY 1) x`:    userObjects,
		"SELECT group_concat(m.name) FROM (SELECT name FROM [sqlite_schema] m ORDER BY name) m":               userObjects,
		"WITH s AS (SELECT name FROM sqlite_master ORDER BY name) SELECT group_concat(name) FROM s":           userObjects,
		"WITH RECURSIVE s AS (SELECT name FROM sqlite_schema ORDER BY name) SELECT group_concat(name) FROM s": userObjects,
		"SELECT count(*) FROM sqlite_master":                                                                  "5",
		"SELECT count(*) FROM sqlite_master a JOIN main.sqlite_master b ON a.name = b.name":                   "5",
		"SELECT count(*) FROM t WHERE a IN (SELECT name FROM sqlite_schema)":                                  "0",
		// The rqlite shell's .tables, .schema and .indexes.
		`SELECT group_concat(name) FROM (SELECT name FROM sqlite_master WHERE type="table" ORDER BY name)`: "names,t",
		"SELECT count(*) FROM (SELECT sql FROM sqlite_master ORDER BY tbl_name)":                           "5",
		"SELECT count(*) FROM sqlite_master WHERE type = 'index'":                                          "2",
		"SELECT group_concat(name) FROM (SELECT name FROM pragma_table_list ORDER BY name)":                "names,old_leak,sqlite_schema,sqlite_temp_schema,t",
		"SELECT count(*) FROM sqlite_temp_master":                                                          "0",
		"SELECT count(*) FROM sqlite_temp_schema":                                                          "0",
	} {
		r, strong := read(q)
		for path, res := range map[string]api.Result{"query": r, "strong": strong} {
			if res.Error != "" || len(res.Rows) != 1 || fmt.Sprint(res.Rows[0][0]) != want {
				t.Errorf("%s %q: %+v, want %s", path, q, res, want)
			}
		}
	}

	// SELECT * keeps sqlite_schema's columns and types.
	r, _ := read("SELECT * FROM sqlite_master WHERE name = 't'")
	if fmt.Sprint(r.Columns, r.Types) != "[type name tbl_name rootpage sql] [text text text int text]" || len(r.Rows) != 1 {
		t.Errorf("SELECT * FROM sqlite_master: %+v", r)
	}
	r, _ = read("PRAGMA table_list")
	if r.Error != "" || len(r.Rows) != 5 || leaks(r) {
		t.Errorf("PRAGMA table_list: %+v", r)
	}

	// What cannot be rewritten fails, never shows raftlite's tables.
	for _, q := range []string{
		"SELECT * FROM old_leak",
		"SELECT * FROM _raftlite_meta",
		"SELECT * FROM main._raftlite_sessions",
		"SELECT count(*) FROM _raftlite_schema JOIN _raftlite_nodes",
		"PRAGMA table_info(_raftlite_meta)",
		"PRAGMA index_list('_raftlite_sessions')",
		"SELECT 1; SELECT name FROM sqlite_master",
	} {
		r, strong := read(q)
		for path, res := range map[string]api.Result{"query": r, "strong": strong} {
			if leaks(res) {
				t.Errorf("%s %q showed raftlite's tables: %+v", path, q, res)
			}
			if res.Error == "" && len(res.Rows) > 0 {
				t.Errorf("%s %q: %+v, want it refused", path, q, res)
			}
		}
	}
	wantRefused(t, f, &s, map[string]string{
		"CREATE TABLE copy AS SELECT * FROM sqlite_master":                          "hides its own tables",
		"CREATE VIEW v AS SELECT name FROM sqlite_schema":                           "hides its own tables",
		"DROP TABLE _raftlite_meta":                                                 "reserved",
		"DELETE FROM _raftlite_sessions":                                            "reserved",
		"UPDATE _raftlite_meta SET value = 0":                                       "reserved",
		"CREATE INDEX _raftlite_sessions_x ON t (a)":                                "reserved",
		"ALTER TABLE _raftlite_nodes RENAME TO mine":                                "reserved",
		"INSERT INTO names SELECT id FROM _raftlite_nodes":                          "no such table",
		"CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM _raftlite_meta; END": "reserved",
	})
	// A write that reads the schema sees the user's objects only.
	noErrors(t, s.exec(t, f, stmt("INSERT INTO names SELECT name FROM sqlite_master")))
	if r, _ := read("SELECT count(*) FROM names WHERE n LIKE '%raftlite%'"); r.Rows[0][0] != int64(0) {
		t.Errorf("INSERT ... SELECT FROM sqlite_master copied raftlite's names: %+v", r)
	}
	// AllReadOnly: schema reads are served locally, not through the log.
	if ro, err := f.AllReadOnly(ctx, &api.Request{Statements: []api.Statement{stmt("SELECT name FROM sqlite_master")}}); err != nil || !ro {
		t.Errorf("AllReadOnly(SELECT FROM sqlite_master) = %v, %v", ro, err)
	}
}
