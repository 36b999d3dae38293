package sqlapi

import (
	"errors"
	"testing"

	"github.com/raftlite/raftlite/api"
)

func TestParameterSlots(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want int
		ok   bool
	}{
		{"SELECT 1", 0, true},
		{"INSERT INTO t VALUES(?, ?)", 2, true},
		{"SELECT ?3", 3, true},
		{"SELECT ?2, ?", 3, true},
		{"SELECT :a, @b, $c, :a", 3, true},
		{"SELECT ?, :a, ?", 3, true},
		{"SELECT '?', \"?\", [?] -- ?\n /* ? */", 0, true},
		{"SELECT x'3F', ?", 1, true},
		{"SELECT a$b FROM t WHERE x = ?", 1, true},
		{"SELECT 'open", 0, false},
	} {
		got, ok := parameterSlots(tc.sql)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parameterSlots(%q) = %d, %v; want %d, %v", tc.sql, got, ok, tc.want, tc.ok)
		}
	}
}

// TestExtraPositionalValues: values beyond a statement's parameters are
// refused (rqlite drops them silently), fewer are left to SQLite, and
// named values are not counted.
func TestExtraPositionalValues(t *testing.T) {
	pos := func(n int) []api.Param { return make([]api.Param, n) }
	for _, tc := range []struct {
		stmt api.Statement
		bad  bool
	}{
		{api.Statement{SQL: "INSERT INTO t(v) VALUES(?)", Params: pos(2)}, true},
		{api.Statement{SQL: "INSERT INTO t(v) VALUES(?)", Params: pos(1)}, false},
		{api.Statement{SQL: "INSERT INTO t(a, b) VALUES(?, ?)", Params: pos(1)}, false},
		{api.Statement{SQL: "SELECT 1", Params: pos(1)}, true},
		{api.Statement{SQL: "SELECT :a", Params: []api.Param{{Name: "a"}, {Name: "b"}}}, false},
	} {
		err := checkParamCounts([]api.Statement{tc.stmt})
		if (err != nil) != tc.bad || (err != nil && !errors.Is(err, errInvalidRequest)) {
			t.Errorf("%q with %d values: err = %v, want refused %v", tc.stmt.SQL, len(tc.stmt.Params), err, tc.bad)
		}
	}
}

func TestLevelAnyCase(t *testing.T) {
	for in, want := range map[string]api.Level{"STRONG": api.LevelStrong, "Linearizable": api.LevelLinearizable, "NONE": api.LevelNone, "bogus": api.LevelWeak} {
		p, err := parseParams("level="+in, 0)
		if err != nil || p.level != want {
			t.Errorf("level=%s: %v %v, want %s", in, p.level, err, want)
		}
	}
}
