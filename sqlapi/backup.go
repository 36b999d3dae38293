package sqlapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"

	"github.com/raftlite/raftlite/fsm"
)

// Backuper is optionally implemented by a Store that can write a
// consistent copy of its database: the SQLite file, or with sqlDump an SQL
// text dump. Without it /db/backup answers 501.
type Backuper interface {
	Backup(ctx context.Context, w io.Writer, sqlDump bool) error
}

// Loader is optionally implemented by a Store that can replace the whole
// database with an uploaded SQLite file (leader only; ErrNotLeader
// otherwise). Without it /db/load accepts only SQL dumps.
type Loader interface {
	Load(ctx context.Context, sqliteFile io.Reader) error
}

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// handleBackup serves GET /db/backup (fmt=binary|sql, compress). It is
// served by the leader unless ?noleader.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request, p *params) {
	b, ok := s.store.(Backuper)
	if !ok {
		writeText(w, http.StatusNotImplemented, "backup is not supported by this node")
		return
	}
	if !p.noLeader && !s.store.IsLeader() {
		s.toLeader(w, r, p, epBackup, nil)
		return
	}
	sqlDump := r.URL.Query().Get("fmt") == "sql"
	compress := r.URL.Query().Has("compress")
	ctx, cancel := requestContext(r, p)
	defer cancel()
	// Buffer the backup so that a failure can still be answered with an
	// error status.
	var buf bytes.Buffer
	var dst io.Writer = &buf
	var gz *gzip.Writer
	if compress {
		gz = gzip.NewWriter(&buf)
		dst = gz
	}
	err := b.Backup(ctx, dst, sqlDump)
	if err == nil && gz != nil {
		err = gz.Close()
	}
	if err != nil {
		if isNotLeader(err) {
			s.toLeader(w, r, p, epBackup, nil)
			return
		}
		writeText(w, http.StatusInternalServerError, "backup: "+oneLine(err.Error()))
		return
	}
	ct := "application/octet-stream"
	if sqlDump && !compress {
		ct = "application/sql"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// handleLoad serves POST /db/load: an SQLite file replaces the database
// (through Loader); any other body is an SQL dump run as one request
// through the log.
func (s *Server) handleLoad(w http.ResponseWriter, r *http.Request, p *params) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if bytes.HasPrefix(body, sqliteHeader) {
		l, ok := s.store.(Loader)
		if !ok {
			writeText(w, http.StatusNotImplemented, "loading an SQLite file is not supported by this node")
			return
		}
		if !s.store.IsLeader() {
			s.toLeader(w, r, p, epLoad, body)
			return
		}
		ctx, cancel := requestContext(r, p)
		defer cancel()
		if err := l.Load(ctx, bytes.NewReader(body)); err != nil {
			s.storeFailed(w, r, p, epLoad, body, err)
			return
		}
		writeResponse(w, http.StatusOK, &apiResponse{}, p.encodeOpts(epLoad))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeText(w, http.StatusBadRequest, errNoStatements.Error())
		return
	}
	req := &fsm.Request{Statements: []fsm.Statement{{SQL: string(body)}}, Transaction: p.tx}
	s.write(w, r, p, epLoad, body, req)
}
