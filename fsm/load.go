package fsm

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/raftlite/raftlite/api"
)

// sqliteMagic starts every SQLite database file.
var sqliteMagic = []byte("SQLite format 3\x00")

// PrepareLoad turns the uploaded SQLite file at path (a scratch copy the
// caller owns) into a raftlite database that can replace the live one
// through a snapshot: it checks that the file is a sound SQLite database
// (PRAGMA quick_check), leaves it in rollback-journal mode, drops any
// _raftlite_* tables it brought, creates the internal tables and copies the
// live member metadata (_raftlite_nodes) into it, so that the cluster still
// knows its members' API addresses after the load.
//
// Client sessions are not carried over: a load replaces the whole database,
// and a session's remembered answer to a write made against the old data
// would be wrong against the new. Retries of writes made before the load
// are applied afresh. The applied index is set later, by SetLoadIndex, once
// the caller knows the index Raft will give the load.
func (f *FSM) PrepareLoad(ctx context.Context, path string) error {
	if err := checkMagic(path); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", scratchDSN(path))
	if err != nil {
		return err
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if err := quickCheck(ctx, db); err != nil {
		return err
	}
	if _, err := db.ExecContext(ctx, "PRAGMA journal_mode=DELETE"); err != nil {
		return fmt.Errorf("%w: %w", api.ErrInvalidLoad, err)
	}
	names, err := internalTables(ctx, db)
	if err != nil {
		return fmt.Errorf("%w: %w", api.ErrInvalidLoad, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, n := range names {
		if _, err := tx.ExecContext(ctx, "DROP TABLE "+quoteIdent(n)); err != nil {
			return fmt.Errorf("drop %s: %w", n, err)
		}
	}
	if err := createInternalTables(ctx, tx); err != nil {
		return err
	}
	for _, n := range f.Nodes() {
		if _, err := tx.ExecContext(ctx, "INSERT OR REPLACE INTO _raftlite_nodes (id, api_addr) VALUES (?, ?)", n.ID, n.APIAddr); err != nil {
			return fmt.Errorf("copy nodes: %w", err)
		}
	}
	return tx.Commit()
}

// SetLoadIndex records index as the applied index of the database prepared
// by PrepareLoad at path: the index of the snapshot that will carry it.
func SetLoadIndex(ctx context.Context, path string, index uint64) error {
	db, err := sql.Open("sqlite", scratchDSN(path))
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "UPDATE _raftlite_meta SET value = ? WHERE key = 'applied_index'", int64(index)); err != nil {
		return fmt.Errorf("set applied index: %w", err)
	}
	return removeSidecars(path)
}

// checkMagic checks that path starts like an SQLite database.
func checkMagic(path string) error {
	fh, err := os.Open(path)
	if err != nil {
		return err
	}
	defer fh.Close()
	b := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(fh, b); err != nil || !bytes.Equal(b, sqliteMagic) {
		return fmt.Errorf("%w: not an SQLite database file", api.ErrInvalidLoad)
	}
	return nil
}

// quickCheck runs PRAGMA quick_check on db.
func quickCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, "PRAGMA quick_check")
	if err != nil {
		return fmt.Errorf("%w: %w", api.ErrInvalidLoad, err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("%w: %w", api.ErrInvalidLoad, err)
		}
		if s != "ok" && len(problems) < 5 {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %w", api.ErrInvalidLoad, err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: integrity check failed: %s", api.ErrInvalidLoad, strings.Join(problems, "; "))
	}
	return nil
}
