package fsm

import (
	"fmt"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
)

// Values in results follow rqlite's typing rules exactly, so that rqlite's
// clients decode them as they do against rqlite. rqlite reads rows through
// its SQLite driver (a mattn/go-sqlite3 fork, rqlite/go-sqlite3, rows.Next)
// and then normalizes them (rqlite db/db.go, normalizeRowValues and
// populateEmptyTypes). The rules, by the column's declared type lower-cased
// and the value's storage class:
//
//   - "date", "datetime", "timestamp" (exactly), INTEGER: a Unix time in
//     seconds, or in milliseconds when its magnitude exceeds 1e12, rendered
//     as RFC 3339 text in UTC (time.Time.MarshalText: RFC3339Nano).
//   - the same types, TEXT: parsed with the driver's formats (trailing "Z"
//     dropped, UTC unless the text has an offset) and rendered the same way;
//     text that does not parse becomes the zero time, 0001-01-01T00:00:00Z.
//   - "boolean" (exactly), INTEGER: true when the value is above 0.
//   - BLOB in a column of text affinity as rqlite reckons it ("", "text",
//     "json", varchar..., nchar..., clob...): the bytes as a string. So
//     SELECT x'0102' (no declared type) answers the two-character string.
//   - anything else as stored: integer, real, text, blob.
//
// A column without a declared type takes the type of its value in the first
// row (integer, real, text, blob, boolean), "" for NULL or no row.
//
// The driver here (modernc.org/sqlite) parses TEXT of DATE, DATETIME and
// TIMESTAMP columns itself, with the same formats plus Go's time.String
// form, and hands back a time.Time, or the text when it does not parse.
// Text in that one extra form therefore renders as its time here and as
// the zero time in rqlite.

// isTimeType reports whether rqlite's driver turns values of columns of
// declared type declType into times.
func isTimeType(declType string) bool {
	switch declType {
	case "date", "datetime", "timestamp":
		return true
	}
	return false
}

// timestampFormats are rqlite's driver's formats for TEXT times
// (SQLiteTimestampFormats), tried in order.
var timestampFormats = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// isTextType reports whether rqlite treats a BLOB in a column of declared
// type t (lower case) as text.
func isTextType(t string) bool {
	if t == "text" || t == "json" || t == "" {
		return true
	}
	for _, p := range []string{"varchar", "varying character", "nchar", "native character", "nvarchar", "clob"} {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// rqliteValue converts a value the driver scanned from a column of declared
// type declType (lower case) to the value rqlite answers.
func rqliteValue(v any, declType string) (api.Value, error) {
	switch v := v.(type) {
	case nil, float64:
		return v, nil
	case int64:
		switch {
		case isTimeType(declType):
			return timeText(unixTime(v))
		case declType == "boolean":
			return v > 0, nil
		}
		return v, nil
	case string:
		if isTimeType(declType) {
			return timeText(parseTimestamp(v))
		}
		return v, nil
	case time.Time:
		return timeText(v)
	case []byte:
		if isTextType(declType) {
			return string(v), nil
		}
		return v, nil
	case bool:
		return v, nil
	}
	return nil, fmt.Errorf("unexpected value type %T", v)
}

// unixTime reads an INTEGER as rqlite's driver does: seconds, or
// milliseconds when too large to be seconds, in UTC.
func unixTime(v int64) time.Time {
	if v > 1e12 || v < -1e12 {
		return time.Unix(0, v*int64(time.Millisecond)).UTC()
	}
	return time.Unix(v, 0).UTC()
}

// parseTimestamp parses TEXT as rqlite's driver does; the zero time when no
// format fits.
func parseTimestamp(s string) time.Time {
	s = strings.TrimSuffix(s, "Z")
	for _, f := range timestampFormats {
		if t, err := time.ParseInLocation(f, s, time.UTC); err == nil {
			return t
		}
	}
	return time.Time{}
}

// timeText renders t as rqlite does (time.Time.MarshalText, whose error for
// a year outside 0-9999 fails the statement there as here).
func timeText(t time.Time) (api.Value, error) {
	b, err := t.MarshalText()
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// valueType names the type rqlite gives a column without a declared type,
// from its value in the first row.
func valueType(v api.Value) string {
	switch v.(type) {
	case int64:
		return "integer"
	case float64:
		return "real"
	case bool:
		return "boolean"
	case string:
		return "text"
	case []byte:
		return "blob"
	}
	return ""
}
