package api

// Value is one SQL value as it travels through raftlite: nil (NULL), int64,
// float64, bool, string or []byte (BLOB). Every layer (HTTP parsing, the log
// encoding, SQLite binding, result rows) uses exactly these Go types so that
// no layer needs to guess.
type Value = any

// Param is one bound parameter of a statement. Positional parameters have an
// empty Name; named parameters carry the name without its prefix character
// (":name", "@name" and "$name" all bind Name "name").
type Param struct {
	Name  string
	Value Value
}

// Statement is one SQL statement with its parameters, all positional or all
// named.
type Statement struct {
	SQL    string
	Params []Param
}

// Request is what a client asked for in one HTTP request: its statements and
// the flags that change how they run. One Request is one Raft log entry.
type Request struct {
	Statements []Statement
	// Transaction runs all statements in one SQLite transaction that is rolled
	// back at the first error; the results end at the failing statement.
	Transaction bool
	// ReadOnly marks a read that goes through the log (level strong): a
	// statement that would change the database fails with the error
	// "attempt to change database via query operation" and changes nothing.
	ReadOnly bool
	// ClientID and Seq identify the request for exactly-once application
	// (client sessions). An empty ClientID means no session.
	ClientID string
	Seq      uint64
}

// Result is the outcome of one statement. A statement that produces rows
// (SELECT, PRAGMA, ... RETURNING) has Columns set, even when no row matched;
// a statement that does not has Columns == nil and may carry LastInsertID and
// RowsAffected. Error is set when the statement failed; the other fields are
// then empty.
type Result struct {
	Columns      []string
	Types        []string
	Rows         [][]Value
	LastInsertID int64
	RowsAffected int64
	Error        string
	// Seconds is how long the statement took to run.
	Seconds float64
}

// IsQuery reports whether r has the query shape (columns and rows) rather
// than the execute shape (last_insert_id and rows_affected).
func (r *Result) IsQuery() bool { return r.Columns != nil }

// Response is what applying one execute entry produced on this node. It is
// returned through raft.ApplyFuture.Response() on the leader.
type Response struct {
	Results []Result
	// Index is the Raft log index of the entry that produced the response.
	Index uint64
	// Deduplicated is set when the response is a remembered answer to a
	// retried (ClientID, Seq) rather than a fresh execution.
	Deduplicated bool
	// Err is a request-level failure (not a statement error), e.g. a
	// superseded sequence number.
	Err error
}
