package client

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/raftlite/raftlite/api"
)

var (
	// ErrNoNodes is returned by New when Config.Nodes is empty.
	ErrNoNodes = errors.New("raftlite client: no nodes configured")

	// ErrUnknownOutcome is wrapped by the error of a write (or of a cluster
	// change) that failed after it may have reached the server: it may or may
	// not have been applied. With sessions enabled this only happens when the
	// retries are exhausted or the context ends.
	ErrUnknownOutcome = errors.New("raftlite client: outcome unknown, the write may or may not have been applied")

	errNoStatements = errors.New("raftlite client: no statements")
)

// APIError is a request-level failure reported by a node: a status code other
// than 2xx, or a 2xx response whose body carries a top-level "error". Its
// Unwrap returns the api outcome its Code names (api.ErrSessionExpired,
// api.ErrSeqSuperseded, api.ErrSeqReused, api.ErrNoLeader, ...), so
// errors.Is works on it as on the server's own errors.
type APIError struct {
	// Node is the base URL of the node that answered.
	Node string
	// Status is the HTTP status code.
	Status int
	// Message is the server's error text: the top-level "error" of a JSON
	// body, or the trimmed text of a plain body.
	Message string
	// Code is the machine-readable "code" field, when the server sent one.
	Code string
	// OldestIndex is, for code "compacted" (Watch asked for history that
	// was trimmed), the oldest index still available.
	OldestIndex uint64
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("raftlite client: ")
	if e.Node != "" {
		b.WriteString(e.Node)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "HTTP %d", e.Status)
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (code %s)", e.Code)
	}
	return b.String()
}

// Unwrap returns the outcome Code names; without a code, the session
// outcome whose message the server sent; or nil.
func (e *APIError) Unwrap() error {
	o := api.ByCode(e.Code)
	if e.Code == "" {
		o = sessionOutcome(e.Message)
	}
	if o == nil {
		return nil
	}
	return o
}

// isSessionError reports whether err is one of sessionOutcomes.
func isSessionError(err error) bool {
	for _, o := range sessionOutcomes {
		if errors.Is(err, o) {
			return true
		}
	}
	return false
}

// sessionOutcomes are the session errors a client starts a new session on.
var sessionOutcomes = []*api.Error{api.ErrSessionExpired, api.ErrSeqSuperseded, api.ErrSeqReused}

// sessionOutcome is the session outcome whose message a server put in a
// statement's slot, or nil.
func sessionOutcome(msg string) *api.Error {
	for _, o := range sessionOutcomes {
		if msg == o.Error() {
			return o
		}
	}
	return nil
}

// StatementError is the failure of one statement of a request, as reported
// in its Result.Error.
type StatementError struct {
	// Index is the statement's position in the request, from 0.
	Index int
	// SQL is the statement's text.
	SQL string
	// Message is the server's error text, e.g. "no such table: foo".
	Message string
}

func (e *StatementError) Error() string {
	if e.SQL == "" {
		return fmt.Sprintf("statement %d: %s", e.Index, e.Message)
	}
	sql := e.SQL
	if len(sql) > 80 {
		cut := 77
		for cut > 0 && !utf8.RuneStart(sql[cut]) {
			cut--
		}
		sql = sql[:cut] + "..."
	}
	return fmt.Sprintf("statement %d (%q): %s", e.Index, sql, e.Message)
}
