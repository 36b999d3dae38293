package fsm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/raftlite/raftlite/api"
)

// Client sessions: exactly-once writes (API.md, "Exactly-once writes").
//
// A request that carries a ClientID is guarded by that client's row in
// _raftlite_sessions: the last sequence number applied in the session, the
// response it produced, and when the session was last used. The row is read
// and written in the batch transaction, in the same entry as the statements
// it guards, so a crash can never separate a write from the record that it
// was applied. Being part of the database file, sessions travel in
// snapshots and survive restarts without any further work.
//
// A retry must be the same request: the row also holds the digest of the
// request applied under its seq (requestDigest), and the same seq with a
// different digest is refused (api.ErrSeqReused) rather than answered with
// another request's result. The digest is computed by every replica from
// the decoded request in the entry, not by the proposer: it is then a pure
// function of the log, the log format stays as it was (nodes of the
// previous version still decode every entry), and JSON spacing or the
// order of named parameters does not enter it, only the decoded values (a
// number is an integer or a float as it was parsed: 1 and 1.0 differ, as
// they do in SQLite).
//
// Sequence numbers must grow, not be consecutive: a client may burn
// numbers on requests refused before they reached the log (bad JSON, too
// large, not allowed), so a jump ahead is a new write, and a skipped
// number sent later is superseded and never runs.
//
// Everything about a session depends only on the log: the response stored
// carries no timings, and time is the Timestamp the proposing leader put in
// each entry, never a node's own clock. Every replica therefore answers a
// retry alike and expires the same sessions at the same index.
//
// Expiry is exact and bounded at once. An entry at leader time ts treats a
// session last used before ts - TTL as unknown, whether or not its row is
// still there; separately, each entry deletes at most sessionSweepLimit of
// the oldest expired rows (an index range scan on last_seen), so the table
// shrinks back steadily after a burst of sessions and no entry pays for
// more than a few deletions. Which rows an entry sweeps depends only on
// the database before it, so the table itself is identical on every
// replica. The FSM keeps a lower bound of the oldest last_seen in memory
// (derived from the database, and so alike everywhere) to skip the sweep
// while nothing can be expired, which is almost always.
//
// Once a session has expired, a retry of any seq above 1 is refused
// (api.ErrSessionExpired): its write may or may not have been applied, and
// running it again could apply it twice. A seq of 1 in an unknown session
// starts a new one, so a session's first write cannot be told from its
// retry once the session expired: exactly-once holds for retries sent
// within the TTL (24 hours by default) of the session's last use, which
// bounded client retries always are.
//
// The digest column was added after the table (version 1 had none). Every
// database, new or old, gets it by the same ALTER TABLE
// (migrateSessionTable), so that the table's SQL in sqlite_schema, which
// checksums cover, is the same text on every replica however its database
// came to be. A row written before the migration has no digest: any retry
// of that write is answered from memory, as before. Replicas of different
// versions apply session rows differently (a previous-version node leaves
// the digest of the rows it updates as it was), so digests are only
// reliable once every node runs this version; a downgrade is not
// supported.

// A request a session refuses gets one of api's session errors as its
// Response.Err, with nothing executed: api.ErrSeqSuperseded (a sequence
// number lower than the last applied one), api.ErrSessionExpired (above 1
// in a session this state machine does not know: it never existed, or it
// expired), api.ErrBadSequence (0) or api.ErrSeqReused (the last applied
// number with other statements or flags: a reuse, not a retry).

// DefaultSessionTTL is the default of -session-ttl: how long a client
// session may stay idle before it expires.
const DefaultSessionTTL = 24 * time.Hour

// sessionSweepLimit bounds how many expired sessions one entry deletes. An
// entry creates at most one session, so sweeping several per entry keeps
// the table bounded by the sessions used within the TTL.
const sessionSweepLimit = 16

