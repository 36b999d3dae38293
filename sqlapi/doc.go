// Package sqlapi is raftlite's HTTP API: the rqlite-compatible wire contract
// of shared/API.md (/db/execute, /db/query, /db/request, /status, /nodes,
// /leader, /readyz, /remove, /debug/vars, /metrics), raftlite's own
// /promote (a learner becomes a voter), /db/watch (a change feed) and
// /db/compact, rqlite's operations endpoints
// (/snapshot and /boot, served by the node asked; /reap, by the leader;
// see ops.go), and the web console's files at /console (Config.Console,
// package console's handler, handed in by main so that this package does
// not import it; "/" sends a browser there).
//
// It owns: request parsing (query parameters and JSON bodies), response
// encoding (the exact rqlite JSON shapes), routing of every request to the
// node that must serve it (local read, leader read, write through the log,
// forwarding to the leader or a 301 redirect), the batching write queue
// (?queue), HTTP basic auth in rqlite's credentials-file format, and the
// HTTP-level metrics (in the node's registry, Config.Metrics, beside those
// of the fsm and cluster packages).
//
// It must not touch: the SQLite database (package fsm owns it), Raft
// (package cluster owns it) or the process (package main owns flags,
// listeners and signals). Everything it needs from the node goes through the
// Store interface, so that this package can be tested with a fake store and
// does not import package cluster.
//
// # Wiring
//
// *cluster.Node implements Store, which has no optional methods: package
// main asserts it at compile time (var _ sqlapi.Store = (*cluster.Node)(nil))
// and hands the node to New as it is.
//
// The node's errors are package api's outcome errors (api.ErrNotLeader,
// api.ErrLeadershipLost, ...) or their causes (api.ErrClosed is an
// api.ErrUnavailable); api.OutcomeOf is the one mapping from an error to
// the status and code a client gets. Only a write
// refused with api.ErrNotLeader, for which nothing was proposed, is forwarded
// to the leader; any other Execute error is reported to the client and
// never retried here, because the entry may have been committed: only a
// client session (client_id/seq) makes a retry safe.
//
// /db/backup and /db/load (see backup.go): backups stream from the leader
// (any node with level=none), and an upload is spooled to Config.TempDir and handed to the leader's
// Store.Load, which installs it through Raft's snapshot path (an SQL dump is
// first built into a fresh SQLite file beside the spool).
//
// /db/watch and /db/compact (see watch.go): any node streams its committed
// row changes (Store.WatchChanges) as Server-Sent Events or answers a long
// poll; a compaction is proposed on the leader (forwarded there from a
// follower) like every log append.
//
// Authentication (auth.go, perms.go, logins.go): Config.Auth holds an
// rqlite credentials file (bcrypt or plain-text passwords); endpointAccess
// is the one table of the permission each endpoint and method needs, and
// New refuses a route it has no row for. Failed logins are logged and
// throttled per client address and per user (429 login_throttled).
//
// main serves a Starting handler from the moment the process starts (every
// request answered 503 "starting" with the phase of the start), builds the
// API with New once the node is open and hands it over (Starting.Started),
// and calls Server.Shutdown (or Close) on the way out so that the write
// queue is flushed.
//
// # Status codes
//
// 200 with a body (statement errors included), 301 with ?redirect. Every
// error answer is JSON, {"results":[],"error":"...","code":"..."}, whatever
// its cause (only /readyz keeps rqlite's plain-text format, 503 included).
// The table is api.Outcomes (a test in package api keeps it so):
//
//	code                status  meaning
//	bad_request         400     bad parameters or body; the store refused the arguments
//	unauthorized        401     missing or wrong credentials, or a permission lacking
//	login_throttled     429     too many failed logins from the client's address or for the user: credentials are not checked again until Retry-After has passed
//	not_found           404     unknown path, or a node id that is not a member
//	method_not_allowed  405     wrong method
//	request_too_large   413     body larger than the limit (-load-max-bytes for /db/load)
//	entry_too_large     413     the write, encoded, is larger than 1024 log entries (-raft-max-entry-bytes each): not proposed
//	no_leader           503     no leader known: nothing was proposed
//	not_leader          503     a forwarded request reached a node that is not the leader: nothing was proposed
//	internal_error      500     a panic or an encoding failure
//	stale_read          503     level=none read on a follower that has not heard from the leader within freshness
//	timeout             504     the request's timeout expired (waiting for min_index, a write, a forwarded request, a queued write)
//	forward_failed      502     the leader could not be reached or did not answer (a write may or may not have been applied)
//	seq_superseded      400     client session: seq lower than the last applied one
//	session_expired     400     client session: unknown or expired client_id with seq > 1
//	seq_reused          409     client session: seq equal to the last applied one, but a different request (statements, parameters or transaction)
//	queue_full          503     the write queue stayed full for the whole timeout
//	queue_failed        500     a queued batch could not be applied (with ?wait)
//	leadership_lost     503     the leader lost leadership while committing: the write may or may not have been applied
//	unknown_outcome     503     committed to the log, but this node could not apply it: the write takes effect on the other nodes; retry with the same client_id/seq
//	unavailable         503     refused for a passing reason before anything was proposed: retrying is safe
//	starting            503     the node is still starting; nothing was done: retry, or ask another node
//	learner_not_ready   409     POST /promote: the learner lags the leader by more than the allowed entries, or did not answer; it stays a learner
//	compacted           410     GET /db/watch: the change history before the requested index was trimmed (retention or POST /db/compact); the body's oldest_index is the oldest still available
//	store_error         500     any other store failure
package sqlapi
