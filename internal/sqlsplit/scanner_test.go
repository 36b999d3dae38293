package sqlsplit

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// scanAll reads every statement of in, one byte at a time so that nothing
// depends on read sizes.
func scanAll(t *testing.T, in string) ([]Statement, Rest) {
	t.Helper()
	s := NewScanner(iotest.OneByteReader(strings.NewReader(in)))
	var out []Statement
	for {
		st, err := s.Next()
		if err == io.EOF {
			return out, s.Rest()
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, st)
	}
}

func TestScannerDropsComments(t *testing.T) {
	stmts, rest := scanAll(t, "-- c\nCREATE /* x; */ TABLE t (x); -- y;\nINSERT INTO t\nVALUES ('--;') -- z")
	want := []Statement{
		{SQL: "CREATE   TABLE t (x)", Line: 2, Head: []string{"CREATE", "TABLE", "T", "X"}},
	}
	if !reflect.DeepEqual(stmts, want) {
		t.Errorf("statements = %#v, want %#v", stmts, want)
	}
	wantRest := Statement{SQL: "INSERT INTO t\nVALUES ('--;')", Line: 3, Head: []string{"INSERT", "INTO", "T", "VALUES"}}
	if rest.State != Unterminated || !reflect.DeepEqual(rest.Stmt, wantRest) {
		t.Errorf("rest = %#v, want %#v", rest, wantRest)
	}
}

func TestScannerOpenRest(t *testing.T) {
	for _, tt := range []struct {
		in       string
		quote    byte
		comment  bool
		openLine int
		stmtLine int
	}{
		{in: "SELECT 1;\nSELECT 'a\n\n", quote: '\'', openLine: 2, stmtLine: 2},
		{in: "SELECT 1;\n\nSELECT [a", quote: '[', openLine: 3, stmtLine: 3},
		{in: "SELECT 1; /* open\n", comment: true, openLine: 1},
		{in: "SELECT 1;\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;\n", stmtLine: 2},
	} {
		_, rest := scanAll(t, tt.in)
		if rest.State != Open || rest.Quote != tt.quote || rest.Comment != tt.comment ||
			rest.OpenLine != tt.openLine || rest.Stmt.Line != tt.stmtLine {
			t.Errorf("%q: rest = %#v", tt.in, rest)
		}
	}
}

func TestScannerReadError(t *testing.T) {
	boom := errors.New("boom")
	s := NewScanner(io.MultiReader(strings.NewReader("SELECT 1;\nSELECT"), iotest.ErrReader(boom)))
	if st, err := s.Next(); err != nil || st.SQL != "SELECT 1" {
		t.Fatalf("first = %q, %v", st.SQL, err)
	}
	if _, err := s.Next(); !errors.Is(err, boom) || s.Line() != 2 {
		t.Errorf("second: %v at line %d, want boom at line 2", err, s.Line())
	}
}

func TestTokens(t *testing.T) {
	sql := "SELECT a1, 'x;y' -- c\n FROM [t];"
	toks, open := Tokens(sql)
	var got []string
	for _, tk := range toks {
		got = append(got, sql[tk.Start:tk.End])
	}
	if want := []string{"SELECT", "a1", ",", "'x;y'", "FROM", "[t]", ";"}; open || !reflect.DeepEqual(got, want) {
		t.Errorf("tokens = %q (open %v), want %q", got, open, want)
	}
	if toks[4].Kind != Word || toks[4].Line != 2 || toks[3].Kind != Quoted || toks[6].Kind != Semi || toks[2].Kind != Other {
		t.Errorf("kinds or lines wrong: %+v", toks)
	}
	if _, open := Tokens("SELECT 'a"); !open {
		t.Error("an unclosed quote is not open")
	}
}
