package fsm

import (
	"errors"
	"strings"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrClosed is returned by operations on a closed FSM.
var ErrClosed = errors.New("fsm: closed")

// sqliteCode returns the primary SQLite result code of err, or 0 when err
// does not come from SQLite.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// environmental reports whether err is a failure of this node's environment
// (disk, memory, locks, a damaged file) rather than an outcome of the
// statement itself. Such an error must never become a statement result: the
// other replicas would not see it, and the database would diverge. The
// converse matters as much: an error every replica sees alike must not be
// classed here, or one client statement would halt the whole cluster.
func environmental(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code() & 0xff {
	case sqlite3.SQLITE_PERM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM,
		sqlite3.SQLITE_INTERRUPT, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_FULL,
		sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PROTOCOL, sqlite3.SQLITE_NOTADB:
		return true
	case sqlite3.SQLITE_READONLY:
		// The extended codes say the file cannot be written (moved,
		// read-only file system, ...); the plain code comes from a
		// read-only virtual table, alike everywhere.
		return se.Code() != sqlite3.SQLITE_READONLY
	}
	return false
}

// errorText returns the message rqlite would report for err: SQLite's own
// message, such as "no such table: bar". The driver decorates it as
// "SQL logic error: no such table: bar (1)": the generic text of the result
// code before the first ": " and the numeric code at the end are removed.
// (The generic texts, sqlite3_errstr, never contain ": ".)
func errorText(err error) string {
	msg := err.Error()
	if sqliteCode(err) == 0 {
		return msg
	}
	msg = strings.TrimSuffix(msg, " (SQLITE_BUSY)")
	if i := strings.LastIndex(msg, " ("); i >= 0 && strings.HasSuffix(msg, ")") && isDigits(msg[i+2:len(msg)-1]) {
		msg = msg[:i]
	}
	if _, detail, ok := strings.Cut(msg, ": "); ok {
		msg = detail
	}
	return msg
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// errorText is the statement error message for err, which preparing or
// running a statement under g returned: a refusal by g carries g's reason,
// and a write stopped by query_only on a read connection gets rqlite's
// message for writes through a query.
func (g *guard) errorText(err error) string {
	switch code := sqliteCode(err); {
	case code == sqlite3.SQLITE_AUTH && g.denied != "":
		return g.denied
	case code == sqlite3.SQLITE_READONLY && g.mode == modeReadOnly:
		return errReadOnly
	}
	return errorText(err)
}
