package sqlapi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/api"
)

func TestParseStatements(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []api.Statement
	}{
		{"simple", `["CREATE TABLE foo (id INTEGER)", "SELECT 1"]`,
			[]api.Statement{{SQL: "CREATE TABLE foo (id INTEGER)"}, {SQL: "SELECT 1"}}},
		{"sql only in array", `[["SELECT 1"]]`, []api.Statement{{SQL: "SELECT 1"}}},
		{"positional", `[["INSERT INTO foo(name, age) VALUES(?, ?)", "fiona", 20]]`,
			[]api.Statement{{SQL: "INSERT INTO foo(name, age) VALUES(?, ?)", Params: []api.Param{{Value: "fiona"}, {Value: int64(20)}}}}},
		{"named sorted and prefixes stripped", `[["INSERT INTO foo VALUES(:name, :age)", {"name": "fiona", ":age": 20, "@b": null}]]`,
			[]api.Statement{{SQL: "INSERT INTO foo VALUES(:name, :age)", Params: []api.Param{
				{Name: "age", Value: int64(20)}, {Name: "b", Value: nil}, {Name: "name", Value: "fiona"}}}}},
		{"two objects merge", `[["X", {"a": 1}, {"b": 2, "a": 3}]]`,
			[]api.Statement{{SQL: "X", Params: []api.Param{{Name: "a", Value: int64(3)}, {Name: "b", Value: int64(2)}}}}},
		{"mixed forms", `["CREATE TABLE t (x)", ["INSERT INTO t VALUES(?)", 1]]`,
			[]api.Statement{{SQL: "CREATE TABLE t (x)"}, {SQL: "INSERT INTO t VALUES(?)", Params: []api.Param{{Value: int64(1)}}}}},
		{"numbers", `[["X", 1, -9223372036854775808, 9223372036854775808, 1.0, 1e3, 2.5, -0]]`,
			[]api.Statement{{SQL: "X", Params: []api.Param{{Value: int64(1)}, {Value: int64(math.MinInt64)},
				{Value: float64(9223372036854775808)}, {Value: float64(1)}, {Value: float64(1000)}, {Value: 2.5}, {Value: int64(0)}}}}},
		{"bool null string", `[["X", true, false, null, "x"]]`,
			[]api.Statement{{SQL: "X", Params: []api.Param{{Value: true}, {Value: false}, {Value: nil}, {Value: "x"}}}}},
		{"blob array", `[["X", [0, 1, 255], []]]`,
			[]api.Statement{{SQL: "X", Params: []api.Param{{Value: []byte{0, 1, 255}}, {Value: []byte{}}}}}},
		{"hex blob", `[["X", "x'DEADbeef'", "X''", "x'abc'", "x'zz'", "xx"]]`,
			[]api.Statement{{SQL: "X", Params: []api.Param{{Value: []byte{0xde, 0xad, 0xbe, 0xef}}, {Value: []byte{}},
				{Value: "x'abc'"}, {Value: "x'zz'"}, {Value: "xx"}}}}},
		{"whitespace around", " \n[\"SELECT 1\"]\n ", []api.Statement{{SQL: "SELECT 1"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatements([]byte(tt.body))
			if err != nil {
				t.Fatalf("ParseStatements(%s): %v", tt.body, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseStatements(%s)\n got %#v\nwant %#v", tt.body, got, tt.want)
			}
		})
	}
}

func TestParseStatementsErrors(t *testing.T) {
	tests := []struct {
		body string
		want error
	}{
		{``, errInvalidJSON},
		{`[`, errInvalidJSON},
		{`not json`, errInvalidJSON},
		{`["SELECT 1"] trailing`, errInvalidJSON},
		{`["SELECT 1"]]`, errInvalidJSON},
		{`{"q": "SELECT 1"}`, errInvalidRequest},
		{`"SELECT 1"`, errInvalidRequest},
		{`42`, errInvalidRequest},
		{`null`, errInvalidRequest},
		{`[1]`, errInvalidRequest},
		{`[null]`, errInvalidRequest},
		{`[{"sql": "x"}]`, errInvalidRequest},
		{`[[1, 2]]`, errInvalidRequest},
		{`[["X", 1, {"a": 2}]]`, errInvalidRequest},
		{`[["X", {"": 2}]]`, errInvalidRequest},
		{`[]`, errNoStatements},
		{`[[]]`, errInvalidRequest},
		{`[["X", {"a": {"b": 1}}]]`, errUnsupportedType},
		{`[["X", [256]]]`, errUnsupportedType},
		{`[["X", [-1]]]`, errUnsupportedType},
		{`[["X", [1.5]]]`, errUnsupportedType},
		{`[["X", ["a"]]]`, errUnsupportedType},
		{`[["X", [[1]]]]`, errUnsupportedType},
		{`[["X", 1e999]]`, errUnsupportedType},
	}
	for _, tt := range tests {
		_, err := ParseStatements([]byte(tt.body))
		if !errors.Is(err, tt.want) {
			t.Errorf("ParseStatements(%q) = %v, want %v", tt.body, err, tt.want)
		}
		if err != nil && bytes.ContainsAny([]byte(err.Error()), "\n") {
			t.Errorf("ParseStatements(%q): error %q is not one line", tt.body, err)
		}
	}
}

func TestParseBodyTextPlain(t *testing.T) {
	got, err := parseBody([]byte("SELECT 1; SELECT 2"), true)
	if err != nil || len(got) != 1 || got[0].SQL != "SELECT 1; SELECT 2" {
		t.Fatalf("parseBody text: %v %v", got, err)
	}
	if _, err := parseBody([]byte("  \n"), true); !errors.Is(err, errNoStatements) {
		t.Fatalf("empty text body: %v", err)
	}
	for ct, want := range map[string]bool{
		"text/plain": true, "text/plain; charset=utf-8": true, "TEXT/PLAIN": true,
		"application/json": false, "": false, "text/plainx": false,
	} {
		if got := isTextPlain(ct); got != want {
			t.Errorf("isTextPlain(%q) = %v, want %v", ct, got, want)
		}
	}
}

// TestRequestBodyRoundTrip checks that appendRequestBody (used to forward
// queued batches) is read back by ParseStatements as the same statements.
func TestRequestBodyRoundTrip(t *testing.T) {
	stmts := []api.Statement{
		{SQL: "CREATE TABLE \"t\" (x)"},
		{SQL: "INSERT INTO t VALUES(?, ?, ?, ?, ?, ?, ?)", Params: []api.Param{
			{Value: int64(-5)}, {Value: 1.0}, {Value: 1e-7}, {Value: 1e300}, {Value: []byte{1, 2}}, {Value: nil}, {Value: "a\"b\n"}}},
		{SQL: "INSERT INTO t VALUES(:a, :b)", Params: []api.Param{{Name: "a", Value: true}, {Name: "b", Value: -0.5}}},
	}
	body := appendRequestBody(nil, stmts)
	got, err := ParseStatements(body)
	if err != nil {
		t.Fatalf("ParseStatements(%s): %v", body, err)
	}
	if !reflect.DeepEqual(got, stmts) {
		t.Fatalf("round trip of %s\n got %#v\nwant %#v", body, got, stmts)
	}
}

func FuzzParseStatements(f *testing.F) {
	for _, s := range []string{
		`["CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"]`,
		`[["INSERT INTO foo(name, age) VALUES(?, ?)", "fiona", 20]]`,
		`[["INSERT INTO foo(name, age) VALUES(:name, :age)", {"name": "fiona", "age": 20}]]`,
		`[["X", [1, 2, 255], "x'00ff'", 1.5, 1e400, null, true]]`,
		`[[]]`, `[]`, `{}`, `[["X", {"a": {"b": []}}]]`, `["\u0000\ud800"]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		stmts, err := ParseStatements(body)
		if err != nil {
			if stmts != nil {
				t.Fatalf("statements returned with error %v", err)
			}
			return
		}
		if len(stmts) == 0 {
			t.Fatal("no statements and no error")
		}
		for _, st := range stmts {
			named := len(st.Params) > 0 && st.Params[0].Name != ""
			for _, p := range st.Params {
				if (p.Name != "") != named {
					t.Fatalf("mixed named and positional parameters: %#v", st.Params)
				}
				switch p.Value.(type) {
				case nil, int64, float64, bool, string, []byte:
				default:
					t.Fatalf("parameter of type %T", p.Value)
				}
			}
		}
		// What parses must survive the forwarding encoding unchanged.
		again, err := ParseStatements(appendRequestBody(nil, stmts))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		if !reflect.DeepEqual(normalizeStrings(again), normalizeStrings(stmts)) {
			t.Fatalf("round trip changed statements:\n got %#v\nwant %#v", again, stmts)
		}
	})
}

// normalizeStrings maps strings through JSON's view of them (invalid UTF-8
// becomes U+FFFD), so that round-trip comparisons are fair.
func normalizeStrings(stmts []api.Statement) []api.Statement {
	out := make([]api.Statement, len(stmts))
	for i, st := range stmts {
		out[i].SQL = string(bytes.ToValidUTF8([]byte(st.SQL), []byte("\uFFFD")))
		for _, p := range st.Params {
			if s, ok := p.Value.(string); ok {
				p.Value = string(bytes.ToValidUTF8([]byte(s), []byte("\uFFFD")))
			}
			out[i].Params = append(out[i].Params, p)
		}
	}
	return out
}

// BenchmarkParseStatements measures the request parser on the hot write
// path: a 100-row request of parameterised INSERTs, the bench tool's batch.
func BenchmarkParseStatements(b *testing.B) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `["INSERT INTO t(id, name, score, data) VALUES(?, ?, ?, ?)", %d, "name %d", %d.5, null]`, i, i, i)
	}
	sb.WriteByte(']')
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseStatements(body); err != nil {
			b.Fatal(err)
		}
	}
}
