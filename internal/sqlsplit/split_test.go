package sqlsplit

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
		rest string
		kind State
	}{
		{name: "empty", in: "", kind: Empty},
		{name: "white space", in: "  \n\t ", rest: "  \n\t ", kind: Empty},
		{name: "one", in: "SELECT 1;", want: []string{"SELECT 1"}},
		{name: "no terminator", in: "SELECT 1", rest: "SELECT 1", kind: Unterminated},
		{name: "two on a line", in: "SELECT 1; SELECT 2;", want: []string{"SELECT 1", "SELECT 2"}},
		{name: "second unfinished", in: "SELECT 1; SELECT", want: []string{"SELECT 1"}, rest: " SELECT", kind: Unterminated},
		{name: "spans lines", in: "SELECT\n  1\n;\n", want: []string{"SELECT\n  1"}, rest: "\n"},
		{name: "empty statements", in: ";; ;\n;", want: nil},
		{name: "single quotes", in: "SELECT 'a;b';", want: []string{"SELECT 'a;b'"}},
		{name: "doubled single quote", in: "SELECT 'it''s;';", want: []string{"SELECT 'it''s;'"}},
		{name: "double quotes", in: `SELECT "a;""b";`, want: []string{`SELECT "a;""b"`}},
		{name: "backticks", in: "SELECT `a;``b`;", want: []string{"SELECT `a;``b`"}},
		{name: "brackets", in: "SELECT [a;b];", want: []string{"SELECT [a;b]"}},
		{name: "bracket has no escape", in: "SELECT [a]];", want: []string{"SELECT [a]]"}, kind: Empty},
		{name: "open single quote", in: "SELECT 'a;\n", rest: "SELECT 'a;\n", kind: Open},
		{name: "open double quote", in: `SELECT "a;`, rest: `SELECT "a;`, kind: Open},
		{name: "open bracket", in: "SELECT [a;", rest: "SELECT [a;", kind: Open},
		{name: "open backtick", in: "SELECT `a;", rest: "SELECT `a;", kind: Open},
		{name: "quote closes on a later line", in: "SELECT 'a\nb;';", want: []string{"SELECT 'a\nb;'"}},
		{name: "line comment", in: "SELECT 1 -- no; end\n;", want: []string{"SELECT 1 -- no; end"}},
		{name: "line comment at the end", in: "SELECT 1; -- done;", want: []string{"SELECT 1"}, rest: " -- done;", kind: Empty},
		{name: "comment only", in: "-- nothing;\n", rest: "-- nothing;\n", kind: Empty},
		{name: "block comment", in: "SELECT /* ; */ 1;", want: []string{"SELECT /* ; */ 1"}},
		{name: "block comment only", in: "/* ; */;", want: nil},
		{name: "open block comment", in: "SELECT 1 /* ;", rest: "SELECT 1 /* ;", kind: Open},
		{name: "open block comment alone", in: "/* ;", rest: "/* ;", kind: Open},
		{name: "dash inside a word", in: "SELECT 1-2;", want: []string{"SELECT 1-2"}},
		{name: "slash alone", in: "SELECT 4/2;", want: []string{"SELECT 4/2"}},
		{name: "quote in a comment", in: "SELECT 1 -- it's\n;", want: []string{"SELECT 1 -- it's"}},
		{name: "comment marker in a string", in: "SELECT '--';", want: []string{"SELECT '--'"}},
		{
			name: "trigger",
			in:   "CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); DELETE FROM c; END; SELECT 1;",
			want: []string{"CREATE TRIGGER t AFTER INSERT ON a BEGIN INSERT INTO b VALUES (1); DELETE FROM c; END", "SELECT 1"},
		},
		{
			name: "trigger unfinished",
			in:   "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n INSERT INTO b VALUES (1);\n",
			rest: "CREATE TRIGGER t AFTER INSERT ON a BEGIN\n INSERT INTO b VALUES (1);\n",
			kind: Open,
		},
		{
			name: "trigger before its body",
			in:   "CREATE TRIGGER t AFTER INSERT ON a",
			rest: "CREATE TRIGGER t AFTER INSERT ON a",
			kind: Open,
		},
		{
			name: "trigger with CASE ... END inside",
			in:   "CREATE TRIGGER t AFTER UPDATE ON a BEGIN UPDATE b SET x = CASE WHEN 1 THEN 2 ELSE 3 END; END;",
			want: []string{"CREATE TRIGGER t AFTER UPDATE ON a BEGIN UPDATE b SET x = CASE WHEN 1 THEN 2 ELSE 3 END; END"},
		},
		{
			name: "trigger, temp, lower case, comments between ; and end",
			in:   "create temp trigger t after delete on a begin select 1; -- x;\n /* ; */ end /* c */ ;",
			want: []string{"create temp trigger t after delete on a begin select 1; -- x;\n /* ; */ end /* c */"},
		},
		{
			name: "TEMPORARY trigger",
			in:   "CREATE TEMPORARY TRIGGER t AFTER DELETE ON a BEGIN SELECT 1; END;",
			want: []string{"CREATE TEMPORARY TRIGGER t AFTER DELETE ON a BEGIN SELECT 1; END"},
		},
		{
			name: "EXPLAIN trigger",
			in:   "EXPLAIN QUERY PLAN CREATE TRIGGER t AFTER DELETE ON a BEGIN SELECT 1; END;",
			want: []string{"EXPLAIN QUERY PLAN CREATE TRIGGER t AFTER DELETE ON a BEGIN SELECT 1; END"},
		},
		{
			name: "trigger with a quoted END",
			in:   `CREATE TRIGGER t AFTER DELETE ON a BEGIN SELECT 1; "END"; SELECT 2; END;`,
			want: []string{`CREATE TRIGGER t AFTER DELETE ON a BEGIN SELECT 1; "END"; SELECT 2; END`},
		},
		{
			name: "an END word that is not alone",
			in:   "CREATE TRIGGER t AFTER DELETE ON a BEGIN SELECT 1; END_DATE; END;",
			want: []string{"CREATE TRIGGER t AFTER DELETE ON a BEGIN SELECT 1; END_DATE; END"},
		},
		{name: "transaction BEGIN is no body", in: "BEGIN; SELECT 1; END;", want: []string{"BEGIN", "SELECT 1", "END"}},
		{name: "trigger as a name", in: "CREATE TABLE trigger_log (x); SELECT 1;", want: []string{"CREATE TABLE trigger_log (x)", "SELECT 1"}},
		{name: "CREATE TABLE named trigger", in: `CREATE TABLE "trigger" (x);`, want: []string{`CREATE TABLE "trigger" (x)`}},
		{name: "view mentioning trigger", in: "CREATE VIEW v AS SELECT trigger FROM t; SELECT 1;", want: []string{"CREATE VIEW v AS SELECT trigger FROM t", "SELECT 1"}},
		{name: "UTF-8", in: "SELECT 'zoë;日本';SELECT 2;", want: []string{"SELECT 'zoë;日本'", "SELECT 2"}},
		{name: "CRLF", in: "SELECT 1;\r\nSELECT 2;\r\n", want: []string{"SELECT 1", "SELECT 2"}, rest: "\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stmts, rest, kind := Split(tt.in)
			var got []string
			for _, s := range stmts {
				got = append(got, s.SQL)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("statements = %q, want %q", got, tt.want)
			}
			if kind != tt.kind {
				t.Errorf("kind = %d, want %d", kind, tt.kind)
			}
			if tt.rest != "" && rest != tt.rest {
				t.Errorf("rest = %q, want %q", rest, tt.rest)
			}
		})
	}
}

