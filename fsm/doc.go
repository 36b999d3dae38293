// Package fsm is raftlite's replicated state machine: it owns the SQLite
// database file (Config.Dir/db.sqlite and its -wal and -shm files) and
// everything that is applied to it or read from it.
//
// It applies committed Raft entries (raft.BatchingFSM), serves local reads
// (Query), classifies requests (AllReadOnly), keeps the replicated member
// metadata (Nodes), and takes and restores snapshots through package
// snapshot. It defines the types shared by the other packages (types.go) and
// the log encoding of commands (EncodeCommand, DecodeCommand).
//
// It does not touch Raft itself (transport, log store, configuration,
// leadership: package cluster) nor HTTP (package sqlapi). Nothing outside
// this package may open the database file.
//
// # Connections
//
// One write connection is used only by the apply path, from Raft's FSM
// goroutine. A small pool of read connections with query_only serves
// Query and AllReadOnly. Every connection has an SQLite authorizer (guard)
// that classifies and, where needed, refuses what a statement would do.
//
// # Deterministic apply
//
// Statements are replicated, so time and randomness must not depend on the
// node: the write connection comes from a driver of its own that overrides
// random(), randomblob() and the date and time functions (CURRENT_TIMESTAMP
// and friends included) to evaluate against the entry's leader Timestamp and
// a PRNG seeded from its Seed; they apply in DEFAULT clauses and triggers
// too. Read connections keep SQLite's own. What cannot be made deterministic
// is refused on the write path by the guard (ATTACH, connection PRAGMAs,
// foreign_keys included, load_extension, total_changes, sqlite_offset) or
// by the overrides (the 'localtime' and 'utc' modifiers). See
// determinism.go. VACUUM runs outside the apply transaction at its
// entry's log position on every replica (vacuum.go).
//
// # Values
//
// Query results carry rqlite's types and values: times in DATE, DATETIME
// and TIMESTAMP columns, booleans, BLOBs of text affinity as strings. See
// types_rqlite.go.
//
// # Replica checksums
//
// Checksum hashes the database content at this node's applied index;
// a CmdChecksum entry (checksum marker) makes every replica pin a read
// snapshot at exactly its index and hash it in the background, for
// ChecksumAt, so that all members can be compared at the same index. See
// checksum.go.
//
// # Internal state
//
// Tables prefixed _raftlite_ hold raftlite's own replicated state:
// _raftlite_meta (the applied index, written in the same transaction as the
// data it describes, and the session counters), _raftlite_nodes (member
// metadata), _raftlite_sessions (client sessions: per client_id the last
// applied sequence number, its response and its request's digest, see
// sessions.go), _raftlite_chunks (the parts of a write too large for
// one log entry until its last part applies it, see chunks.go) and
// _raftlite_changes (the change history behind /db/watch, recorded by the
// write connection's pre-update hook in the apply transaction; see
// watch.go and watchread.go). Clients can neither see, read nor change
// them: the schema they read leaves them out (hide.go).
//
// # Client sessions
//
// A Request with a ClientID is applied at most once per (ClientID, Seq): a
// retry of a session's last write gets the remembered response with
// Deduplicated set; the same Seq with a different request (its digest of
// statements, parameters and flags differs) api.ErrSeqReused; an older Seq
// api.ErrSeqSuperseded; and Seq > 1 in an unknown session api.ErrSessionExpired
// (all in Response.Err, with nothing executed). Seq may skip numbers. Sessions
// idle longer than Config.SessionTTL expire by the leader timestamps in the
// log, so every replica expires the same sessions at the same index; a
// retry after expiry is refused (api.ErrSessionExpired), except Seq 1, which
// starts a new session. Databases from before request digests gain the
// digest column on open, by the same ALTER TABLE that new databases get,
// so replica checksums stay equal. See sessions.go.
//
// # Durability and start-up
//
// The database runs in WAL mode with synchronous=NORMAL: the Raft log is the
// durable record, and after a power loss the database may be some commits
// behind it, with a correspondingly older applied index. Likewise a
// database restored from a snapshot is synced after it is put to use; a
// start-up that finds it marked unsynced discards it, so that its applied
// index is 0 and the snapshot is restored again (see unsynced.go); Discard empties
// the database the same way when the cluster package finds, at start-up, that it may
// hold a load the cluster never committed. Raft replays the
// log from its own last applied index, which at start-up is the index of
// its newest snapshot; ApplyBatch skips entries the database already holds.
// Hence the one rule for the cluster package: Raft may skip restoring its
// newest snapshot at start-up (Config.NoSnapshotRestoreOnStart) only if the
// database is not behind that snapshot, that is if AppliedIndex() is at
// least the snapshot's index; otherwise the entries between would never be
// applied. The snapshot's Raft index is an upper bound of the applied index
// it holds (Raft counts no-ops the FSM never sees); snapshot.ReadHeader
// gives the exact one.
package fsm
