package sqlapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/raftlite/raftlite/api"
)

func (p *params) encodeOpts(ep endpoint) encodeOpts {
	return encodeOpts{
		pretty:      p.pretty,
		timings:     p.timings,
		associative: p.associative,
		blobArray:   p.blobArray,
		execRows:    ep == epRequest,
	}
}

// handleExecute serves POST /db/execute: writes through the log.
func (s *Server) handleExecute(w http.ResponseWriter, r *http.Request, p *params) {
	start := time.Now()
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	stmts, err := parseStatementList(body, isTextPlain(r.Header.Get("Content-Type")))
	s.metrics.decode[epExecute].Observe(time.Since(start).Seconds())
	if err != nil && !(p.queue && p.wait && errors.Is(err, errNoStatements)) {
		// (An empty queued write with ?wait is a flush marker, as in rqlite.)
		writeError(w, api.ErrBadRequest, err.Error())
		return
	}
	s.metrics.statements[epExecute].Add(float64(len(stmts)))
	if p.queue && (len(stmts) > 0 || p.wait) {
		s.queuedExecute(w, r, p, body, stmts)
		return
	}
	if len(stmts) == 0 {
		writeNoResults(w, p, epExecute)
		return
	}
	req := &api.Request{Statements: stmts, Transaction: p.tx, ClientID: p.clientID, Seq: p.seq}
	s.write(w, r, p, epExecute, body, req)
}

// handleQuery serves GET /db/query?q=SQL and POST /db/query: reads at the
// requested consistency level.
func (s *Server) handleQuery(w http.ResponseWriter, r *http.Request, p *params) {
	var body []byte
	var stmts []api.Statement
	if r.Method == http.MethodGet {
		if p.hasQ && p.q == "" {
			writeError(w, api.ErrBadRequest, "query parameter not set")
			return
		}
		// No q at all is no statement, answered as rqlite answers [""].
		stmts = dropBlank([]api.Statement{{SQL: p.q}})
	} else {
		var ok bool
		if body, ok = s.readBody(w, r); !ok {
			return
		}
		var err error
		if stmts, err = parseStatementList(body, isTextPlain(r.Header.Get("Content-Type"))); err != nil {
			writeError(w, api.ErrBadRequest, err.Error())
			return
		}
	}
	s.metrics.statements[epQuery].Add(float64(len(stmts)))
	if len(stmts) == 0 {
		writeNoResults(w, p, epQuery)
		return
	}
	s.read(w, r, p, epQuery, body, &api.Request{Statements: stmts, Transaction: p.tx})
}

// handleRequest serves POST /db/request: a read-only request is a read at
// the requested level, anything else one write through the log whose
// results have the execute or the query shape per statement.
func (s *Server) handleRequest(w http.ResponseWriter, r *http.Request, p *params) {
	start := time.Now()
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	if isTextPlain(r.Header.Get("Content-Type")) {
		// rqlite's /db/request reads only JSON; a text body would be one
		// statement of unknown kind.
		writeError(w, api.ErrBadRequest, errInvalidJSON.Error()+": /db/request takes a JSON array of statements, not text/plain")
		return
	}
	stmts, err := parseStatementList(body, false)
	s.metrics.decode[epRequest].Observe(time.Since(start).Seconds())
	if err != nil {
		writeError(w, api.ErrBadRequest, err.Error())
		return
	}
	s.metrics.statements[epRequest].Add(float64(len(stmts)))
	if len(stmts) == 0 {
		writeNoResults(w, p, epRequest)
		return
	}
	req := &api.Request{Statements: stmts, Transaction: p.tx, ClientID: p.clientID, Seq: p.seq}
	// A text of several statements is classified by its first, as rqlite
	// does (see firstStatements).
	classify := req
	if probe, ok := firstStatements(req); ok {
		classify = probe
	}
	ctx, cancel := requestContext(r, p)
	ro, err := s.store.AllReadOnly(ctx, classify)
	cancel()
	if err == nil && ro {
		req.ClientID, req.Seq = "", 0
		s.read(w, r, p, epRequest, body, req)
		return
	}
	// A statement that cannot be classified (a syntax error, a missing
	// table) goes through the log: the state machine reports its error.
	s.write(w, r, p, epRequest, body, req)
}

