package fsm

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	"modernc.org/sqlite"
)

// Deterministic apply.
//
// Statements are replicated, not their effects, so every function whose
// result depends on the clock or on chance would make replicas diverge:
// random(), randomblob(N), and the date and time functions when they read
// the current time ('now', no time value, CURRENT_TIMESTAMP, CURRENT_DATE,
// CURRENT_TIME, which SQLite implements as functions of those names). The
// write connection therefore comes from a driver of its own (writeDriver)
// that overrides exactly these functions on that connection: SQLite looks
// application-defined functions up before its built-ins, at run time, so
// the overrides are used wherever the functions appear, including DEFAULT
// clauses and trigger bodies. Read connections come from the ordinary
// driver and keep real time and real randomness.
//
// The overrides evaluate against the entry being applied (apply.go sets it
// per entry): its Timestamp is the leader's clock when it proposed the
// entry, and random values come from a PRNG seeded from the entry's Seed
// and index, advanced on every call, so that each row gets a different
// value and every replica the same sequence.
//
// The date and time functions keep SQLite's own semantics: the override
// replaces only the time value 'now' (and SQLite's 'subsec' shorthand for
// it), or the missing one, by the entry's timestamp as text
// 'YYYY-MM-DD HH:MM:SS.SSS' (SQLite's 'now' has millisecond precision too),
// and calls the built-in of the same name on a private in-memory connection
// of the ordinary driver. Arguments that do not read the clock are passed
// through unchanged, so such calls return exactly what SQLite returns. The
// 'localtime' and 'utc' modifiers depend on the node's time zone and are
// refused on the write path.

// timeFuncs are SQLite's date and time functions. timeValueArg is the
// position of the time value among their arguments.
var timeFuncs = []struct {
	name         string
	timeValueArg int // -1: the function takes no arguments and reads the clock
	builtin      string
}{
	{"date", 0, "date"},
	{"time", 0, "time"},
	{"datetime", 0, "datetime"},
	{"julianday", 0, "julianday"},
	{"unixepoch", 0, "unixepoch"},
	{"strftime", 1, "strftime"},
	{"timediff", 0, "timediff"},
	{"current_timestamp", -1, "datetime"},
	{"current_date", -1, "date"},
	{"current_time", -1, "time"},
}

// tzModifiers are the modifiers whose result depends on the node's time
// zone.
var tzModifiers = map[string]bool{"localtime": true, "utc": true}

// detState is the per-FSM state of the overrides: the entry being applied
// and the helper connection that evaluates the built-ins. Only the apply
// path (Raft's FSM goroutine) uses it, except open/close.
type detState struct {
	mu     sync.Mutex // guards helper and stmts against open/close
	active bool
	ts     int64  // the entry's timestamp, Unix nanoseconds
	tsText string // ts as SQLite time text
	rng    uint64 // splitmix64 state

	helper *sql.DB
	stmts  map[string]*sql.Stmt
}

// begin makes the overrides evaluate against e.
func (d *detState) begin(e entry) {
	d.active = true
	d.ts = e.Timestamp
	d.tsText = time.Unix(0, e.Timestamp).UTC().Format("2006-01-02 15:04:05.000")
	d.rng = e.Seed ^ (e.Index * 0x9E3779B97F4A7C15)
}

// end stops the overrides from working until the next begin.
func (d *detState) end() { d.active = false }