// sessionSchema creates the session table and its counters (see schema).
// The table has no rowid: rows are small and always found by client_id.
// The counters are kept in _raftlite_meta, in the same transactions as the
// rows, so /status never has to count a large table; a database that
// predates sessions counts its (empty) table once.
var sessionSchema = []string{
	`CREATE TABLE IF NOT EXISTS _raftlite_sessions (
		client_id TEXT PRIMARY KEY,
		seq INTEGER NOT NULL,
		response BLOB NOT NULL,
		last_seen INTEGER NOT NULL
	) WITHOUT ROWID`,
	`CREATE INDEX IF NOT EXISTS _raftlite_sessions_last_seen ON _raftlite_sessions (last_seen)`,
	`INSERT OR IGNORE INTO _raftlite_meta (key, value) SELECT 'sessions_live', COUNT(*) FROM _raftlite_sessions`,
	`INSERT OR IGNORE INTO _raftlite_meta (key, value) VALUES ('sessions_deduplicated', 0)`,
	`INSERT OR IGNORE INTO _raftlite_meta (key, value) VALUES ('sessions_expired', 0)`,
}

// sessionDigestColumn is added to version 1 session tables on open.
const sessionDigestColumn = "digest"

// migrateSessionTable adds the digest column to a session table that lacks
// it. ALTER TABLE ADD COLUMN of a nullable column rewrites only the table's
// SQL text (deterministically: the definition is spliced in before the
// closing parenthesis), not its rows.
func migrateSessionTable(ctx context.Context, db sqlExecQueryer) error {
	var has int
	err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_table_info('_raftlite_sessions') WHERE name = ?`,
		sessionDigestColumn).Scan(&has)
	if err != nil {
		return fmt.Errorf("inspect session table: %w", err)
	}
	if has > 0 {
		return nil
	}
	if _, err := db.ExecContext(ctx, `ALTER TABLE _raftlite_sessions ADD COLUMN `+sessionDigestColumn+` BLOB`); err != nil {
		return fmt.Errorf("add session digest column: %w", err)
	}
	return nil
}

// requestDigest is the SHA-256 of what a request asks for: its flags and
// its statements in the command encoding (SQL text, parameter names, typed
// values), without its session. Two requests have the same digest exactly
// when they would run alike. Stored digests outlive binaries, so this
// definition must not change: a change would turn retries sent across an
// upgrade into api.ErrSeqReused. Statements are encoded one at a time into
// one buffer, so the cost is a hash pass and a copy of the largest
// statement.
func requestDigest(r *api.Request) ([]byte, error) {
	h := sha256.New()
	buf := binary.AppendUvarint(append(make([]byte, 0, 256), requestFlags(r)), uint64(len(r.Statements)))
	h.Write(buf)
	for i := range r.Statements {
		var err error
		if buf, err = appendStatement(buf[:0], &r.Statements[i]); err != nil {
			return nil, fmt.Errorf("digest of statement %d: %w", i, err)
		}
		h.Write(buf)
	}
	return h.Sum(nil), nil
}

// sessionStmts are the writer's prepared statements for sessions.
type sessionStmts struct {
	get, put, touch, remove, sweep, oldest, addMeta *sql.Stmt
}

func (s *sessionStmts) list() []**sql.Stmt {
	return []**sql.Stmt{&s.get, &s.put, &s.touch, &s.remove, &s.sweep, &s.oldest, &s.addMeta}
}

var sessionQueries = []string{
	`SELECT seq, response, last_seen, digest FROM _raftlite_sessions WHERE client_id = ?`,
	`INSERT INTO _raftlite_sessions (client_id, seq, response, last_seen, digest) VALUES (?1, ?2, ?3, ?4, ?5)
		ON CONFLICT (client_id) DO UPDATE SET seq = excluded.seq, response = excluded.response,
		last_seen = max(last_seen, excluded.last_seen), digest = excluded.digest`,
	`UPDATE _raftlite_sessions SET last_seen = max(last_seen, ?2) WHERE client_id = ?1`,
	`DELETE FROM _raftlite_sessions WHERE client_id = ?`,
	`DELETE FROM _raftlite_sessions WHERE client_id IN (
		SELECT client_id FROM _raftlite_sessions WHERE last_seen < ?1
		ORDER BY last_seen, client_id LIMIT ?2)`,
	`SELECT COALESCE(MIN(last_seen), 9223372036854775807) FROM _raftlite_sessions`,
	`UPDATE _raftlite_meta SET value = value + ?2 WHERE key = ?1`,
}

// sessionCounts are the session counters, or changes to them.
type sessionCounts struct {
	live, deduplicated, expired int64
}

// sessionCounters are the published counters (for Stats), set from the
// database when it opens and after every committed batch.
type sessionCounters struct {
	live, deduplicated, expired atomic.Int64
}

func (c *sessionCounters) store(v sessionCounts) {
	c.live.Store(v.live)
	c.deduplicated.Store(v.deduplicated)
	c.expired.Store(v.expired)
}

func (c *sessionCounters) add(d sessionCounts) {
	c.live.Add(d.live)
	c.deduplicated.Add(d.deduplicated)
	c.expired.Add(d.expired)
}

// loadSessionCounts reads the stored counters.
func (w *writer) loadSessionCounts(ctx context.Context) (sessionCounts, error) {
	var c sessionCounts
	err := w.conn.QueryRowContext(ctx, `SELECT
		(SELECT value FROM _raftlite_meta WHERE key = 'sessions_live'),
		(SELECT value FROM _raftlite_meta WHERE key = 'sessions_deduplicated'),
		(SELECT value FROM _raftlite_meta WHERE key = 'sessions_expired')`).Scan(&c.live, &c.deduplicated, &c.expired)
	if err != nil {
		return c, fmt.Errorf("read session counters: %w", err)
	}
	return c, nil
}

// storeSessionCounts adds the batch's changes to the stored counters.
func (w *writer) storeSessionCounts(ctx context.Context, d sessionCounts) error {
	for _, kv := range []struct {
		key string
		n   int64
	}{{"sessions_live", d.live}, {"sessions_deduplicated", d.deduplicated}, {"sessions_expired", d.expired}} {
		if kv.n == 0 {
			continue
		}
		if _, err := w.sess.addMeta.ExecContext(ctx, kv.key, kv.n); err != nil {
			return fmt.Errorf("update %s: %w", kv.key, err)
		}
	}
	return nil
}

// expiryCutoff returns the leader time before which a session last used
// counts as expired, for an entry stamped ts; ok is false when nothing
// expires (no TTL, or an entry without a usable timestamp).
func (f *FSM) expiryCutoff(ts int64) (cutoff int64, ok bool) {
	ttl := int64(f.sessionTTL)
	if ttl == 0 || ts <= ttl {
		return 0, false
	}
	return ts - ttl, true
}

// oldestSeen reads the oldest last_seen of the session table (MaxInt64
// when it is empty).
func (w *writer) oldestSeen(ctx context.Context) (int64, error) {
	var v int64
	if err := w.sess.oldest.QueryRowContext(ctx).Scan(&v); err != nil {
		return 0, fmt.Errorf("read oldest session: %w", err)
	}
	return v, nil
}

// sweepSessions deletes up to sessionSweepLimit sessions that expired by
// leader time ts, oldest first. *oldest is a lower bound of the oldest
// last_seen in the table: while the cutoff has not passed it, nothing can
// be expired and the sweep is skipped. After a sweep it is read back
// exactly.
func (f *FSM) sweepSessions(ctx context.Context, ts int64, oldest *int64, d *sessionCounts) error {
	cutoff, ok := f.expiryCutoff(ts)
	if !ok || cutoff <= *oldest {
		return nil
	}
	r, err := f.w.sess.sweep.ExecContext(ctx, cutoff, sessionSweepLimit)
	if err != nil {
		return fmt.Errorf("expire sessions: %w", err)
	}
	n, err := r.RowsAffected()
	if err != nil {
		return fmt.Errorf("expire sessions: %w", err)
	}
	d.live -= n
	d.expired += n
	if *oldest, err = f.w.oldestSeen(ctx); err != nil {
		return err
	}
	return nil
}

// sessionCheck looks the request's session up before its statements run;
// digest is the request's requestDigest. It returns a response when the
// request must not execute (a retry, or a session error), or nil, with
// known telling whether the session exists.
func (f *FSM) sessionCheck(ctx context.Context, e entry, req *api.Request, digest []byte, d *sessionCounts) (resp *api.Response, known bool, err error) {
	ss := &f.w.sess
	var (
		last         int64
		stored       []byte
		lastSeen     int64
		storedDigest []byte
	)
	err = ss.get.QueryRowContext(ctx, req.ClientID).Scan(&last, &stored, &lastSeen, &storedDigest)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return nil, false, fmt.Errorf("read session: %w", err)
	default:
		known = true
		if cutoff, ok := f.expiryCutoff(e.Timestamp); ok && lastSeen < cutoff {
			// Expired but not swept yet: it is gone all the same.
			if _, err := ss.remove.ExecContext(ctx, req.ClientID); err != nil {
				return nil, false, fmt.Errorf("expire session: %w", err)
			}
			d.live--
			d.expired++
			known = false
		}
	}

	if req.Seq == 0 {
		return &api.Response{Index: e.Index, Err: api.ErrBadSequence}, known, nil
	}
	if !known {
		if req.Seq > 1 {
			return &api.Response{Index: e.Index, Err: api.ErrSessionExpired}, false, nil
		}
		return nil, false, nil
	}
	switch seq := uint64(last); {
	case req.Seq > seq:
		return nil, true, nil
	case req.Seq < seq:
		return &api.Response{Index: e.Index, Err: api.ErrSeqSuperseded}, true, nil
	}
	if storedDigest != nil && !bytes.Equal(storedDigest, digest) {
		// Not a retry: the number was used for another request. The
		// session is left as it was, so the true retry still works.
		return &api.Response{Index: e.Index, Err: api.ErrSeqReused}, true, nil
	}
	// A retry of the last write: answer from memory. Using the session
	// keeps it alive.
	if _, err := ss.touch.ExecContext(ctx, req.ClientID, e.Timestamp); err != nil {
		return nil, true, fmt.Errorf("touch session: %w", err)
	}
	d.deduplicated++
	resp, derr := decodeResponse(stored)
	if derr != nil {
		// Every replica holds the same bytes and fails alike; this is a
		// damaged row, not a reason to halt the cluster.
		f.logger.Error("remembered session response is unreadable", "client_id", req.ClientID, "seq", req.Seq, "error", derr)
		return &api.Response{Index: e.Index, Err: fmt.Errorf("remembered response of session %q seq %d is unreadable: %w", req.ClientID, req.Seq, derr)}, true, nil
	}
	resp.Deduplicated = true
	return resp, true, nil
}

// sessionRecord remembers resp as the outcome of the request's sequence
// number, with the request's digest. *oldest is the batch's lower bound of
// the oldest last_seen (see sweepSessions).
func (f *FSM) sessionRecord(ctx context.Context, e entry, req *api.Request, digest []byte, resp *api.Response, known bool, oldest *int64, d *sessionCounts) error {
	if _, err := f.w.sess.put.ExecContext(ctx, req.ClientID, int64(req.Seq), encodeResponse(resp), e.Timestamp, digest); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	// A known session's last_seen only grows; a new one's is this entry's
	// time.
	*oldest = min(*oldest, e.Timestamp)
	if !known {
		d.live++
	}
	return nil
}

// SessionStats returns the client session counters for /status
// ("store.sessions"): live sessions, writes answered from a session's
// memory, and sessions expired. The counters are replicated state (every
// node counts the same entries) and survive restarts. No I/O.
func (f *FSM) SessionStats() map[string]any {
	return map[string]any{
		"live":         f.sessions.live.Load(),
		"deduplicated": f.sessions.deduplicated.Load(),
		"expired":      f.sessions.expired.Load(),
		"ttl":          f.sessionTTL.String(),
	}
}

// responseVersion is the first byte of an encoded remembered response.
const responseVersion = 1

// Result flags of the response encoding.
const resultQueryShape = 1 << 0

// encodeResponse encodes what a session remembers of a response: its index
// and results, without timings (they differ between replicas) and without
// Err (a request-level failure is never remembered). The format (version 1)
// reuses the command encoding's strings and values:
//
//	version byte | index uvarint | n uvarint | n × result
//	result: flags byte | error string | last insert id varint | rows affected varint
//	        [query shape]: n × column string | n × type string | n × row
//	        (each counted by a uvarint; a row is n uvarint | n × value)
func encodeResponse(r *api.Response) []byte {
	b := make([]byte, 0, 16+16*len(r.Results))
	b = append(b, responseVersion)
	b = binary.AppendUvarint(b, r.Index)
	b = binary.AppendUvarint(b, uint64(len(r.Results)))
	for i := range r.Results {
		res := &r.Results[i]
		var flags byte
		if res.Columns != nil {
			flags |= resultQueryShape
		}
		b = append(b, flags)
		b = appendString(b, res.Error)
		b = binary.AppendVarint(b, res.LastInsertID)
		b = binary.AppendVarint(b, res.RowsAffected)
		if res.Columns == nil {
			continue
		}
		b = binary.AppendUvarint(b, uint64(len(res.Columns)))
		for _, c := range res.Columns {
			b = appendString(b, c)
		}
		b = binary.AppendUvarint(b, uint64(len(res.Types)))
		for _, t := range res.Types {
			b = appendString(b, t)
		}
		b = binary.AppendUvarint(b, uint64(len(res.Rows)))
		for _, row := range res.Rows {
			b = binary.AppendUvarint(b, uint64(len(row)))
			for _, v := range row {
				nb, err := appendValue(b, v)
				if err != nil {
					// Rows hold only Value types (resultValue); should
					// anything else appear, remember it as text rather
					// than fail the entry.
					nb = appendString(append(b, tagString), fmt.Sprint(v))
				}
				b = nb
			}
		}
	}
	return b
}

// decodeResponse decodes encodeResponse's output.
func decodeResponse(b []byte) (*api.Response, error) {
	d := decoder{b: b}
	v, err := d.byte()
	if err != nil {
		return nil, err
	}
	if v != responseVersion {
		return nil, fmt.Errorf("unsupported response version %d", v)
	}
	r := &api.Response{}
	if r.Index, err = d.uvarint(); err != nil {
		return nil, err
	}
	n, err := d.count()
	if err != nil {
		return nil, err
	}
	r.Results = make([]api.Result, n)
	for i := range r.Results {
		res := &r.Results[i]
		flags, err := d.byte()
		if err != nil {
			return nil, err
		}
		if flags&^resultQueryShape != 0 {
			return nil, fmt.Errorf("unknown result flags %#x", flags)
		}
		if res.Error, err = d.string(); err != nil {
			return nil, err
		}
		if res.LastInsertID, err = d.varint(); err != nil {
			return nil, err
		}
		if res.RowsAffected, err = d.varint(); err != nil {
			return nil, err
		}
		if flags&resultQueryShape == 0 {
			continue
		}
		if res.Columns, err = d.strings(); err != nil {
			return nil, err
		}
		if res.Types, err = d.strings(); err != nil {
			return nil, err
		}
		nr, err := d.count()
		if err != nil {
			return nil, err
		}
		if nr > 0 {
			res.Rows = make([][]api.Value, nr)
		}
		for j := range res.Rows {
			nv, err := d.count()
			if err != nil {
				return nil, err
			}
			row := make([]api.Value, nv)
			for k := range row {
				if row[k], err = d.value(); err != nil {
					return nil, err
				}
			}
			res.Rows[j] = row
		}
	}
	if d.off != len(d.b) {
		return nil, fmt.Errorf("%d trailing bytes", len(d.b)-d.off)
	}
	return r, nil
}

// strings reads a counted list of strings; the list is never nil.
func (d *decoder) strings() ([]string, error) {
	n, err := d.count()
	if err != nil {
		return nil, err
	}
	out := make([]string, n)
	for i := range out {
		if out[i], err = d.string(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
