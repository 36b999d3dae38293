package sqlapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
)

// Watch (/db/watch) streams committed row changes, etcd-watch style, from
// any node; POST /db/compact trims the history through the log. See
// docs/API.md, "Watch".

// sseHeartbeat is how long a Server-Sent Events stream stays silent at
// most: a comment line then keeps proxies and clients from timing it out.
const sseHeartbeat = 15 * time.Second

// maxLongPollWait bounds ?wait of a long poll.
const maxLongPollWait = 5 * time.Minute

// watchQuery is a parsed /db/watch request.
type watchQuery struct {
	req api.WatchRequest
	// wait is ?wait: a long poll (JSON) that waits this long; sse is
	// set when no wait was given or the client accepts only an event
	// stream.
	wait time.Duration
	sse  bool
}

// parseWatch reads /db/watch's parameters and Last-Event-ID (an
// EventSource reconnecting: resume after that index).
func parseWatch(r *http.Request) (*watchQuery, error) {
	vals := r.URL.Query()
	q := &watchQuery{req: api.WatchRequest{Prev: vals.Has("prev") && vals.Get("prev") != "false", Where: vals.Get("where")}}
	q.req.Tables = splitList(vals.Get("tables"))
	q.req.Ops = splitList(vals.Get("ops"))
	var err error
	if vals.Has("from") {
		if q.req.From, err = strconv.ParseUint(vals.Get("from"), 10, 64); err != nil {
			return nil, fmt.Errorf("from is not an index: %q", vals.Get("from"))
		}
	}
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		last, err := strconv.ParseUint(id, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("Last-Event-ID is not an index: %q", id)
		}
		q.req.From = last + 1
	}
	if vals.Has("limit") {
		if q.req.Limit, err = strconv.Atoi(vals.Get("limit")); err != nil || q.req.Limit <= 0 {
			return nil, fmt.Errorf("limit is not a positive number: %q", vals.Get("limit"))
		}
	}
	q.sse = !vals.Has("wait") || strings.Contains(r.Header.Get("Accept"), "text/event-stream")
	if vals.Has("wait") && vals.Get("wait") != "" {
		if q.wait, err = time.ParseDuration(vals.Get("wait")); err != nil || q.wait < 0 || q.wait > maxLongPollWait {
			return nil, fmt.Errorf("wait is not a duration between 0 and %v: %q", maxLongPollWait, vals.Get("wait"))
		}
	}
	if err := q.req.Validate(); err != nil {
		return nil, err
	}
	return q, nil
}

// splitList splits a comma-separated parameter, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// EndWatches ends every watch stream and long poll, now and from now on.
// A graceful shutdown of an http.Server that serves the API, which waits
// for handlers to return, needs it first (http.Server.RegisterOnShutdown);
// Shutdown calls it.
func (s *Server) EndWatches() { s.endWatches.Do(func() { close(s.watchesEnded) }) }

// watchContext is r's context, ended by EndWatches too.
func (s *Server) watchContext(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(r.Context())
	go func() {
		select {
		case <-s.watchesEnded:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// handleWatch serves GET /db/watch: without ?wait, a Server-Sent Events
// stream (one event per log index holding changes, its id the index);
// with ?wait=D, one JSON page {"events":[...],"next":N}, answered as soon
// as there is at least one event or after D.
func (s *Server) handleWatch(w http.ResponseWriter, r *http.Request, _ *params) {
	q, err := parseWatch(r)
	if err != nil {
		writeError(w, api.ErrBadRequest, err.Error())
		return
	}
	ctx, cancel := s.watchContext(r)
	defer cancel()
	if q.sse {
		s.streamWatch(ctx, w, q)
		return
	}
	page, err := s.store.WatchChanges(ctx, q.req, q.wait)
	if err != nil {
		writeWatchError(w, err)
		return
	}
	body, err := json.Marshal(page)
	if err != nil {
		writeError(w, api.ErrInternal, "encode events: "+err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, body, r.URL.Query().Has("pretty"))
}

// writeWatchError answers a watch failure; api.ErrCompacted's body also
// carries oldest_index, the oldest index still available.
func writeWatchError(w http.ResponseWriter, err error) {
	var ce *api.CompactedError
	if !errors.As(err, &ce) {
		re := classifyStoreError(err)
		writeError(w, re.outcome, re.msg)
		return
	}
	body, _ := json.Marshal(map[string]any{"results": []any{}, "error": ce.Error(), "code": api.ErrCompacted.Code, "oldest_index": ce.Oldest})
	writeJSONBytes(w, api.ErrCompacted.Status, body, false)
}

// streamWatch serves the event stream. The first page is read before the
// headers go out, so that a bad filter or a compacted index is answered
// with its status; later failures end the stream with an "error" event.
func (s *Server) streamWatch(ctx context.Context, w http.ResponseWriter, q *watchQuery) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, api.ErrInternal, "streaming is not supported by this connection")
		return
	}
	page, err := s.store.WatchChanges(ctx, q.req, 0)
	if err != nil {
		writeWatchError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	for {
		var buf []byte
		for _, ev := range page.Events {
			data, err := json.Marshal(ev)
			if err != nil {
				s.sseError(w, flusher, api.ErrInternal, "encode event: "+err.Error())
				return
			}
			buf = fmt.Appendf(buf, "id: %d\ndata: %s\n\n", ev.Index, data)
		}
		if len(buf) == 0 {
			buf = []byte(": keepalive\n\n")
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		flusher.Flush()
		q.req.From = page.Next
		page, err = s.store.WatchChanges(ctx, q.req, sseHeartbeat)
		if err != nil {
			if ctx.Err() == nil {
				re := watchOutcome(err)
				s.sseError(w, flusher, re.outcome, re.msg)
			}
			return
		}
	}
}

// watchOutcome classifies a watch error.
func watchOutcome(err error) *requestError {
	if errors.Is(err, context.Canceled) {
		return &requestError{api.ErrCanceled, err.Error()}
	}
	return classifyStoreError(err)
}

// sseError ends a stream with an "error" event carrying the JSON error
// shape.
func (s *Server) sseError(w http.ResponseWriter, flusher http.Flusher, outcome *api.Error, msg string) {
	data, _ := json.Marshal(map[string]string{"error": msg, "code": outcome.Code})
	_, _ = fmt.Fprintf(w, "event: error\ndata: %s\n\n", data)
	flusher.Flush()
}

// compactReply is the body of POST /db/compact.
type compactReply struct {
	// Index is the log index of the compaction entry.
	Index uint64 `json:"index"`
}

// handleCompact serves POST /db/compact?index=N: trim the change history
// up to and including N on every replica, through the log (on the leader;
// forwarded there from a follower).
func (s *Server) handleCompact(w http.ResponseWriter, r *http.Request, p *params) {
	vals, _ := url.ParseQuery(r.URL.RawQuery)
	upTo, err := strconv.ParseUint(vals.Get("index"), 10, 64)
	if err != nil {
		writeError(w, api.ErrBadRequest, "index is not a log index: "+strconv.Quote(vals.Get("index")))
		return
	}
	if !s.store.IsLeader() {
		s.toLeader(w, r, p, epCompact, nil)
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	index, err := s.store.CompactWatch(ctx, upTo)
	if err != nil {
		s.storeFailed(w, r, p, epCompact, nil, err)
		return
	}
	body, _ := json.Marshal(compactReply{Index: index})
	writeJSONBytes(w, http.StatusOK, body, p.pretty)
}
