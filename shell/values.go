package shell

import (
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// sqliteDigits is the precision sqlite3's shell prints REALs with: it
// formats them with SQLite's "%!.15g".
const sqliteDigits = 15

// formatFloat writes a REAL as sqlite3 prints it ("%!.15g"): 15 significant
// digits, trailing zeros dropped, plain notation for decimal exponents from
// -4 to 14 and scientific notation outside it, and always a decimal point so
// that it reads as a REAL: 175017500.0, 0.333333333333333, 1.0e+21, 1.0e-05.
func formatFloat(f float64) string { return formatReal(f, sqliteDigits) }

// formatReal formats f in the style of SQLite's "%!.Ng" with N significant
// digits, or the fewest digits that read back as f exactly when digits is
// -1 (JSON output keeps every value exact).
func formatReal(f float64, digits int) string {
	switch {
	case math.IsInf(f, 1):
		return "Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	case math.IsNaN(f):
		return "NaN"
	case f == 0:
		return "0.0" // sqlite3 prints -0.0 as 0.0 too
	}
	prec := digits - 1
	if digits < 0 {
		prec = -1
	}
	// The exponent after rounding to the digits kept: 9.9999999999999999e14
	// rounds up to 1.0e+15.
	sci := strconv.FormatFloat(f, 'e', prec, 64)
	mant, expText, _ := strings.Cut(sci, "e")
	exp, _ := strconv.Atoi(expText) // FormatFloat writes a valid exponent
	limit := digits
	if digits < 0 {
		limit = 21 // where JavaScript and SQLite's JSON switch notation too
	}
	if exp < -4 || exp >= limit {
		sign := "+"
		if exp < 0 {
			sign, exp = "-", -exp
		}
		return withPoint(mant) + fmt.Sprintf("e%s%02d", sign, exp)
	}
	fixedPrec := -1
	if digits >= 0 {
		fixedPrec = max(digits-1-exp, 0)
	}
	return withPoint(strconv.FormatFloat(f, 'f', fixedPrec, 64))
}

// withPoint drops the trailing zeros of a decimal fraction and makes sure
// one digit follows the point: "1.500" is "1.5", "3" is "3.0".
func withPoint(s string) string {
	if !strings.Contains(s, ".") {
		return s + ".0"
	}
	s = strings.TrimRight(s, "0")
	if strings.HasSuffix(s, ".") {
		s += "0"
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
