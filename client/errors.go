package client

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

var (
	// ErrNoNodes is returned by New when Config.Nodes is empty.
	ErrNoNodes = errors.New("raftlite client: no nodes configured")

	// ErrUnknownSession means the server does not know the session (it never
	// saw it, or it expired). The Client has already started a new session
	// when it returns this error. An error that also wraps ErrUnknownOutcome
	// belongs to a write whose fate is unknown.
	ErrUnknownSession = errors.New("unknown or expired session")

	// ErrSuperseded means the server has already applied a later sequence
	// number of the session than the one sent. The Client starts a new
	// session when it sees it.
	ErrSuperseded = errors.New("sequence number already superseded")

	// ErrSeqReused means the server applied a different request (other
	// statements, parameters or transaction flag) under the session's
	// sequence number sent (HTTP 409, code seq_reused): the request sent
	// was not applied under it. Its retries resend the same request, so
	// the Client only meets this when something else used its session; it
	// starts a new session when it sees it.
	ErrSeqReused = errors.New("sequence number already used by a different request")

	// ErrUnknownOutcome is wrapped by the error of a write (or of a cluster
	// change) that failed after it may have reached the server: it may or may
	// not have been applied. With sessions enabled this only happens when the
	// retries are exhausted or the context ends.
	ErrUnknownOutcome = errors.New("raftlite client: outcome unknown, the write may or may not have been applied")

	errNoStatements = errors.New("raftlite client: no statements")
)

// APIError is a request-level failure reported by a node: a status code other
// than 2xx, or a 2xx response whose body carries a top-level "error". Its
// Unwrap returns ErrUnknownSession, ErrSuperseded or ErrSeqReused when the
// message or code is one of those, so errors.Is works on it.
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

// Unwrap returns the sentinel error the message denotes, or nil.
func (e *APIError) Unwrap() error { return sessionSentinel(e.Message, e.Code) }

// sessionSentinel maps the server's session errors to their sentinels.
func sessionSentinel(msg, code string) error {
	m := strings.ToLower(msg + " " + strings.ReplaceAll(code, "_", " "))
	switch {
	case strings.Contains(m, "unknown or expired session"),
		strings.Contains(m, "unknown session"),
		strings.Contains(m, "expired session"),
		strings.Contains(m, "session expired"):
		return ErrUnknownSession
	case strings.Contains(m, "superseded"):
		return ErrSuperseded
	case strings.Contains(m, "seq reused"),
		strings.Contains(m, "already used by a different request"):
		return ErrSeqReused
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
