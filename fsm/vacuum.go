package fsm

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/sqlsplit"
)

// VACUUM rebuilds the database file, which SQLite cannot do inside a
// transaction, and every entry is applied inside its batch's transaction.
// A VACUUM is not neutral either: it renumbers the rowids of tables
// without an INTEGER PRIMARY KEY (and without indexes), so every replica
// must run it, at the same log position, exactly once as far as anything
// after it can tell.
//
// So an entry whose request holds a plain VACUUM ends its batch (as a
// checksum marker does, see ApplyBatch). Its VACUUM statements answer
// SQLite's empty execute result where they stand, the entry's other
// statements run as usual, and the batch's transaction also records
// vacuum_pending in _raftlite_meta. Right after that commit, before the
// batch's index is published, the apply path runs VACUUM on the write
// connection, deletes vacuum_pending, and checkpoints the WAL into the
// database file, which shrinks it on disk; the next batch starts after.
// A crash anywhere in there leaves vacuum_pending set with the entry
// applied, and Open runs the VACUUM before anything else: a VACUUM that
// had completed runs again on the same content with the same outcome. A
// VACUUM that fails (it needs room for a copy of the database) halts the
// FSM like a batch that cannot commit: carrying on would leave this
// replica's rowids unlike the others'. The answer is the same on every
// replica, whatever the rebuild did locally. vacuum_pending is never seen
// by a checksum marker (it is gone before the next batch) and checksums
// leave it out anyway.
//
// A VACUUM statement is run after the entry's other statements, even
// those written after it; in rqlite it runs where it stands. Only a plain
// "VACUUM" (or "VACUUM main") outside a Transaction request is taken this
// way. VACUUM INTO writes a file on the node and stays refused (SQLite:
// cannot VACUUM from within a transaction), as does VACUUM in a
// Transaction request, as in rqlite, where that runs inside one.
//
// Every node must run a version that does this: an older one refuses the
// VACUUM and keeps its old rowids.

// vacuumPendingKey is the _raftlite_meta key of a committed VACUUM not yet
// run.
const vacuumPendingKey = "vacuum_pending"

// isVacuum reports whether sql is a plain VACUUM of the main database: the
// word VACUUM, optionally the schema name main, and an optional ';'.
func isVacuum(sql string) bool {
	if !containsFold(sql, "vacuum") {
		return false // almost every statement, without tokenizing it
	}
	toks, open := sqlsplit.Tokens(sql)
	if open {
		return false
	}
	words := make([]string, 0, 2)
	for i, t := range toks {
		text := sql[t.Start:t.End]
		switch t.Kind {
		case sqlsplit.Semi:
			if i != len(toks)-1 {
				return false
			}
		case sqlsplit.Word:
			words = append(words, strings.ToLower(text))
		case sqlsplit.Quoted:
			if text[0] == '\'' {
				return false // VACUUM 'x' is not a schema name SQLite takes here
			}
			words = append(words, strings.ToLower(text[1:len(text)-1]))
		default:
			return false
		}
	}
	switch len(words) {
	case 1:
		return words[0] == "vacuum"
	case 2:
		return words[0] == "vacuum" && words[1] == "main"
	}
	return false
}

// holdsVacuum reports whether l is an entry whose requests hold a VACUUM
// the apply path runs (see above), so that it must end its batch: an
// execute entry, a CmdBatch entry with such a request among its own, or
// the last part of a command in parts (its statements are in the earlier
// parts, so every last part ends its batch: one more commit per large
// write). A byte search rules out almost every other entry before
// anything is decoded.
func holdsVacuum(l *raft.Log) bool {
	if l.Type != raft.LogCommand {
		return false
	}
	if isLastChunk(l.Data) {
		return true
	}
	if !containsFold(l.Data, "vacuum") {
		return false
	}
	cmd, err := DecodeCommand(l.Data)
	if err != nil {
		return false
	}
	switch cmd.Type {
	case CmdExecute:
		return requestHoldsVacuum(cmd.Request)
	case CmdBatch:
		for _, req := range cmd.Requests {
			if requestHoldsVacuum(req) {
				return true
			}
		}
	}
	return false
}

// requestHoldsVacuum reports whether the apply path runs a VACUUM for req.
func requestHoldsVacuum(req *api.Request) bool {
	if req == nil || req.Transaction || req.ReadOnly {
		return false
	}
	for _, st := range req.Statements {
		if isVacuum(st.SQL) {
			return true
		}
	}
	return false
}

// containsFold reports whether b holds word (lower-case ASCII) in any case.
func containsFold[T string | []byte](b T, word string) bool {
	for i := 0; i+len(word) <= len(b); i++ {
		j := 0
		for j < len(word) && b[i+j]|0x20 == word[j] {
			j++
		}
		if j == len(word) {
			return true
		}
	}
	return false
}

// vacuum runs a VACUUM the last batch committed (vacuum_pending set):
// rebuilds the database file, clears vacuum_pending and checkpoints the
// WAL into the file, truncating both. It runs on the write connection,
// outside any transaction, on Raft's FSM goroutine right after the commit,
// or in Open after a crash. An error means the VACUUM did not complete.
func (f *FSM) vacuum(ctx context.Context) error {
	start := time.Now()
	before := fileSize(f.path) + fileSize(f.path+"-wal")
	if err := f.w.internal(ctx, "VACUUM"); err != nil {
		return fmt.Errorf("vacuum: %w", err)
	}
	if err := f.w.internal(ctx, "DELETE FROM _raftlite_meta WHERE key = ?", vacuumPendingKey); err != nil {
		return fmt.Errorf("vacuum: clear %s: %w", vacuumPendingKey, err)
	}
	// The rebuilt pages are in the WAL; copying them back shrinks the
	// database file to its new size. Readers that still use older pages
	// (a snapshot being streamed) hold part of it back for a moment: the
	// WAL size watcher finishes the job then (TruncateWAL).
	var busy, frames, done int
	if err := f.w.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &frames, &done); err != nil {
		f.logger.Warn("checkpoint after VACUUM failed", "error", err)
	}
	f.metrics.vacuumSeconds.Observe(time.Since(start).Seconds())
	f.logger.Info("database vacuumed", "bytes_before", before,
		"bytes_after", fileSize(f.path)+fileSize(f.path+"-wal"), "wal_busy", busy == 1,
		"duration", time.Since(start))
	return nil
}

// vacuumPending reports whether a committed VACUUM has not run yet.
func (w *writer) vacuumPending(ctx context.Context) (bool, error) {
	var n int
	err := w.conn.QueryRowContext(ctx, "SELECT count(*) FROM _raftlite_meta WHERE key = ?", vacuumPendingKey).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read %s: %w", vacuumPendingKey, err)
	}
	return n > 0, nil
}
