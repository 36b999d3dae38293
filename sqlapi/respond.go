package sqlapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/raftlite/raftlite/fsm"
)

const (
	contentTypeJSON = "application/json; charset=utf-8"
	contentTypeText = "text/plain; charset=utf-8"
)

// Error codes of request-level failures (the "code" field).
const (
	codeStaleRead      = "stale_read"
	codeTimeout        = "timeout"
	codeForwardFailed  = "forward_failed"
	codeSeqSuperseded  = "seq_superseded"
	codeSeqReused      = "seq_reused"
	codeSessionExpired = "session_expired"
	codeQueueFull      = "queue_full"
	codeQueueFailed    = "queue_failed"
	codeLeadershipLost = "leadership_lost"
	codeUnknownOutcome = "unknown_outcome"
	codeUnavailable    = "unavailable"
	codeBadRequest     = "bad_request"
	codeStoreError     = "store_error"
	// Failures that are not about the request's statements.
	codeNotFound         = "not_found"
	codeUnauthorized     = "unauthorized"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "request_too_large"
	codeEntryTooLarge    = "entry_too_large"
	codeNoLeader         = "no_leader"
	codeNotLeader        = "not_leader"
	codeInternal         = "internal_error"
)

// The messages of the fsm's request-level session errors (API.md).
const (
	msgSeqSuperseded  = "sequence number already superseded"
	msgSessionExpired = "unknown or expired session"
	msgSeqReused      = "sequence number already used by a different request"
)

// requestError is a request-level failure answered with the JSON body shape
// {"results":[],"error":msg,"code":code} and a precise status.
type requestError struct {
	status int
	code   string
	msg    string
}

func (e *requestError) Error() string { return e.msg }

// writeError answers a failure with the JSON error shape
// {"results":[],"error":msg,"code":code}, so that every error a client
// meets, not only request-level ones, carries a machine-readable code.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Del("Content-Length")
	writeRequestError(w, &requestError{status, code, msg}, encodeOpts{})
}

// writeText answers with a one-line text/plain body: /readyz (rqlite's
// plain-text format), a redirect's body and empty successes.
func writeText(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", contentTypeText)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	if msg != "" {
		_, _ = w.Write([]byte(msg + "\n"))
	}
}

// writeJSONBytes answers with a JSON body.
func writeJSONBytes(w http.ResponseWriter, status int, body []byte, pretty bool) {
	if pretty {
		body = indent(body)
	}
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeResponse encodes r and writes it with status.
func writeResponse(w http.ResponseWriter, status int, r *apiResponse, o encodeOpts) {
	bp := getBuf()
	*bp = appendResponse((*bp)[:0], r, o)
	writeJSONBytes(w, status, *bp, o.pretty)
	putBuf(bp)
}

// writeRequestError answers a request-level failure.
func writeRequestError(w http.ResponseWriter, e *requestError, o encodeOpts) {
	writeResponse(w, e.status, &apiResponse{err: e.msg, code: e.code}, o)
}

// classifyStoreError maps a Store error (other than "not leader", which the
// caller forwards) to a request-level failure.
func classifyStoreError(err error) *requestError {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re
	case isLeadershipLost(err):
		return &requestError{http.StatusServiceUnavailable, codeLeadershipLost, err.Error()}
	case isCommitTimeout(err):
		return &requestError{http.StatusGatewayTimeout, codeTimeout, err.Error()}
	case errors.Is(err, ErrUnknownOutcome):
		return &requestError{http.StatusServiceUnavailable, codeUnknownOutcome, err.Error()}
	case errors.Is(err, context.Canceled):
		return &requestError{http.StatusServiceUnavailable, codeTimeout, "request canceled: " + err.Error()}
	case isNotApplied(err):
		return &requestError{http.StatusServiceUnavailable, codeUnavailable, err.Error()}
	case errors.Is(err, ErrBadRequest):
		return &requestError{http.StatusBadRequest, codeBadRequest, err.Error()}
	case errors.Is(err, ErrEntryTooLarge):
		return &requestError{http.StatusRequestEntityTooLarge, codeEntryTooLarge, err.Error()}
	case errors.Is(err, fsm.ErrSeqSuperseded):
		return &requestError{http.StatusBadRequest, codeSeqSuperseded, err.Error()}
	case errors.Is(err, fsm.ErrUnknownSession):
		return &requestError{http.StatusBadRequest, codeSessionExpired, err.Error()}
	case errors.Is(err, fsm.ErrSeqReused):
		return &requestError{http.StatusConflict, codeSeqReused, err.Error()}
	case errors.Is(err, fsm.ErrBadSequence):
		return &requestError{http.StatusBadRequest, codeBadRequest, err.Error()}
	}
	return sessionOrStoreError(err.Error())
}

// sessionOrStoreError classifies a request-level error message: the client
// session errors of API.md are 400 (409 for a reused seq), anything else a
// 500 store error. It is
// the fallback for errors that lost their identity (the fsm's own session
// errors are recognised by errors.Is in classifyStoreError).
func sessionOrStoreError(msg string) *requestError {
	switch {
	case strings.Contains(msg, msgSeqSuperseded):
		return &requestError{http.StatusBadRequest, codeSeqSuperseded, msg}
	case strings.Contains(msg, msgSessionExpired):
		return &requestError{http.StatusBadRequest, codeSessionExpired, msg}
	case strings.Contains(msg, msgSeqReused):
		return &requestError{http.StatusConflict, codeSeqReused, msg}
	}
	return &requestError{http.StatusInternalServerError, codeStoreError, msg}
}
