package shell

import (
	"bytes"
	"math"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

func renderString(t *testing.T, rs resultSet, o renderOptions) string {
	t.Helper()
	var b bytes.Buffer
	if err := render(&b, rs, o); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestFitWidths(t *testing.T) {
	tests := []struct {
		natural []int
		total   int
		want    []int
	}{
		{[]int{2, 5}, 80, []int{2, 5}},
		{[]int{2, 5}, 14, []int{2, 5}},                 // exactly fits: 2+5 + 3*2+1
		{[]int{10, 10}, 17, []int{5, 5}},               // shared evenly
		{[]int{2, 30, 10}, 30, []int{2, 9, 9}},         // the widest give way first
		{[]int{2, 30, 10}, 40, []int{2, 18, 10}},       // the narrow ones keep their width
		{[]int{2, 30, 10}, 10, []int{2, 3, 3}},         // below the minimum: minimums
		{[]int{1, 40, 40}, 40, []int{1, 15, 14}},       // the remainder goes left to right
		{[]int{20, 20, 20, 20}, 45, []int{8, 8, 8, 8}}, // 45 - 13 = 32
	}
	for _, tt := range tests {
		got := fitWidths(tt.natural, tt.total)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("fitWidths(%v, %d) = %v, want %v", tt.natural, tt.total, got, tt.want)
		}
		sum := 3*len(got) + 1
		for _, w := range got {
			sum += w
		}
		if sum > tt.total && !reflect.DeepEqual(got, minWidths(tt.natural)) {
			t.Errorf("fitWidths(%v, %d) = %v is %d wide", tt.natural, tt.total, got, sum)
		}
	}
}

func minWidths(natural []int) []int {
	out := make([]int, len(natural))
	for i, w := range natural {
		out[i] = min(w, 3)
	}
	return out
}

func TestTableFitsWidthWithWideCharacters(t *testing.T) {
	rs := resultSet{
		columns: []string{"名前", "note"},
		rows: [][]any{
			{"日本語のテキストです", "a long note that has to be cut short"},
			{"zoë", nil},
		},
	}
	out := renderString(t, rs, renderOptions{mode: modeTable, headers: true, null: "NULL", width: 30})
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if w := cellWidth.StringWidth(line); w != 30 {
			t.Errorf("line %q is %d columns wide, want 30", line, w)
		}
	}
	if !strings.Contains(out, "…") {
		t.Errorf("no ellipsis in a cut table:\n%s", out)
	}
}

func TestRenderModes(t *testing.T) {
	rs := resultSet{
		columns: []string{"id", "name", "blob"},
		rows:    [][]any{{int64(1), "a,\"b\"", []byte{0xde, 0xad}}, {int64(2), nil, nil}},
	}
	tests := []struct {
		o    renderOptions
		want string
	}{
		{renderOptions{mode: modeCSV, headers: true, null: "NULL"}, "id,name,blob\n1,\"a,\"\"b\"\"\",x'dead'\n2,,\n"},
		{renderOptions{mode: modeCSV, null: "-", nullSet: true}, "1,\"a,\"\"b\"\"\",x'dead'\n2,-,-\n"},
		{renderOptions{mode: modeJSON}, "[{\"id\":1,\"name\":\"a,\\\"b\\\"\",\"blob\":\"x'dead'\"},\n{\"id\":2,\"name\":null,\"blob\":null}]\n"},
		{renderOptions{mode: modeLine, null: "NULL"}, "  id = 1\nname = a,\"b\"\nblob = x'dead'\n\n  id = 2\nname = NULL\nblob = NULL\n"},
		{renderOptions{mode: modeMarkdown, null: ""}, "| id  | name  | blob    |\n| --: | ----- | ------- |\n|   1 | a,\"b\" | x'dead' |\n|   2 |       |         |\n"},
	}
	for _, tt := range tests {
		if got := renderString(t, rs, tt.o); got != tt.want {
			t.Errorf("mode %s:\n%s\nwant:\n%s", tt.o.mode, got, tt.want)
		}
	}
}

func TestFormatValue(t *testing.T) {
	tests := []struct {
		v    any
		want string
	}{
		{int64(-5), "-5"},
		{1.0, "1.0"},
		{0.1, "0.1"},
		{"s", "s"},
		{[]byte{}, "x''"},
		{true, "true"},
	}
	for _, tt := range tests {
		if got := formatValue(tt.v); got != tt.want {
			t.Errorf("formatValue(%#v) = %q, want %q", tt.v, got, tt.want)
		}
	}
	if got := escapeControl("a\nb\tc\x01"); got != `a\nb\tc\x01` {
		t.Errorf("escapeControl = %q", got)
	}
}

