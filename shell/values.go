package shell

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// formatFloat writes a REAL the way SQLite's shell does: the shortest exact
// form, always with a decimal point or exponent so it reads as a REAL.
func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	}
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eE") {
		s += ".0"
	}
	return s
}

// formatValue is the text of a non-NULL value in the text output modes. A
// BLOB is shown as an SQL blob literal, x'0102'.
func formatValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return formatFloat(v)
	case []byte:
		return "x'" + hex.EncodeToString(v) + "'"
	case bool:
		return strconv.FormatBool(v)
	default:
		return fmt.Sprint(v)
	}
}

// isNumber reports whether v is an INTEGER or REAL.
func isNumber(v any) bool {
	switch v.(type) {
	case int64, float64:
		return true
	}
	return false
}

// escapeControl makes control characters visible so that a value stays on
// one line of a table: newline, carriage return and tab as \n, \r and \t,
// the others as \xNN.
func escapeControl(s string) string {
	if !strings.ContainsFunc(s, isControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case isControl(r):
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
