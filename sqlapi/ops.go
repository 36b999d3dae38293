package sqlapi

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/raftlite/raftlite/api"
)

// rqlite's operations endpoints: POST /snapshot, /reap and /boot.

// handleSnapshot serves POST /snapshot: this node (it is not forwarded:
// every node compacts its own log) takes a snapshot now. ?trailing=N keeps
// N log entries behind it, as rqlite's does. The answer is rqlite's: 200
// with an empty body.
func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request, p *params) {
	var trailing uint64
	if v := r.URL.Query().Get("trailing"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, api.ErrBadRequest, fmt.Sprintf("invalid trailing %q: want a number of log entries", v))
			return
		}
		trailing = n
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	if _, err := s.store.Snapshot(ctx, trailing); err != nil {
		writeRequestError(w, classifyStoreError(err), encodeOpts{pretty: p.pretty})
		return
	}
	writeText(w, http.StatusOK, "")
}

// reapedNode is one member POST /reap removed, shaped like /nodes' time
// fields: seconds as a number and as a duration.
type reapedNode struct {
	ID           string  `json:"id"`
	Voter        bool    `json:"voter"`
	Unreachable  float64 `json:"unreachable"`
	UnreachableS string  `json:"unreachable_s"`
}

// DefaultReapMinUnreachable is how long POST /reap wants a member
// unreachable before it removes it, unless ?min_unreachable says otherwise.
const DefaultReapMinUnreachable = 10 * time.Second

// handleReap serves POST /reap [raftlite]: the leader (followers forward)
// removes every member it has not reached for ?min_unreachable (default
// DefaultReapMinUnreachable; 0: any it cannot reach now), without waiting
// for the reap timeouts, and answers {"reaped":[...]}.
func (s *Server) handleReap(w http.ResponseWriter, r *http.Request, p *params) {
	minDown := DefaultReapMinUnreachable
	if v := r.URL.Query().Get("min_unreachable"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(w, api.ErrBadRequest, fmt.Sprintf("invalid min_unreachable %q: want a duration such as 30s", v))
			return
		}
		minDown = d
	}
	if !s.store.IsLeader() {
		s.toLeader(w, r, p, epReap, nil)
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	members, err := s.store.Reap(ctx, minDown)
	if err != nil {
		s.clusterOpFailed(w, r, p, epReap, nil, "reap", err)
		return
	}
	out := struct {
		Reaped []reapedNode `json:"reaped"`
	}{Reaped: make([]reapedNode, 0, len(members))}
	for _, m := range members {
		d := m.Unreachable.Round(time.Millisecond)
		out.Reaped = append(out.Reaped, reapedNode{ID: m.ID, Voter: m.Voter, Unreachable: d.Seconds(), UnreachableS: d.String()})
	}
	b, err := json.Marshal(out)
	if err != nil {
		writeError(w, api.ErrInternal, "encoding reaped members: "+err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, b, p.pretty)
}

// handleBoot serves POST /boot: the body, an SQLite file streamed as it
// arrives (no -load-max-bytes limit, never forwarded), replaces the
// database of a node that is the whole cluster. As rqlite does, a body
// that is not an SQLite file is a 400 ("invalid SQLite data") and a
// cluster of more than one node is refused; success is 200 with an empty
// body.
func (s *Server) handleBoot(w http.ResponseWriter, r *http.Request, p *params) {
	body := bufio.NewReaderSize(r.Body, 64<<10)
	head, _ := body.Peek(len(sqliteHeader))
	if !bytes.Equal(head, sqliteHeader) {
		writeError(w, api.ErrBadRequest, "invalid SQLite data")
		return
	}
	p.timeout = max(p.timeout, minTransferTimeout)
	ctx, cancel := requestContext(r, p)
	defer cancel()
	start := time.Now()
	if err := s.store.Boot(ctx, body); err != nil {
		writeRequestError(w, classifyStoreError(err), encodeOpts{pretty: p.pretty})
		return
	}
	s.log.Info("node booted from an uploaded SQLite file", "took", time.Since(start).Round(time.Millisecond))
	writeText(w, http.StatusOK, "")
}