// sqlite3Reals are REALs and how sqlite3 3.40.1 prints them ("%!.15g"),
// taken from `sqlite3 :memory: "SELECT ..."`.
var sqlite3Reals = []struct {
	v    float64
	want string
}{
	{175017500.0, "175017500.0"},
	{1e21, "1.0e+21"},
	{0.1, "0.1"},
	{1.0 / 3, "0.333333333333333"},
	{1e15, "1.0e+15"},
	{1e14, "100000000000000.0"},
	{123456789012345678.0, "1.23456789012346e+17"},
	{12345678901234567.0, "1.23456789012346e+16"},
	{0.0001, "0.0001"},
	{0.00001, "1.0e-05"},
	{math.Copysign(0, -1), "0.0"},
	{1e-7, "1.0e-07"},
	{2.5e-5, "2.5e-05"},
	{0.30000000000000004, "0.3"},
	{100.0, "100.0"},
	{-1.5, "-1.5"},
	{999999999999999.9, "1.0e+15"},
	{math.Inf(1), "Inf"},
	{math.Inf(-1), "-Inf"},
}

func TestFormatFloatAsSQLite3(t *testing.T) {
	for _, tt := range sqlite3Reals {
		if got := formatFloat(tt.v); got != tt.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

// TestFormatFloatMatchesLocalSQLite3 compares with the sqlite3 on this
// machine, when there is one.
func TestFormatFloatMatchesLocalSQLite3(t *testing.T) {
	bin, err := exec.LookPath("sqlite3")
	if err != nil {
		t.Skip("no sqlite3 here")
	}
	var exprs []string
	for _, tt := range sqlite3Reals {
		if !math.IsInf(tt.v, 0) {
			exprs = append(exprs, formatReal(tt.v, -1)) // an exact REAL literal
		}
	}
	out, err := exec.Command(bin, ":memory:", "SELECT "+strings.Join(exprs, ", ")).Output()
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "|")
	for i, tt := range sqlite3Reals[:len(exprs)] {
		if i < len(got) && got[i] != formatFloat(tt.v) {
			t.Errorf("sqlite3 prints %s as %q, the shell as %q", exprs[i], got[i], formatFloat(tt.v))
		}
	}
}

func TestFormatRealForJSONIsExact(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		want string
	}{{175017500.0, "175017500.0"}, {0.30000000000000004, "0.30000000000000004"}, {1e21, "1.0e+21"}, {1e-7, "1.0e-07"}, {2, "2.0"}} {
		if got := formatReal(tt.v, -1); got != tt.want {
			t.Errorf("formatReal(%v, -1) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestHistoryEntry(t *testing.T) {
	tests := []struct {
		lines []string
		want  string
	}{
		{[]string{"SELECT 1;"}, "SELECT 1;"},
		{[]string{"SELECT a,", "  b -- the b; column", "FROM t;"}, "SELECT a,␤  b -- the b; column␤FROM t;"},
		{[]string{"INSERT INTO t VALUES ('x", "", "  y  ');"}, "INSERT INTO t VALUES ('x␤␤  y  ');"},
		{[]string{"  .mode  csv "}, ".mode  csv"},
		{[]string{"SELECT 'open"}, "SELECT 'open"},
	}
	for _, tt := range tests {
		got := historyEntry(tt.lines)
		if got != tt.want {
			t.Errorf("historyEntry(%q) = %q, want %q", tt.lines, got, tt.want)
		}
		if back := fromHistory(got); back != strings.TrimSpace(strings.Join(tt.lines, "\n")) {
			t.Errorf("fromHistory(%q) = %q: not the lines typed", got, back)
		}
	}
}

func TestCompleteDot(t *testing.T) {
	if got := completeDot(".st"); !reflect.DeepEqual(got, []string{".status", ".stepdown"}) {
		t.Errorf("completeDot(.st) = %q", got)
	}
	if got := completeDot(".q"); !reflect.DeepEqual(got, []string{".quit"}) {
		t.Errorf("completeDot(.q) = %q", got)
	}
	if got := completeDot("SELECT"); got != nil {
		t.Errorf("completeDot(SELECT) = %q", got)
	}
}
