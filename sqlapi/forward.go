package sqlapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/httpx"
)

const (
	// forwardedHeader marks a request forwarded by a follower. A node that
	// receives one and is not the leader answers 503 instead of forwarding
	// it again, so that forwarding can never loop.
	forwardedHeader = "X-Raftlite-Forwarded"
	// servedByHeader names the node that actually served a forwarded
	// request (rqlite's header).
	servedByHeader = "X-Rqlite-Served-By"
	// versionHeader is sent on every response.
	versionHeader = "X-Rqlite-Version"
)

// hopHeaders are connection-level headers that must not be passed on by a
// proxy (RFC 9110 section 7.6.1).
var hopHeaders = []string{
	"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

// newHTTPClient returns the pooled keep-alive client used to forward
// requests to the leader and to probe members: raftlite's shared transport
// (internal/httpx), whose idle pool is sized for forwarding, with no proxy
// and compressed bodies passed through untouched. Redirects are not
// followed: a 301 from the leader goes back to the client unchanged. tlsCfg
// is Config.ClientTLS.
func newHTTPClient(tlsCfg *tls.Config) *http.Client {
	return httpx.NewClient(httpx.Options{TLS: tlsCfg})
}

// normalizeURL turns "host:port" into "http://host:port" and drops a
// trailing slash.
func normalizeURL(addr string) string {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return ""
	}
	if !strings.Contains(addr, "://") {
		addr = "http://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// leaderURL returns the leader's API URL, or "" when no leader is known.
func (s *Server) leaderURL() string {
	return normalizeURL(s.store.LeaderAPIAddr())
}

// awaitLeader waits until a leader other than not is known and returns its
// URL, or "" when ctx ends first or Config.LeaderWait passes.
func (s *Server) awaitLeader(ctx context.Context, not string) string {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.LeaderWait)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if l := s.leaderURL(); l != "" && l != not {
			return l
		}
		select {
		case <-ctx.Done():
			return ""
		case <-tick.C:
		}
	}
}

// toLeader answers a request that only the leader can serve, on a node
// that is not the leader: a 301 with ?redirect, else the leader's own answer
// to the forwarded request. body is the request body already read. While no
// leader is known, or the known one fails, it waits for a new leader and
// resends the request when that is safe (see toLeaderFrom).
func (s *Server) toLeader(w http.ResponseWriter, r *http.Request, p *params, ep endpoint, body []byte) {
	s.toLeaderFrom(w, r, p, ep, bytesBody(body))
}

// bodySource gives a forwarded request its body, afresh for every attempt.
type bodySource interface {
	open() (io.Reader, error)
}

// bytesBody is a body read into memory.
type bytesBody []byte

func (b bytesBody) open() (io.Reader, error) {
	if len(b) == 0 {
		return nil, nil
	}
	return bytes.NewReader(b), nil
}

// fileBody is a body spooled to a file (see handleLoad), streamed from it.
type fileBody struct{ f *os.File }

func (b fileBody) open() (io.Reader, error) {
	st, err := b.f.Stat()
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(b.f, 0, st.Size()), nil
}

// maxForwardAttempts bounds how often one request is sent to a leader.
const maxForwardAttempts = 8

// forwardRetryPause is how long a resendable request waits before it is
// sent again after its connection to the leader failed mid-request: long
// enough for a dead leader's port to refuse, or for the others to notice.
const forwardRetryPause = 50 * time.Millisecond

