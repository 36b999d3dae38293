package sqlapi

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
)

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
	q := r.URL.Query()
	local := p.noLeader || q.Get("level") == "none"
	if !local && !s.store.IsLeader() {
		s.toLeader(w, r, p, epBackup, nil)
		return
	}
	var opt api.BackupOptions
	switch f := q.Get("fmt"); f {
	case "", "binary":
	case "sql":
		opt.SQL = true
	default:
		writeError(w, api.ErrBadRequest, fmt.Sprintf("unknown backup format %q: want binary or sql", f))
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
	err := s.store.Backup(ctx, dst, opt)
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
	if errors.Is(err, api.ErrNotLeader) && !local {
		s.toLeader(w, r, p, epBackup, nil)
		return
	}
	writeError(w, api.ErrStore, "backup: "+oneLine(err.Error()))
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
// spooled to a file in Config.TempDir, never held in memory; a follower
// streams the spooled file to the leader. On the leader an SQLite file
// (recognised by its header) replaces the whole database through
// Store.Load, which reaches every node through Raft's snapshot path, never
// the log. Anything else is SQL text, executed on top of the database as
// rqlite does (executeSQLText).
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
	if !s.store.IsLeader() {
		s.toLeaderFrom(w, r, p, epLoad, fileBody{f})
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	head := make([]byte, len(sqliteHeader))
	n, _ := io.ReadFull(f, head)
	var err error
	if bytes.Equal(head[:n], sqliteHeader) {
		var src io.Reader
		if src, err = (fileBody{f}).open(); err == nil {
			err = s.store.Load(ctx, src)
		}
		if err == nil {
			writeResponse(w, http.StatusOK, &apiResponse{}, p.encodeOpts(epLoad))
			return
		}
	} else {
		var resp *apiResponse
		if resp, err = s.executeSQLText(ctx, f); err == nil {
			writeResponse(w, http.StatusOK, resp, p.encodeOpts(epLoad))
			return
		}
	}
	if errors.Is(err, api.ErrNotLeader) {
		s.toLeaderFrom(w, r, p, epLoad, fileBody{f})
		return
	}
	s.storeFailed(w, r, p, epLoad, nil, err)
}

// spoolBody copies the request body, bounded by MaxLoadBytes, into a new
// file in TempDir and returns it. On failure it has answered (413, 400 or
// 500) and returns false.
func (s *Server) spoolBody(w http.ResponseWriter, r *http.Request) (*os.File, bool) {
	max := s.cfg.MaxLoadBytes
	if r.ContentLength > max {
		writeError(w, api.ErrRequestTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", max))
		return nil, false
	}
	f, err := os.CreateTemp(s.cfg.TempDir, "raftlite-load-*")
	if err != nil {
		writeError(w, api.ErrInternal, "load: "+err.Error())
		return nil, false
	}
	fail := func(outcome *api.Error, msg string) (*os.File, bool) {
		f.Close()
		os.Remove(f.Name())
		writeError(w, outcome, msg)
		return nil, false
	}
	if r.Body != nil {
		_, err = io.Copy(f, http.MaxBytesReader(w, r.Body, max))
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(api.ErrRequestTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", max))
		}
		var pe *os.PathError
		if errors.As(err, &pe) {
			return fail(api.ErrInternal, "load: spooling the upload: "+err.Error())
		}
		return fail(api.ErrBadRequest, "reading request body: "+err.Error())
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fail(api.ErrInternal, "load: "+err.Error())
	}
	return f, true
}
