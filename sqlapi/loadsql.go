package sqlapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/sqlsplit"
)

// executeSQLText executes the SQL text spooled in f on top of the
// database, as rqlite's /db/load does with anything that is not an SQLite
// file (its shell's .restore of a dump relies on it), and answers rqlite's
// way: one result for the whole text, the execute result of its last
// statement (last_insert_id and rows_affected of the last write that had
// them), or the first error.
//
// The text is cut into statements (sqlsplit: ';' outside quotes, comments
// and trigger bodies), read one at a time, so memory is bounded by the
// largest statement, not by the upload. A dump's own transaction control
// and PRAGMA foreign_keys (sqlite3's .dump and /db/backup?fmt=sql write
// them) are left out: statements run in Transaction requests, and foreign
// keys are the nodes' -fk setting. The statements go through the log in
// requests of at most one entry's worth (Config.MaxEntryBytes), each a
// transaction: a text that fits in one entry applies entirely or not at
// all; a larger one applies entry by entry and stops at the first error,
// with the entries before it applied.
func (s *Server) executeSQLText(ctx context.Context, f *os.File) (*apiResponse, error) {
	src, err := fileBody{f}.open()
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	limit := queueMaxBytes(s.cfg.MaxEntryBytes)
	var (
		chunk []api.Statement
		last  api.Result
		ran   bool
	)
	flush := func() (bool, error) {
		if len(chunk) == 0 {
			return true, nil
		}
		resp, err := s.store.Execute(ctx, &api.Request{Transaction: true, Statements: chunk})
		if err != nil {
			return false, err
		}
		chunk, ran = chunk[:0], true
		if resp.Err != nil {
			return false, resp.Err
		}
		for _, r := range resp.Results {
			if r.Error != "" {
				last = api.Result{Error: r.Error}
				return false, nil
			}
			if r.LastInsertID != 0 {
				last.LastInsertID = r.LastInsertID
			}
			if r.RowsAffected != 0 {
				last.RowsAffected = r.RowsAffected
			}
		}
		return true, nil
	}
	add := func(st sqlsplit.Statement) (bool, error) {
		if st.SQL == "" || sqlsplit.IsDumpBoilerplate(st.Head) {
			return true, nil
		}
		next := api.Statement{SQL: st.SQL}
		if limit > 0 && len(chunk) > 0 && s.store.StatementsSize(append(chunk, next)) > limit {
			if ok, err := flush(); !ok || err != nil {
				return ok, err
			}
		}
		chunk = append(chunk, next)
		return true, nil
	}
	sc := sqlsplit.NewScanner(src)
	for {
		st, err := sc.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: reading the SQL text: %w", api.ErrBadRequest, err)
		}
		if ok, err := add(st); !ok || err != nil {
			return &apiResponse{results: []api.Result{last}}, err
		}
	}
	// Text after the last ';' (or an unfinished quote, comment or trigger)
	// is a statement too: SQLite says what is wrong with it.
	rest := sc.Rest()
	tail := rest.Stmt
	if rest.State == sqlsplit.Open {
		tail = sqlsplit.Statement{SQL: strings.TrimSpace(rest.Text)}
	}
	if tail.SQL != "" {
		if ok, err := add(tail); !ok || err != nil {
			return &apiResponse{results: []api.Result{last}}, err
		}
	}
	if _, err := flush(); err != nil {
		return nil, err
	}
	if !ran {
		return &apiResponse{results: []api.Result{}}, nil
	}
	return &apiResponse{results: []api.Result{last}}, nil
}