// next returns the next PRNG value (splitmix64).
func (d *detState) next() uint64 {
	d.rng += 0x9E3779B97F4A7C15
	z := d.rng
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

var errNoEntry = errors.New("time and random functions are only available while applying a log entry")

// random is SQLite's random(): a signed 64-bit integer, never the most
// negative one (so that abs(random()) cannot overflow).
func (d *detState) random(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
	if !d.active {
		return nil, errNoEntry
	}
	r := int64(d.next())
	if r < 0 {
		r = -(r & math.MaxInt64)
	}
	return r, nil
}

// maxBlob is SQLite's default SQLITE_MAX_LENGTH.
const maxBlob = 1_000_000_000

// randomblob is SQLite's randomblob(N): N random bytes, at least one.
func (d *detState) randomblob(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if !d.active {
		return nil, errNoEntry
	}
	n := intValue(args[0])
	if n < 1 {
		n = 1
	}
	if n > maxBlob {
		return nil, errors.New("string or blob too big")
	}
	b := make([]byte, n)
	for i := 0; i < len(b); i += 8 {
		v := d.next()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return b, nil
}

// intValue converts an argument as sqlite3_value_int64 would, closely
// enough for a length: numbers are truncated, text is read as a number
// prefix, anything else is 0.
func intValue(v driver.Value) int64 {
	switch v := v.(type) {
	case int64:
		return v
	case float64:
		if v >= math.MaxInt64 {
			return math.MaxInt64
		}
		if v <= math.MinInt64 {
			return math.MinInt64
		}
		return int64(v)
	case string:
		s := strings.TrimSpace(v)
		end := 0
		for end < len(s) && (s[end] >= '0' && s[end] <= '9' || end == 0 && (s[end] == '-' || s[end] == '+')) {
			end++
		}
		n, _ := strconv.ParseInt(s[:end], 10, 64)
		return n
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

// timeFunc returns the override of a date and time function.
func (d *detState) timeFunc(builtin string, timeValueArg int) func(*sqlite.FunctionContext, []driver.Value) (driver.Value, error) {
	return func(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
		if !d.active {
			return nil, errNoEntry
		}
		var call []driver.Value
		switch {
		case timeValueArg < 0:
			call = []driver.Value{d.tsText}
		case len(args) < timeValueArg:
			return nil, nil // strftime() without a format is NULL
		case builtin == "timediff":
			// Both arguments are time values; there are no modifiers.
			call = make([]driver.Value, 0, len(args))
			for _, a := range args {
				call = append(call, d.nowArg(a)...)
			}
			if len(call) != len(args) {
				// timediff has no modifiers to carry 'subsec'.
				return nil, errors.New("timediff: 'subsec' as a time value is not supported in writes")
			}
		default:
			call = make([]driver.Value, 0, len(args)+1)
			call = append(call, args[:min(timeValueArg, len(args))]...)
			if len(args) <= timeValueArg {
				call = append(call, d.tsText) // no time value: now
			} else {
				call = append(call, d.nowArg(args[timeValueArg])...)
				for _, m := range args[timeValueArg+1:] {
					if s, ok := m.(string); ok && tzModifiers[strings.ToLower(s)] {
						return nil, fmt.Errorf("%s: the %q modifier depends on the node's time zone and is not allowed in writes", builtin, s)
					}
					call = append(call, m)
				}
			}
		}
		return d.callBuiltin(builtin, call)
	}
}

// nowArg returns what to pass for time value a: the entry's timestamp for
// 'now', the timestamp and the 'subsec' modifier for 'subsec' (SQLite's
// shorthand for 'now' with sub-second output), a otherwise.
func (d *detState) nowArg(a driver.Value) []driver.Value {
	s, ok := a.(string)
	if !ok {
		return []driver.Value{a}
	}
	switch strings.ToLower(s) {
	case "now":
		return []driver.Value{d.tsText}
	case "subsec", "subsecond":
		return []driver.Value{d.tsText, "subsec"}
	}
	return []driver.Value{a}
}

// callBuiltin evaluates SQLite's own function name on the helper
// connection.
func (d *detState) callBuiltin(name string, args []driver.Value) (driver.Value, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.helper == nil {
		return nil, errors.New("time functions unavailable: database closed")
	}
	key := name + "/" + strconv.Itoa(len(args))
	st := d.stmts[key]
	if st == nil {
		q := "SELECT " + name + "(" + strings.TrimSuffix(strings.Repeat("?,", len(args)), ",") + ")"
		var err error
		if st, err = d.helper.Prepare(q); err != nil {
			return nil, err
		}
		d.stmts[key] = st
	}
	in := make([]any, len(args))
	for i, a := range args {
		in[i] = a
	}
	var out any
	if err := st.QueryRow(in...).Scan(&out); err != nil {
		return nil, err
	}
	return out, nil
}

// openHelper opens the helper connection.
func (d *detState) openHelper() error {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if err := db.PingContext(context.Background()); err != nil {
		db.Close()
		return err
	}
	d.mu.Lock()
	d.helper, d.stmts = db, map[string]*sql.Stmt{}
	d.mu.Unlock()
	return nil
}

// closeHelper closes the helper connection.
func (d *detState) closeHelper() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.helper == nil {
		return nil
	}
	for _, st := range d.stmts {
		st.Close()
	}
	err := d.helper.Close()
	d.helper, d.stmts = nil, nil
	return err
}

// newWriteDriver returns a driver whose connections evaluate time and
// randomness against d. Functions registered on a driver are installed on
// every connection it opens and on no other, so this driver is used for
// the write connection only.
func newWriteDriver(d *detState) (*sqlite.Driver, error) {
	drv := &sqlite.Driver{}
	if err := drv.RegisterFunction("random", &sqlite.FunctionImpl{NArgs: 0, Scalar: d.random}); err != nil {
		return nil, err
	}
	if err := drv.RegisterFunction("randomblob", &sqlite.FunctionImpl{NArgs: 1, Scalar: d.randomblob}); err != nil {
		return nil, err
	}
	for _, tf := range timeFuncs {
		// Given the entry, these are pure functions of their arguments.
		// Registering them as deterministic keeps them usable where
		// SQLite's own are (index expressions, CHECK constraints,
		// generated columns) with arguments that do not read the clock.
		impl := &sqlite.FunctionImpl{NArgs: -1, Deterministic: true, Scalar: d.timeFunc(tf.builtin, tf.timeValueArg)}
		if tf.timeValueArg < 0 {
			impl.NArgs = 0
		}
		if err := drv.RegisterFunction(tf.name, impl); err != nil {
			return nil, err
		}
	}
	return drv, nil
}

// driverConnector opens connections of a given driver, so that a
// *sql.DB can use it without registering it by name.
type driverConnector struct {
	drv *sqlite.Driver
	dsn string
}

func (c driverConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c driverConnector) Driver() driver.Driver                        { return c.drv }
