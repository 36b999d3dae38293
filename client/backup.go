package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
)

// BackupFormat selects what Backup downloads.
type BackupFormat string

// The formats of GET /db/backup.
const (
	// BackupBinary is the SQLite database file.
	BackupBinary BackupFormat = "binary"
	// BackupSQL is an SQL text dump.
	BackupSQL BackupFormat = "sql"
)

// sqliteFileHeader starts every SQLite database file.
var sqliteFileHeader = []byte("SQLite format 3\x00")

// Backup downloads a consistent copy of the database (GET /db/backup) in the
// given format. It changes nothing, so it is retried and fails over like a
// read.
func (c *Client) Backup(ctx context.Context, format BackupFormat) ([]byte, error) {
	switch format {
	case BackupBinary, BackupSQL:
	default:
		return nil, fmt.Errorf("raftlite client: unknown backup format %q", string(format))
	}
	rq := c.adminRequest(http.MethodGet, "/db/backup", nil)
	rq.retryAmbiguous = true
	rq.query.set("fmt", string(format))
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return nil, err
	}
	return rep.body, nil
}

// Load replaces the database with data (POST /db/load): an SQLite database
// file (recognised by its header), or an SQL dump, which runs as one request
// through the Raft log. The load takes no session, so it is not retried
// after an ambiguous failure; such an error wraps ErrUnknownOutcome. The
// statement errors of a dump are in the Response (see Response.Err).
func (c *Client) Load(ctx context.Context, data []byte) (*Response, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("raftlite client: Load: nothing to load")
	}
	rq := c.adminRequest(http.MethodPost, "/db/load", data)
	rq.db = true
	rq.write = true
	rq.contentType = "text/plain"
	if bytes.HasPrefix(data, sqliteFileHeader) {
		rq.contentType = "application/octet-stream"
	}
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return nil, err
	}
	return rep.wire.response(nil), nil
}

// CurrentNode returns the base URL of the node the next call tries first:
// the one that last answered successfully (the first configured node before
// any call succeeded). A change after a call means the Client failed over.
func (c *Client) CurrentNode() string {
	return c.core.nodes[c.core.preferred.Load()].base
}
