// Package client is the Go client of raftlite's HTTP API (the rqlite API plus
// raftlite's extensions, see API.md).
//
// The package owns everything a program needs to talk to a raftlite cluster
// safely:
//
//   - the wire encoding of statements and their parameters, and the decoding of
//     responses into Go values (int64, float64, string, []byte, bool, nil);
//   - client sessions, raftlite's exactly-once writes: every Client picks a
//     random 128-bit client_id and numbers its writes seq=1,2,3..., so that a
//     write retried after an ambiguous failure (timeout, connection reset,
//     leadership lost, 502/503/504) is applied at most once, and the retry
//     returns the remembered response, marked Deduplicated;
//   - retries with backoff and failover across the configured nodes, bounded by
//     the caller's context and Config.MaxRetries;
//   - read-your-writes: the Client remembers the highest Raft index its writes
//     reached and sends it as min_index on reads, so a read served by any node
//     (even at level none on a lagging follower) sees the Client's own writes;
//   - the cluster calls: Leader, Nodes, Status, Ready, Remove and StepDown;
//   - Watch, a change feed (/db/watch) that long-polls any node and, when one
//     fails, resumes on the next after the last index it delivered.
//
// # Sessions and concurrency
//
// A Client is safe for concurrent use. Reads run concurrently. Writes
// (Execute and Request) of one session are serialised: one write is in flight
// at a time, and sequence numbers are assigned in the order writes obtain the
// session. This is what makes retries safe: the server remembers only the last
// sequence number of each session, so two writes of one session in flight at
// once could make a retry of the earlier one "superseded". A program that
// needs concurrent writes creates one Client per writer goroutine (each has
// its own session); Clients are cheap and may share an *http.Client.
//
// When every attempt of a write fails and the write may nonetheless have been
// applied, the error wraps ErrUnknownOutcome. When the server no longer knows
// the session (it expired), the Client starts a new one; if the pending write
// certainly was not applied it is resent transparently in the new session,
// otherwise the error wraps both api.ErrSessionExpired and ErrUnknownOutcome.
// A retry resends the request unchanged; should the server have applied a
// different request under its sequence number (something else wrote in the
// session), the error wraps api.ErrSeqReused, the write was not applied, and the
// Client starts a new session.
//
// Statement errors (a syntax error, a constraint violation) are not Go
// errors: they are reported per statement in Result.Error, and Response.Err
// returns the first of them as a *StatementError.
package client