// toLeaderFrom is toLeader with the body taken from body. A failed forward
// is sent again, within the request's timeout, when that cannot apply a
// write twice:
//   - the request never reached the leader (the connection was refused):
//     any request, to the next leader;
//   - it may have reached it (the connection broke mid-request, or the
//     leader was replaced while it had the request): reads and writes with
//     a session (client_id/seq), which the state machine answers from
//     memory if the first copy was applied; to whichever node leads once
//     the failure is noticed, which may be the same one.
//
// A write without a session that may have reached the leader is not sent
// again: the client hears that its outcome is unknown.
func (s *Server) toLeaderFrom(w http.ResponseWriter, r *http.Request, p *params, ep endpoint, body bodySource) {
	ctx, cancel := requestContext(r, p)
	defer cancel()
	leader := s.leaderURL()
	if leader == "" {
		leader = s.awaitLeader(ctx, "")
	}
	if leader == "" {
		s.metrics.noLeader.Inc()
		writeError(w, api.ErrNoLeader, api.ErrNoLeader.Error())
		return
	}
	if p.redirect {
		s.metrics.redirected.Inc()
		loc := leader + r.URL.Path
		if r.URL.RawQuery != "" {
			loc += "?" + r.URL.RawQuery
		}
		w.Header().Set("Location", loc)
		writeText(w, http.StatusMovedPermanently, "Moved Permanently: "+loc)
		return
	}
	s.metrics.forwarded[ep].Inc()
	for attempt := 1; ; attempt++ {
		if attempt > 1 && leader == s.cfg.AdvAddr && r.Header.Get(forwardedHeader) == "" {
			s.serveHere(w, r, p, body)
			return
		}
		if r.Header.Get(forwardedHeader) != "" || (s.cfg.AdvAddr != "" && leader == s.cfg.AdvAddr) {
			// Already forwarded once (the sender thought we were the leader),
			// or our idea of the leader is ourselves: do not forward again.
			writeError(w, api.ErrNotLeader, api.ErrNotLeader.Error())
			return
		}
		resp, err := s.forwardWhileLeader(ctx, r, body, leader)
		if err == nil && refusedAsNotLeader(resp) {
			resp.Body.Close()
			err = errRefusedNotLeader
		}
		if err == nil {
			s.relay(w, r, resp, leader)
			return
		}
		undelivered := isDialError(err) || errors.Is(err, errRefusedNotLeader)
		if !undelivered && !resendable(p, ep) {
			s.metrics.forwardErrs.Inc()
			msg := fmt.Sprintf("the connection to the leader at %s failed while it had the request (%v); a write may or may not have been applied", leader, err)
			outcome := api.ErrForwardFailed
			if errors.Is(err, errLeaderChanged) {
				msg = fmt.Sprintf("the leader at %s was replaced while the request was with it; a write may or may not have been applied", leader)
				outcome = api.ErrLeadershipLost
			}
			if ctx.Err() != nil {
				msg = fmt.Sprintf("timeout forwarding to the leader at %s; a write may or may not have been applied", leader)
				outcome = api.ErrTimeout
			}
			writeRequestError(w, &requestError{outcome, msg}, encodeOpts{pretty: p.pretty})
			return
		}
		if attempt >= maxForwardAttempts {
			s.forwardFailed(w, p, leader, err)
			return
		}
		next := ""
		if undelivered || errors.Is(err, errLeaderChanged) {
			// Wait until this node knows of another leader.
			next = s.awaitLeader(ctx, leader)
		} else if pause(ctx, forwardRetryPause) {
			next = s.awaitLeader(ctx, "")
		}
		if next == "" {
			s.forwardFailed(w, p, leader, err)
			return
		}
		s.log.Info("forward to the leader failed, sending it again", "old", leader, "new", next, "err", err, "attempt", attempt)
		leader = next
	}
}

// serveHere serves a request that waited for a new leader on the node
// that became it: this one. The request runs through its endpoint again,
// marked as forwarded so that, should this node have lost leadership again
// already, it is refused rather than sent on once more.
func (s *Server) serveHere(w http.ResponseWriter, r *http.Request, p *params, body bodySource) {
	rd, err := body.open()
	if err != nil {
		writeError(w, api.ErrInternal, "reopening the request body: "+err.Error())
		return
	}
	again := r.Clone(r.Context())
	again.Header.Set(forwardedHeader, "1")
	again.Body = http.NoBody
	if rd != nil {
		again.Body = io.NopCloser(rd)
	}
	s.route(r.URL.Path).handle(w, again, p)
}

// pause waits d, or less when ctx ends first; it reports whether ctx is
// still live.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// errRefusedNotLeader: the node taken for the leader answered that it is
// not the leader, or knows none; it proposed nothing.
var errRefusedNotLeader = errors.New("the node taken for the leader is not the leader")

// maxRefusalBody bounds how much of a 503 answer refusedAsNotLeader reads.
const maxRefusalBody = 4 << 10

// refusedAsNotLeader reports whether resp is a 503 not_leader or no_leader
// answer, which means nothing was proposed, so the request may go to the
// next leader. It leaves resp's body readable from the start.
func refusedAsNotLeader(resp *http.Response) bool {
	if resp.StatusCode != http.StatusServiceUnavailable {
		return false
	}
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxRefusalBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), resp.Body), resp.Body}
	var refusal struct {
		Code string `json:"code"`
	}
	return json.Unmarshal(head, &refusal) == nil && (refusal.Code == api.ErrNotLeader.Code || refusal.Code == api.ErrNoLeader.Code)
}

// errLeaderChanged ends a forward whose target stopped being the leader.
var errLeaderChanged = errors.New("leader changed")

