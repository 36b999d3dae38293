package shell

import (
	"errors"
	"strings"

	"github.com/mattn/go-shellwords"
)

// splitArgs splits a dot-command line into its words with shell quoting
// rules: 'single' and "double" quotes and backslash escapes. Nothing is
// expanded or run: no environment variables, no backticks, no $(...).
//
// go-shellwords v1.0.12 has no way to turn its separators off: it stops at an
// unquoted ; & | < or >, and treats ( ) and ` specially. None of them means
// anything in a dot-command, so they are escaped here before parsing, which
// makes them ordinary characters (".tables a|b" is the pattern "a|b"). A
// trailing unquoted ';', which people type out of SQL habit, is dropped.
func splitArgs(line string) ([]string, error) {
	p := shellwords.NewParser()
	p.ParseEnv = false
	p.ParseBacktick = false
	args, err := p.Parse(escapeSeparators(line))
	if err != nil {
		return nil, errors.New("unbalanced quotes")
	}
	return args, nil
}

// escapeSeparators backslash-escapes the characters go-shellwords would
// otherwise interpret, outside quotes, and drops trailing unquoted ';'s.
func escapeSeparators(line string) string {
	line = strings.TrimRight(line, " \t\r\n")
	var b strings.Builder
	var single, double, escaped bool
	// end is the length of b up to the last character that is not an
	// unquoted ';' or white space after one, to drop trailing semicolons.
	end := 0
	for _, r := range line {
		switch {
		case escaped:
			escaped = false
		case single:
			single = r != '\''
		case r == '\\':
			escaped = true
		case double:
			double = r != '"'
		case r == '\'':
			single = true
		case r == '"':
			double = true
		case strings.ContainsRune(";&|<>()`", r):
			if r == ';' {
				b.WriteString(`\;`)
				continue
			}
			b.WriteByte('\\')
		case r == ' ' || r == '\t':
			b.WriteRune(r)
			continue
		}
		b.WriteRune(r)
		end = b.Len()
	}
	out := b.String()
	// Keep an escaped ';' that is followed by something else.
	if tail := out[end:]; strings.Trim(tail, `\; `+"\t") == "" {
		out = out[:end]
	}
	return out
}
