package fsm

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/raftlite/raftlite/api"
)

// A command larger than one log entry may be (cluster's MaxEntryBytes) is
// proposed as CmdChunk entries, its encoding cut in parts. hashicorp/raft
// decodes each entry of an AppendEntries with go-msgpack, whose cost grows
// with the square of an entry's size (a 50 MB entry allocated about 5 GB on
// each follower, and the load cost the leader its leadership); parts of a
// megabyte cost next to nothing.
//
// Every part but the last is stored in _raftlite_chunks, in the batch
// transaction of its entry: it is replicated state like any other, so a
// snapshot taken between two parts, a restart and a new leader all keep
// them. The last part reads the others back, removes them, and applies the
// whole command at its own entry, in the same transaction: a command
// applies whole or not at all, and its client session (exactly-once) works
// as for any entry. A sequence whose leader lost its leadership never
// completes (the new leader does not continue it; the client retries as a
// new sequence, under the same client_id/seq if it had one); its parts are
// removed when the next sequence starts. The leader proposes one sequence
// at a time, and the log orders everything the old leader got committed
// before anything of the new one, so a first part may remove every other
// sequence's.
var chunkSchema = []string{
	`CREATE TABLE IF NOT EXISTS _raftlite_chunks (
		id INTEGER NOT NULL,
		part INTEGER NOT NULL,
		data BLOB NOT NULL,
		PRIMARY KEY (id, part)
	) WITHOUT ROWID`,
}

// chunkStmts are the apply path's statements on _raftlite_chunks.
type chunkStmts struct {
	dropOthers, put, parts, drop *sql.Stmt
}

var chunkQueries = []string{
	`DELETE FROM _raftlite_chunks WHERE id != ?`,
	`INSERT OR REPLACE INTO _raftlite_chunks (id, part, data) VALUES (?, ?, ?)`,
	`SELECT part, data FROM _raftlite_chunks WHERE id = ? ORDER BY part`,
	`DELETE FROM _raftlite_chunks WHERE id = ?`,
}

func (c *chunkStmts) list() []**sql.Stmt {
	return []**sql.Stmt{&c.dropOthers, &c.put, &c.parts, &c.drop}
}

// errIncompleteChunks answers a last part whose sequence misses parts,
// which a leader that proposes its parts in order never makes; every
// replica answers it alike.
var errIncompleteChunks = errors.New("the parts of this write before its last are missing from the log")

// applyChunk applies one part at entry index inside the batch transaction.
// For the last part it returns the whole command, decoded; otherwise (and
// when the whole does not decode) the part's own response. An error must
// halt the batch.
func (f *FSM) applyChunk(ctx context.Context, index uint64, c *Chunk) (whole *Command, resp *api.Response, err error) {
	st := &f.w.chunks
	id := int64(c.ID)
	resp = &api.Response{Index: index}
	if c.Part == 0 {
		if _, err := st.dropOthers.ExecContext(ctx, id); err != nil {
			return nil, nil, fmt.Errorf("drop abandoned chunks: %w", err)
		}
	}
	if c.Part+1 < c.Total {
		if _, err := st.put.ExecContext(ctx, id, int64(c.Part), c.Data); err != nil {
			return nil, nil, fmt.Errorf("store chunk %d of %d: %w", c.Part, c.Total, err)
		}
		return nil, resp, nil
	}
	data, complete, err := f.chunkParts(ctx, id, c)
	if err != nil {
		return nil, nil, err
	}
	if _, err := st.drop.ExecContext(ctx, id); err != nil {
		return nil, nil, fmt.Errorf("drop chunks: %w", err)
	}
	if !complete {
		resp.Err = errIncompleteChunks
		return nil, resp, nil
	}
	whole, derr := DecodeCommand(data)
	if derr == nil && (whole.Type == CmdChunk || whole.Type == CmdChecksum) {
		derr = fmt.Errorf("chunked command of type %d", whole.Type)
	}
	if derr != nil {
		f.logger.Warn("skipping undecodable chunked command", "index", index, "error", derr)
		resp.Err = fmt.Errorf("apply entry %d: %w", index, derr)
		return nil, resp, nil
	}
	return whole, nil, nil
}

// chunkParts reads the stored parts of sequence id and returns them joined
// with the last part c, and whether parts 0 to c.Part-1 were all there.
func (f *FSM) chunkParts(ctx context.Context, id int64, c *Chunk) ([]byte, bool, error) {
	rows, err := f.w.chunks.parts.QueryContext(ctx, id)
	if err != nil {
		return nil, false, fmt.Errorf("read chunks: %w", err)
	}
	defer rows.Close()
	var data []byte
	next := int64(0)
	for rows.Next() {
		var part int64
		var p []byte
		if err := rows.Scan(&part, &p); err != nil {
			return nil, false, fmt.Errorf("read chunks: %w", err)
		}
		if part != next {
			return nil, false, nil
		}
		if data == nil {
			data = make([]byte, 0, (len(p)+1)*int(c.Total))
		}
		data = append(data, p...)
		next++
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read chunks: %w", err)
	}
	if next != int64(c.Part) {
		return nil, false, nil
	}
	return append(data, c.Data...), true, nil
}