func TestSplitStatementLines(t *testing.T) {
	in := "SELECT 1;\n\n-- comment\nSELECT\n 2; SELECT 3;\n/* x\n*/ SELECT 4;"
	stmts, _, _ := Split(in)
	var lines []int
	for _, s := range stmts {
		lines = append(lines, s.Line)
	}
	if want := []int{1, 4, 5, 7}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines = %v, want %v", lines, want)
	}
}

// TestSplitIncrementally feeds text line by line, as the shell does, and
// checks that the statements come out the same as in one go.
func TestSplitIncrementally(t *testing.T) {
	text := strings.Join([]string{
		"CREATE TRIGGER t AFTER INSERT ON a",
		"BEGIN",
		"  INSERT INTO log VALUES ('x;y');",
		"END;",
		"SELECT 'multi",
		"line'; SELECT 2",
		";",
		"/* c",
		"; */ SELECT 3;",
	}, "\n")
	whole, _, _ := Split(text + "\n")
	var got []string
	pending := ""
	for _, line := range strings.Split(text, "\n") {
		pending += line + "\n"
		stmts, rest, _ := Split(pending)
		for _, s := range stmts {
			got = append(got, s.SQL)
		}
		pending = rest
	}
	var want []string
	for _, s := range whole {
		want = append(want, s.SQL)
	}
	if !reflect.DeepEqual(got, want) || len(want) != 4 {
		t.Errorf("incrementally %q\nat once %q", got, want)
	}
}
