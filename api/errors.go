package api

import (
	"context"
	"errors"
	"net/http"
)

// Error is an outcome a client can see: the HTTP status and the JSON
// "code" of the answer {"results":[],"error":"...","code":"..."}, defined
// here once for every layer. The node returns these (wrapped with context),
// the HTTP layer answers with Status and Code, the cluster service carries
// Code between nodes, and the Go client turns a Code back into the same
// error, so errors.Is works end to end.
//
// An outcome (Outcomes) has a Code of its own. A cause is one reason for an
// outcome, with its own message: errors.Is(cause, outcome) holds, and it
// answers with its outcome's Status and Code, so that callers that care
// why (ErrClosed, ErrHalted) can tell, while clients see one code.
type Error struct {
	// Status is the HTTP status of the answer.
	Status int
	// Code is the answer's "code".
	Code string
	// Meaning says, for the documentation, what the outcome tells a
	// client; empty for a cause.
	Meaning string
	msg     string
	outcome *Error // nil for an outcome
}

func (e *Error) Error() string { return e.msg }

// Is makes a cause match its outcome.
func (e *Error) Is(target error) bool { return e.outcome != nil && target == e.outcome }

// Outcome is the outcome e is, or is a cause of.
func (e *Error) Outcome() *Error {
	if e.outcome != nil {
		return e.outcome
	}
	return e
}

// New returns an error of e's outcome with message msg: how a layer
// answers an outcome with words of its own (a bad parameter named, say).
func (e *Error) New(msg string) *Error {
	return &Error{Status: e.Status, Code: e.Code, msg: msg, outcome: e.Outcome()}
}

var outcomes []*Error

// outcome defines an outcome; the order of definition is that of the
// documentation's tables.
func outcome(status int, code, msg, meaning string) *Error {
	e := &Error{Status: status, Code: code, Meaning: meaning, msg: msg}
	outcomes = append(outcomes, e)
	return e
}

// The outcomes. Messages are part of the wire contract: clients match on
// some of them.
var (
	ErrBadRequest = outcome(http.StatusBadRequest, "bad_request", "bad request",
		"bad parameters or body; the store refused the arguments")
	ErrUnauthorized = outcome(http.StatusUnauthorized, "unauthorized", "unauthorized",
		"missing or wrong credentials, or a permission lacking")
	ErrLoginThrottled = outcome(http.StatusTooManyRequests, "login_throttled", "too many failed logins",
		"too many failed logins from the client's address or for the user: credentials are not checked again until Retry-After has passed")
	ErrNotFound = outcome(http.StatusNotFound, "not_found", "not found",
		"unknown path, or a node id that is not a member")
	ErrMethodNotAllowed = outcome(http.StatusMethodNotAllowed, "method_not_allowed", "method not allowed",
		"wrong method")
	ErrRequestTooLarge = outcome(http.StatusRequestEntityTooLarge, "request_too_large", "request body too large",
		"body larger than the limit (-load-max-bytes for /db/load)")
	ErrEntryTooLarge = outcome(http.StatusRequestEntityTooLarge, "entry_too_large", "write too large for one log entry",
		"the write, encoded, is larger than 1024 log entries (-raft-max-entry-bytes each): not proposed")
	ErrNoLeader = outcome(http.StatusServiceUnavailable, "no_leader", "leader not found",
		"no leader known: nothing was proposed")
	ErrNotLeader = outcome(http.StatusServiceUnavailable, "not_leader", "not leader",
		"a forwarded request reached a node that is not the leader: nothing was proposed")
	ErrInternal = outcome(http.StatusInternalServerError, "internal_error", "internal error",
		"a panic or an encoding failure")
	ErrStaleRead = outcome(http.StatusServiceUnavailable, "stale_read", "stale read",
		"level=none read on a follower that has not heard from the leader within freshness")
	ErrTimeout = outcome(http.StatusGatewayTimeout, "timeout", "timeout",
		"the request's timeout expired (waiting for min_index, a write, a forwarded request, a queued write)")
	ErrForwardFailed = outcome(http.StatusBadGateway, "forward_failed", "forwarding to the leader failed",
		"the leader could not be reached or did not answer (a write may or may not have been applied)")
	ErrSeqSuperseded = outcome(http.StatusBadRequest, "seq_superseded", "sequence number already superseded",
		"client session: seq lower than the last applied one")
	ErrSessionExpired = outcome(http.StatusBadRequest, "session_expired", "unknown or expired session",
		"client session: unknown or expired client_id with seq > 1")
	ErrSeqReused = outcome(http.StatusConflict, "seq_reused", "sequence number already used by a different request",
		"client session: seq equal to the last applied one, but a different request (statements, parameters or transaction)")
	ErrQueueFull = outcome(http.StatusServiceUnavailable, "queue_full", "write queue is full",
		"the write queue stayed full for the whole timeout")
	ErrQueueFailed = outcome(http.StatusInternalServerError, "queue_failed", "queued write failed",
		"a queued batch could not be applied (with ?wait)")
	ErrLeadershipLost = outcome(http.StatusServiceUnavailable, "leadership_lost",
		"leadership lost while committing; the write may or may not have been applied",
		"the leader lost leadership while committing: the write may or may not have been applied")
	ErrUnknownOutcome = outcome(http.StatusServiceUnavailable, "unknown_outcome", "outcome unknown",
		"committed to the log, but this node could not apply it: the write takes effect on the other nodes; retry with the same client_id/seq")
	ErrUnavailable = outcome(http.StatusServiceUnavailable, "unavailable", "not applied",
		"refused for a passing reason before anything was proposed: retrying is safe")
	ErrStarting = outcome(http.StatusServiceUnavailable, "starting", "starting",
		"the node is still starting; nothing was done: retry, or ask another node")
	ErrLearnerNotReady = outcome(http.StatusConflict, "learner_not_ready", "learner not caught up",
		"POST /promote: the learner lags the leader by more than the allowed entries, or did not answer; it stays a learner")
	ErrCompacted = outcome(http.StatusGone, "compacted", "required index has been compacted",
		"GET /db/watch: the change history before the requested index was trimmed (retention or POST /db/compact); the body's oldest_index is the oldest still available")
	ErrStore = outcome(http.StatusInternalServerError, "store_error", "store error",
		"any other store failure")
)