// forwardWhileLeader forwards the request, giving up with errLeaderChanged
// as soon as this node learns of a different leader: a paused or
// partitioned old leader would otherwise hold the request for its whole
// timeout.
func (s *Server) forwardWhileLeader(ctx context.Context, r *http.Request, body bodySource, leader string) (*http.Response, error) {
	fctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if l := s.leaderURL(); l != "" && l != leader {
					cancel(errLeaderChanged)
					return
				}
			}
		}
	}()
	resp, err := s.forward(fctx, r, body, leader)
	if err != nil {
		changed := context.Cause(fctx) == errLeaderChanged
		cancel(nil)
		if changed {
			return nil, errLeaderChanged
		}
		return nil, err
	}
	// The body is read after this returns: keep fctx alive until then.
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
	return resp, nil
}

// cancelOnClose ends a forward's context when its answer has been read.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// resendable reports whether a request may be sent again to a new leader
// after the old one may have received it: reads, and writes that carry an
// exactly-once session identity (the state machine answers a duplicate
// from memory).
func resendable(p *params, ep endpoint) bool {
	return ep == epQuery || (p.clientID != "" && p.seq != 0)
}

// isDialError reports whether err happened while connecting, so the request
// never reached the other side.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// forward sends the request (method, path, query, headers including
// Authorization, body) to the leader.
func (s *Server) forward(ctx context.Context, r *http.Request, body bodySource, leader string) (*http.Response, error) {
	target := leader + r.URL.Path
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	rd, err := body.open()
	if err != nil {
		return nil, err
	}
	out, err := http.NewRequestWithContext(ctx, r.Method, target, rd)
	if err != nil {
		return nil, err
	}
	if sr, ok := rd.(*io.SectionReader); ok {
		out.ContentLength = sr.Size()
	}
	copyHeaders(out.Header, r.Header)
	out.Header.Set(forwardedHeader, "1")
	if s.cfg.AdvAddr != "" {
		out.Header.Set("X-Raftlite-Forwarded-By", s.cfg.AdvAddr)
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if prior := r.Header.Get("X-Forwarded-For"); prior != "" {
			host = prior + ", " + host
		}
		out.Header.Set("X-Forwarded-For", host)
	}
	return s.client.Do(out)
}

// relay copies the leader's answer back to the client unchanged.
func (s *Server) relay(w http.ResponseWriter, r *http.Request, resp *http.Response, leader string) {
	defer resp.Body.Close()
	h := w.Header()
	for k := range h {
		if k != versionHeader {
			h.Del(k)
		}
	}
	copyHeaders(h, resp.Header)
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	h.Set(servedByHeader, leader)
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		s.log.Warn("copying the leader's answer failed", "leader", leader, "path", r.URL.Path, "err", err)
	}
}

func (s *Server) forwardFailed(w http.ResponseWriter, p *params, leader string, err error) {
	s.metrics.forwardErrs.Inc()
	s.log.Warn("forwarding to the leader failed", "leader", leader, "err", err)
	o := encodeOpts{pretty: p.pretty}
	if errors.Is(err, errRefusedNotLeader) {
		// Nothing was proposed anywhere: the usual "not leader".
		writeRequestError(w, &requestError{api.ErrNotLeader,
			fmt.Sprintf("%s: the node at %s is not the leader and no other leader is known", api.ErrNotLeader, leader)}, o)
		return
	}
	if errors.Is(err, context.DeadlineExceeded) {
		writeRequestError(w, &requestError{api.ErrTimeout,
			fmt.Sprintf("timeout forwarding to the leader at %s", leader)}, o)
		return
	}
	writeRequestError(w, &requestError{api.ErrForwardFailed,
		fmt.Sprintf("forwarding to the leader at %s failed: %v", leader, err)}, o)
}

// copyHeaders copies src into dst, replacing what dst had under the same
// names and skipping hop-by-hop headers (and those named in Connection).
func copyHeaders(dst, src http.Header) {
	var connNamed []string
	for _, v := range src.Values("Connection") {
		for _, f := range strings.Split(v, ",") {
			if f = strings.TrimSpace(f); f != "" {
				connNamed = append(connNamed, http.CanonicalHeaderKey(f))
			}
		}
	}
outer:
	for k, vv := range src {
		for _, h := range hopHeaders {
			if k == h {
				continue outer
			}
		}
		for _, h := range connNamed {
			if k == h {
				continue outer
			}
		}
		if k == "Content-Length" || k == "Host" {
			continue
		}
		dst[k] = append([]string(nil), vv...)
	}
}
