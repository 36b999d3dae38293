package client

import "time"

// Statement is one SQL statement with its parameters: positional (Args) or
// named (NamedArgs), not both.
//
// A parameter is nil (NULL), bool, a string (valid UTF-8), any integer type
// (unsigned values must fit in int64), float32 or float64 (finite), []byte
// (a BLOB; a nil []byte is NULL), json.Number, a value of a named type whose
// underlying type is one of those, or a pointer to one (a nil pointer is
// NULL).
type Statement struct {
	SQL       string
	Args      []any
	NamedArgs map[string]any
}

// SQL returns a statement with positional parameters, bound to its "?"
// placeholders in order.
func SQL(sql string, args ...any) Statement {
	return Statement{SQL: sql, Args: args}
}

// Named returns a statement with named parameters, bound to its ":name",
// "@name" or "$name" placeholders. Keys may be given with or without the
// prefix character.
func Named(sql string, args map[string]any) Statement {
	return Statement{SQL: sql, NamedArgs: args}
}

// Result is the outcome of one statement. A statement that returns rows
// (SELECT, PRAGMA, ... RETURNING) has the query shape: Columns (non-nil even
// when no row matched), Types and Values. Any other statement has the
// execute shape: LastInsertID and RowsAffected. Error is set when the
// statement failed.
type Result struct {
	Columns []string
	// Types are the columns' declared types in lower case (for expressions,
	// the type of the value: integer, real, text, blob, or "" for NULL).
	Types []string
	// Values holds one slice per row. A value is nil (NULL), int64, float64
	// (for a column of REAL affinity, or a non-integral number), string,
	// []byte (a BLOB), or bool.
	Values       [][]any
	LastInsertID int64
	RowsAffected int64
	Error        string
	// Time is how long the statement took on the server, with WithTimings.
	Time time.Duration
}

// IsQuery reports whether r has the query shape rather than the execute
// shape.
func (r *Result) IsQuery() bool { return r.Columns != nil }

// Response is the answer to one Execute, Query or Request call.
type Response struct {
	// Results holds one Result per statement, in order. With a transaction
	// the results end at the first failing statement.
	Results []Result
	// RaftIndex is the Raft log index of the write (0 for reads, or when
	// index tracking is disabled).
	RaftIndex uint64
	// Deduplicated is set when the server answered a retried write from its
	// session memory instead of executing it again. The Results are those of
	// the original execution.
	Deduplicated bool
	// SequenceNumber is the server's queue sequence number, for queued
	// writes.
	SequenceNumber int64
	// Time is the server's processing time, with WithTimings.
	Time time.Duration

	stmts []Statement
}

// Err returns the first statement error as a *StatementError, or nil when
// every statement succeeded.
func (r *Response) Err() error {
	for i := range r.Results {
		if msg := r.Results[i].Error; msg != "" {
			e := &StatementError{Index: i, Message: msg}
			if i < len(r.stmts) {
				e.SQL = r.stmts[i].SQL
			}
			return e
		}
	}
	return nil
}

// Node is a cluster member as /nodes and /leader describe it.
type Node struct {
	ID string
	// APIAddr is the member's HTTP API URL, e.g. "http://127.0.0.1:4001".
	APIAddr string
	// Addr is the member's Raft address.
	Addr      string
	Version   string
	Voter     bool
	Reachable bool
	Leader    bool
	// Time is how long the answering node took to reach the member.
	Time time.Duration
	// Error says why the member is unreachable.
	Error string
	// AppliedIndex is the index of the last log entry applied to the
	// member's database, and Lag how many entries it is behind the
	// leader's committed index; nil when the answering node could not
	// learn them (raftlite only: rqlite does not report them).
	AppliedIndex, Lag *uint64
}

// seconds converts the wire's float seconds to a Duration.
func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}
