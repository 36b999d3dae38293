package fsm

import (
	"context"
	"database/sql"
	"fmt"
	"io"
)

// pageReader reads the database image that a connection's open read
// transaction sees: its pages in order, as SQLite's sqlite_dbpage table
// returns them through the pager (so WAL frames up to the transaction's
// mark are included, later ones are not). The bytes are the database file as
// a checkpoint at that moment would leave it, without checkpointing and
// without copying the file first.
type pageReader struct {
	rows     *sql.Rows
	pageSize int
	next     int64  // page number expected next
	rest     []byte // unread part of the current page (valid until rows.Next)
}

// openPages starts reading the pages seen by conn's read transaction and
// returns the reader and the image's size in bytes.
func openPages(ctx context.Context, conn *sql.Conn) (*pageReader, int64, error) {
	var pageSize, pageCount int64
	if err := conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&pageSize); err != nil {
		return nil, 0, fmt.Errorf("page size: %w", err)
	}
	if err := conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pageCount); err != nil {
		return nil, 0, fmt.Errorf("page count: %w", err)
	}
	// No ORDER BY: the table returns pages in order (checked by Read), and
	// an ORDER BY it did not consume would make SQLite sort the whole
	// database in a temporary table first.
	rows, err := conn.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage")
	if err != nil {
		return nil, 0, fmt.Errorf("read pages: %w", err)
	}
	return &pageReader{rows: rows, pageSize: int(pageSize), next: 1}, pageSize * pageCount, nil
}

func (r *pageReader) Read(p []byte) (int, error) {
	for len(r.rest) == 0 {
		if !r.rows.Next() {
			if err := r.rows.Err(); err != nil {
				return 0, fmt.Errorf("read page %d: %w", r.next, err)
			}
			return 0, io.EOF
		}
		var pgno int64
		var data sql.RawBytes
		if err := r.rows.Scan(&pgno, &data); err != nil {
			return 0, fmt.Errorf("read page %d: %w", r.next, err)
		}
		if pgno != r.next || len(data) != r.pageSize {
			return 0, fmt.Errorf("read pages: got page %d of %d bytes, want page %d of %d", pgno, len(data), r.next, r.pageSize)
		}
		r.rest = data
		r.next++
	}
	n := copy(p, r.rest)
	r.rest = r.rest[n:]
	return n, nil
}

// Close ends the query; the read transaction stays open.
func (r *pageReader) Close() error { return r.rows.Close() }