// write runs req through the Raft log on the leader, or sends the request
// to the leader.
func (s *Server) write(w http.ResponseWriter, r *http.Request, p *params, ep endpoint, body []byte, req *api.Request) {
	if !s.store.IsLeader() {
		s.toLeader(w, r, p, ep, body)
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	if err := s.queue.awaitQueued(ctx); err != nil {
		s.storeFailed(w, r, p, ep, body, err)
		return
	}
	resp, err := s.store.Execute(ctx, req)
	if err != nil {
		s.storeFailed(w, r, p, ep, body, err)
		return
	}
	start := time.Now()
	s.writeExecuted(w, p, ep, resp)
	s.metrics.respond[ep].Observe(time.Since(start).Seconds())
}

// storeFailed answers a failed Store call: "not leader" (nothing was
// proposed) goes to the leader, "no leader" is a 503, anything else a
// request-level failure.
func (s *Server) storeFailed(w http.ResponseWriter, r *http.Request, p *params, ep endpoint, body []byte, err error) {
	switch {
	case errors.Is(err, api.ErrNotLeader):
		s.toLeader(w, r, p, ep, body)
	case errors.Is(err, api.ErrNoLeader):
		s.metrics.noLeader.Inc()
		writeError(w, api.ErrNoLeader, api.ErrNoLeader.Error())
	default:
		re := classifyStoreError(err)
		if re.outcome == api.ErrStore {
			s.log.Warn("store request failed", "path", r.URL.Path, "err", err)
		}
		writeRequestError(w, re, p.encodeOpts(ep))
	}
}

// writeExecuted answers with what applying a log entry produced.
func (s *Server) writeExecuted(w http.ResponseWriter, p *params, ep endpoint, resp *api.Response) {
	o := p.encodeOpts(ep)
	if resp == nil {
		writeRequestError(w, &requestError{api.ErrStore, "store returned no response"}, o)
		return
	}
	if resp.Err != nil {
		writeRequestError(w, classifyStoreError(resp.Err), o)
		return
	}
	out := &apiResponse{results: resp.Results, dedup: resp.Deduplicated}
	if p.raftIndex {
		out.raftIndex = resp.Index
	}
	if p.timings {
		out.time = time.Since(p.start).Seconds()
	}
	writeResponse(w, http.StatusOK, out, o)
}

// read serves a read at the requested consistency level.
func (s *Server) read(w http.ResponseWriter, r *http.Request, p *params, ep endpoint, body []byte, req *api.Request) {
	lvl := p.level
	if lvl == api.LevelAuto {
		lvl = api.LevelWeak
		if !s.store.IsVoter() {
			lvl = api.LevelNone
		}
	}
	leaderOnly := lvl == api.LevelWeak || lvl == api.LevelStrong
	if leaderOnly && !s.store.IsLeader() {
		s.toLeader(w, r, p, ep, body)
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	minIndex := p.minIndex
	switch lvl {
	case api.LevelNone:
		if p.freshness > 0 && !s.store.IsLeader() {
			if re := s.checkFresh(p); re != nil {
				s.metrics.staleReads.Inc()
				writeRequestError(w, re, p.encodeOpts(ep))
				return
			}
		}
	case api.LevelLinearizable:
		// Any node: the leader proves its leadership and names an index;
		// the read waits for the local copy to reach it.
		idx, err := s.readIndex(ctx)
		if err != nil {
			s.readIndexFailed(w, r, p, ep, body, err)
			return
		}
		minIndex = max(minIndex, idx)
	case api.LevelStrong:
		// Through the log: every earlier entry is applied before this one,
		// so min_index needs no wait.
		strong := *req
		strong.ReadOnly = true
		strong.ClientID, strong.Seq = "", 0
		resp, err := s.store.Execute(ctx, &strong)
		if err != nil {
			s.storeFailed(w, r, p, ep, body, err)
			return
		}
		s.writeExecuted(w, p, ep, resp)
		return
	}
	if minIndex > 0 {
		if err := s.store.WaitApplied(ctx, minIndex); err != nil {
			re := classifyStoreError(err)
			if errors.Is(re.outcome, api.ErrTimeout) {
				re.msg = fmt.Sprintf("timeout waiting for log index %d to be applied", minIndex)
			}
			writeRequestError(w, re, p.encodeOpts(ep))
			return
		}
	}
	results, err := s.store.Query(ctx, req)
	if err != nil {
		s.storeFailed(w, r, p, ep, body, err)
		return
	}
	out := &apiResponse{results: results}
	if p.timings {
		out.time = time.Since(p.start).Seconds()
	}
	writeResponse(w, http.StatusOK, out, p.encodeOpts(ep))
}

// maxReadIndexAttempts bounds how often a linearizable read asks for a read
// index while a failover is under way.
const maxReadIndexAttempts = 3

// readIndex obtains a read index. While no leader is known (an election is
// under way) it waits, within ctx and Config.LeaderWait, for one and asks
// again, as requests that need the leader do.
func (s *Server) readIndex(ctx context.Context) (uint64, error) {
	for attempt := 1; ; attempt++ {
		idx, err := s.store.ReadIndex(ctx)
		if err == nil {
			return idx, nil
		}
		if attempt >= maxReadIndexAttempts || ctx.Err() != nil || !errors.Is(err, api.ErrNoLeader) {
			return 0, err
		}
		if s.awaitLeader(ctx, "") == "" {
			return 0, err
		}
	}
}

// readIndexFailed answers a linearizable read whose read index could not be
// obtained. Nothing was read: a node that cannot confirm the leader's index
// (a follower cut off from the leader, a leader without a quorum) never
// falls back to its local copy. "Not leader" goes to the leader as for any
// leader-only request, "no leader" is the usual 503, and anything else (the
// leader unreachable, a timeout) a request-level error that says so.
func (s *Server) readIndexFailed(w http.ResponseWriter, r *http.Request, p *params, ep endpoint, body []byte, err error) {
	if errors.Is(err, api.ErrNotLeader) || errors.Is(err, api.ErrNoLeader) {
		s.storeFailed(w, r, p, ep, body, err)
		return
	}
	re := *classifyStoreError(err)
	if re.outcome == api.ErrStore {
		re.outcome = api.ErrUnavailable
	}
	re.msg = "linearizable read: no read index from the leader: " + re.msg
	writeRequestError(w, &re, p.encodeOpts(ep))
}

// checkFresh refuses a level=none read on a follower, as rqlite does, when
// it has not heard from the leader within freshness, and, with
// freshness_strict, also when its database is behind the commit index it
// knows and has not applied anything within freshness (a follower that is
// behind but applying is still fresh: the entries it lacks were committed
// moments ago).
func (s *Server) checkFresh(p *params) *requestError {
	stale := &requestError{api.ErrStaleRead, "stale read"}
	if lc := s.store.LastContact(); lc.IsZero() || time.Since(lc) > p.freshness {
		return stale
	}
	if p.freshnessStrict {
		caughtUp, at := s.store.ApplyProgress()
		if !caughtUp && (at.IsZero() || time.Since(at) > p.freshness) {
			return stale
		}
	}
	return nil
}
