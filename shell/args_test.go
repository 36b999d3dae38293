package shell

import (
	"reflect"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{in: "", want: []string{}},
		{in: "  a  b\tc ", want: []string{"a", "b", "c"}},
		{in: `'a b' "c d"`, want: []string{"a b", "c d"}},
		{in: `a\ b`, want: []string{"a b"}},
		{in: `"it's" 'say "hi"'`, want: []string{"it's", `say "hi"`}},
		{in: `"a\"b"`, want: []string{`a"b`}},
		{in: `'a\b'`, want: []string{`a\b`}},
		{in: "a;", want: []string{"a"}},
		{in: "a ; ", want: []string{"a"}},
		{in: "a;;", want: []string{"a"}},
		{in: "a;b", want: []string{"a;b"}},
		{in: "a ;b", want: []string{"a", ";b"}},
		{in: "'a;'", want: []string{"a;"}},
		{in: "a|b&c<d>e", want: []string{"a|b&c<d>e"}},
		{in: "f(x) $(rm -rf /) `id`", want: []string{"f(x)", "$(rm", "-rf", "/)", "`id`"}},
		{in: "$HOME ${HOME}", want: []string{"$HOME", "${HOME}"}},
		{in: "'unclosed", err: true},
		{in: `"unclosed`, err: true},
		{in: "zoë '日本 語'", want: []string{"zoë", "日本 語"}},
	}
	for _, tt := range tests {
		got, err := splitArgs(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("splitArgs(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