// The causes: one reason each for an outcome.
var (
	// ErrCommitTimeout: proposed, but the caller's time ran out before it
	// committed; the write MAY still be applied.
	ErrCommitTimeout = ErrTimeout.New("timed out waiting for commit; the write may or may not have been applied")
	// ErrCanceled: the client went away (its request was canceled). It
	// answers 503, not the 504 of a timeout.
	ErrCanceled = &Error{Status: http.StatusServiceUnavailable, Code: ErrTimeout.Code, msg: "request canceled", outcome: ErrTimeout}
	// ErrApplyFailed: the entry committed but this node's state machine
	// failed to apply it (it halted, or is closing).
	ErrApplyFailed = ErrUnknownOutcome.New("committed to the log but not applied on this node; the write takes effect on the other nodes and its results are unknown")
	// ErrEnqueueTimeout: Raft's apply queue stayed full; nothing was
	// proposed.
	ErrEnqueueTimeout = ErrUnavailable.New("timed out before the entry was proposed; it was not applied")
	// ErrLeadershipTransfer: a leadership transfer is in progress and the
	// leader refused the entry. Retry shortly.
	ErrLeadershipTransfer = ErrUnavailable.New("leadership transfer in progress")
	// ErrClosed: the node is closed (or Raft shut down, e.g. after this
	// node was removed from the cluster).
	ErrClosed = ErrUnavailable.New("cluster node closed")
	// ErrHalted: this node's state machine has halted (a batch could not
	// be committed to its database: disk full, I/O error), so it proposes
	// nothing. A halted leader hands leadership to another voter.
	ErrHalted = ErrUnavailable.New("state machine halted on this node")
	// ErrUnknownNode: the node ID is not a member of the cluster.
	ErrUnknownNode = ErrNotFound.New("unknown node")
	// ErrNotSingleNode: POST /boot on a node whose cluster has other
	// members; booting bypasses the log, so only a cluster of one may.
	ErrNotSingleNode = ErrBadRequest.New("not single-node: /boot loads only a node that is the whole cluster; use /db/load on a larger one")
	// ErrBadSequence: a request with a client_id and seq 0.
	ErrBadSequence = ErrBadRequest.New("invalid sequence number 0: sequence numbers start at 1")
	// ErrInvalidLoad: an upload for /db/load that is not a sound SQLite
	// database (or an SQL dump that does not run); nothing changed.
	ErrInvalidLoad = ErrBadRequest.New("invalid database")
	// ErrNoChecksum is returned by ChecksumAt for an index that is not a
	// checksum marker this node applied since it started (or whose checksum
	// it has since forgotten).
	ErrNoChecksum = ErrNotFound.New("no checksum taken at this index on this node")
)

// Outcomes lists every outcome, in the order of the documentation.
func Outcomes() []*Error { return append([]*Error(nil), outcomes...) }

// OutcomeOf is the one mapping from an error to what a client is told: the
// first *Error err wraps, ErrCommitTimeout for an expired context,
// ErrCanceled for a canceled one, and ErrStore for anything else.
func OutcomeOf(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, context.DeadlineExceeded):
		return ErrCommitTimeout
	case errors.Is(err, context.Canceled):
		return ErrCanceled
	}
	return ErrStore
}

// ByCode is the outcome with that code, nil for a code of none: how an
// answer's "code" becomes an error again on the other side of the wire.
func ByCode(code string) *Error {
	for _, e := range outcomes {
		if e.Code == code {
			return e
		}
	}
	return nil
}

// IsAmbiguous reports whether err leaves the outcome of a write unknown:
// the entry was proposed but the proposer could not learn whether it was
// applied.
func IsAmbiguous(err error) bool {
	return errors.Is(err, ErrLeadershipLost) || errors.Is(err, ErrCommitTimeout) || errors.Is(err, ErrApplyFailed)
}
