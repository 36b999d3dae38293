package client

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

type myInt int16
type myBlob []byte

func TestEncodeStatements(t *testing.T) {
	s := "txt"
	var nilPtr *int
	tests := []struct {
		stmts []Statement
		want  string
	}{
		{[]Statement{SQL("CREATE TABLE t (v)")}, `["CREATE TABLE t (v)"]`},
		{[]Statement{SQL("INSERT INTO t VALUES(?, ?, ?, ?)", "fiona", 20, nil, true)},
			`[["INSERT INTO t VALUES(?, ?, ?, ?)","fiona",20,null,true]]`},
		{[]Statement{SQL("?", []byte{0, 1, 255}, []byte{}, []byte(nil))}, `[["?",[0,1,255],[],null]]`},
		{[]Statement{SQL("?", 2.0, 1.5, math.Copysign(0, -1), 1e21, float32(0.1))}, `[["?",2.0,1.5,-0.0,1e+21,0.1]]`},
		{[]Statement{SQL("?", int64(math.MinInt64), uint64(math.MaxInt64), int8(-3), uint8(7))},
			`[["?",-9223372036854775808,9223372036854775807,-3,7]]`},
		{[]Statement{SQL("?", myInt(5), myBlob{9}, &s, nilPtr, json.Number("12.50"))},
			`[["?",5,[9],"txt",null,12.50]]`},
		{[]Statement{Named("INSERT INTO t VALUES(:name, :age)", map[string]any{":name": "fiona", "age": 20})},
			`[["INSERT INTO t VALUES(:name, :age)",{"age":20,"name":"fiona"}]]`},
		{[]Statement{SQL("SELECT 1"), Named("SELECT 2", nil), SQL(`x"<y>`, "a\nb")},
			`["SELECT 1","SELECT 2",["x\"\u003cy\u003e","a\nb"]]`},
	}
	for _, tt := range tests {
		got, err := encodeStatements(tt.stmts)
		if err != nil {
			t.Errorf("%v: %v", tt.stmts, err)
			continue
		}
		if string(got) != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
		if !json.Valid(got) {
			t.Errorf("invalid JSON %s", got)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	bad := map[string]Statement{
		"empty SQL":       SQL("  "),
		"both":            {SQL: "x", Args: []any{1}, NamedArgs: map[string]any{"a": 1}},
		"uint64 overflow": SQL("?", uint64(math.MaxUint64)),
		"NaN":             SQL("?", math.NaN()),
		"Inf":             SQL("?", math.Inf(1)),
		"struct":          SQL("?", struct{}{}),
		"slice":           SQL("?", []int{1}),
		"invalid UTF-8":   SQL("?", "\xff"),
		"bad number":      SQL("?", json.Number("Inf")),
		"duplicate name":  Named("x", map[string]any{":a": 1, "a": 2}),
		"empty name":      Named("x", map[string]any{":": 1}),
	}
	for name, st := range bad {
		if _, err := encodeStatements([]Statement{st}); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "statement 0") {
			t.Errorf("%s: error %q does not name the statement", name, err)
		}
	}
	if _, err := encodeStatements(nil); err != errNoStatements {
		t.Errorf("no statements: %v", err)
	}
}
