package sqlapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/raftlite/raftlite/fsm"
)

// Backuper is optionally implemented by a Store that can write a
// consistent copy of its database: the SQLite file, or with opt.SQL an SQL
// text dump. Without it /db/backup answers 501.
type Backuper interface {
	Backup(ctx context.Context, w io.Writer, opt fsm.BackupOptions) error
}

// Loader is optionally implemented by a Store that can replace the whole
// database with an uploaded SQLite file (leader only; ErrNotLeader
// otherwise). Without it /db/load accepts only SQL dumps.
type Loader interface {
	Load(ctx context.Context, sqliteFile io.Reader) error
}

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// minTransferTimeout is the least time a backup or load is given: their
// size, not the cluster, sets how long they take, so the ordinary request
// timeout does not bound them.
const minTransferTimeout = 30 * time.Minute

// handleBackup serves GET /db/backup (fmt=binary|sql, compress, tables=).
// It is served by the leader (forwarded from followers) unless level=none
// or ?noleader, which any node serves from its own copy. The backup is
// streamed as it is produced: an error before the first byte is a 500, an
// error later aborts the response, so a truncated download is never taken
// for a whole one.
func (s *Server) handleBackup(w http.ResponseWriter, r *http.Request, p *params) {
	b, ok := s.store.(Backuper)
	if !ok {
		writeText(w, http.StatusNotImplemented, "backup is not supported by this node")
		return
	}
	q := r.URL.Query()
	local := p.noLeader || q.Get("level") == "none"
	if !local && !s.store.IsLeader() {
		s.toLeader(w, r, p, epBackup, nil)
		return
	}
	var opt fsm.BackupOptions
	switch f := q.Get("fmt"); f {
	case "", "binary":
	case "sql":
		opt.SQL = true
	default:
		writeText(w, http.StatusBadRequest, fmt.Sprintf("unknown backup format %q: want binary or sql", f))
		return
	}
	for _, t := range strings.Split(q.Get("tables"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			opt.Tables = append(opt.Tables, t)
		}
	}
	compress := q.Has("compress")
	p.timeout = max(p.timeout, minTransferTimeout)
	ctx, cancel := requestContext(r, p)
	defer cancel()

	ct := "application/octet-stream"
	if opt.SQL && !compress {
		ct = "application/sql"
	}
	lw := &lazyWriter{w: w, contentType: ct}
	var dst io.Writer = lw
	var gz *gzip.Writer
	if compress {
		gz = gzip.NewWriter(lw)
		dst = gz
	}
	err := b.Backup(ctx, dst, opt)
	if err == nil && gz != nil {
		err = gz.Close()
	}
	if err == nil && !lw.started {
		lw.start() // an empty dump is still an answer
	}
	if err == nil {
		return
	}
	if lw.started {
		s.log.Warn("backup failed while streaming", "err", err)
		panic(http.ErrAbortHandler)
	}
	if isNotLeader(s.mapErr(err)) && !local {
		s.toLeader(w, r, p, epBackup, nil)
		return
	}
	writeText(w, http.StatusInternalServerError, "backup: "+oneLine(err.Error()))
}

// lazyWriter sends the response header with the first byte of the body.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) start() {
	l.started = true
	l.w.Header().Set("Content-Type", l.contentType)
	l.w.WriteHeader(http.StatusOK)
}

func (l *lazyWriter) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if !l.started {
		l.start()
	}
	return l.w.Write(b)
}

// handleLoad serves POST /db/load. The body, up to Config.MaxLoadBytes, is
// spooled to a file in Config.TempDir, never held in memory. An SQLite file
// (recognised by its header) replaces the database through Loader, on the
// leader: a follower streams the spooled file to it. Any other body is an
// SQL dump, run as one request through the log; it is read into memory
// and so bounded by MaxBodyBytes.
func (s *Server) handleLoad(w http.ResponseWriter, r *http.Request, p *params) {
	p.timeout = max(p.timeout, minTransferTimeout)
	f, ok := s.spoolBody(w, r)
	if !ok {
		return
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	head := make([]byte, len(sqliteHeader))
	n, _ := io.ReadFull(f, head)
	if bytes.Equal(head[:n], sqliteHeader) {
		s.loadFile(w, r, p, f)
		return
	}
	st, err := f.Stat()
	if err != nil {
		writeText(w, http.StatusInternalServerError, "load: "+err.Error())
		return
	}
	if st.Size() > s.cfg.MaxBodyBytes {
		writeText(w, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("SQL dump too large: limit is %d bytes (SQLite files may be up to %d)", s.cfg.MaxBodyBytes, s.cfg.MaxLoadBytes))
		return
	}
	body := make([]byte, st.Size())
	if _, err := f.ReadAt(body, 0); err != nil && !errors.Is(err, io.EOF) {
		writeText(w, http.StatusInternalServerError, "load: "+err.Error())
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		writeText(w, http.StatusBadRequest, errNoStatements.Error())
		return
	}
	req := &fsm.Request{Statements: []fsm.Statement{{SQL: string(body)}}, Transaction: p.tx}
	s.write(w, r, p, epLoad, body, req)
}

// loadFile installs the SQLite file spooled in f through the Loader.
func (s *Server) loadFile(w http.ResponseWriter, r *http.Request, p *params, f *os.File) {
	l, ok := s.store.(Loader)
	if !ok {
		writeText(w, http.StatusNotImplemented, "loading an SQLite file is not supported by this node")
		return
	}
	if !s.store.IsLeader() {
		s.toLeaderFrom(w, r, p, epLoad, fileBody{f})
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	src, err := fileBody{f}.open()
	if err == nil {
		err = l.Load(ctx, src)
	}
	if err != nil {
		err = s.mapErr(err)
		if isNotLeader(err) {
			s.toLeaderFrom(w, r, p, epLoad, fileBody{f})
			return
		}
		s.storeFailed(w, r, p, epLoad, nil, err)
		return
	}
	writeResponse(w, http.StatusOK, &apiResponse{}, p.encodeOpts(epLoad))
}

// spoolBody copies the request body, bounded by MaxLoadBytes, into a new
// file in TempDir and returns it. On failure it has answered (413, 400 or
// 500) and returns false.
func (s *Server) spoolBody(w http.ResponseWriter, r *http.Request) (*os.File, bool) {
	max := s.cfg.MaxLoadBytes
	if r.ContentLength > max {
		writeText(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", max))
		return nil, false
	}
	f, err := os.CreateTemp(s.cfg.TempDir, "raftlite-load-*")
	if err != nil {
		writeText(w, http.StatusInternalServerError, "load: "+err.Error())
		return nil, false
	}
	fail := func(code int, msg string) (*os.File, bool) {
		f.Close()
		os.Remove(f.Name())
		writeText(w, code, msg)
		return nil, false
	}
	if r.Body != nil {
		_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, max))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", max))
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fail(http.StatusInternalServerError, "load: spooling the upload: "+err.Error())
		}
		return fail(http.StatusBadRequest, "reading request body: "+err.Error())
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(http.StatusInternalServerError, "load: "+err.Error())
	}
	return f, true
}
