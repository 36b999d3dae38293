package sqlapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/raftlite/raftlite/api"
)

// node is one member as /nodes and /leader show it. Field order and
// omissions follow rqlite.
type node struct {
	ID        string  `json:"id,omitempty"`
	APIAddr   string  `json:"api_addr,omitempty"`
	Addr      string  `json:"addr,omitempty"`
	Version   string  `json:"version"`
	Voter     bool    `json:"voter"`
	Reachable bool    `json:"reachable"`
	Leader    bool    `json:"leader"`
	Time      float64 `json:"time,omitempty"`
	TimeS     string  `json:"time_s,omitempty"`
	Error     string  `json:"error,omitempty"`
	// [raftlite] AppliedIndex is the index of the last log entry applied
	// to the member's database, and Lag how many entries that is behind
	// the leader's committed index: both omitted when the member's /readyz
	// did not report them (it is unreachable, still starting, or -auth
	// does not give "*" the ready permission), Lag also when the leader's
	// did not. After rqlite's fields, which keep their order.
	AppliedIndex *uint64 `json:"applied_index,omitempty"`
	Lag          *uint64 `json:"lag,omitempty"`

	committed uint64 // the member's committed index, when AppliedIndex is set
}

// The headers of a /readyz answer that tell the node's progress
// (api.Progress).
const (
	appliedIndexHeader   = "X-Raftlite-Applied-Index"
	committedIndexHeader = "X-Raftlite-Committed-Index"
)

func setProgressHeaders(h http.Header, p api.Progress) {
	h.Set(appliedIndexHeader, strconv.FormatUint(p.AppliedIndex, 10))
	h.Set(committedIndexHeader, strconv.FormatUint(p.CommittedIndex, 10))
}

// progressFromHeaders reads what setProgressHeaders wrote; ok is false
// when the headers are missing or malformed.
func progressFromHeaders(h http.Header) (p api.Progress, ok bool) {
	applied, err1 := strconv.ParseUint(h.Get(appliedIndexHeader), 10, 64)
	committed, err2 := strconv.ParseUint(h.Get(committedIndexHeader), 10, 64)
	if err1 != nil || err2 != nil {
		return api.Progress{}, false
	}
	return api.Progress{AppliedIndex: applied, CommittedIndex: committed}, true
}

// setProgress records a member's progress.
func (n *node) setProgress(p api.Progress) {
	applied := p.AppliedIndex
	n.AppliedIndex, n.committed = &applied, p.CommittedIndex
}

// setLags sets each member's lag behind the leader's committed index, when
// the leader's progress is known. Members were probed at slightly
// different moments, so one may be ahead of the leader's figure: its lag
// is 0.
func setLags(nodes []*node) {
	i := slices.IndexFunc(nodes, func(n *node) bool { return n.Leader && n.AppliedIndex != nil })
	if i < 0 {
		return
	}
	committed := nodes[i].committed
	for _, n := range nodes {
		if n.AppliedIndex != nil {
			lag := committed - min(committed, *n.AppliedIndex)
			n.Lag = &lag
		}
	}
}

// probeTimeout bounds one member probe.
func (s *Server) probeTimeout(r *http.Request) time.Duration {
	if r.URL.Query().Has("timeout") {
		if d, err := time.ParseDuration(r.URL.Query().Get("timeout")); err == nil && d > 0 {
			return d
		}
	}
	return s.cfg.ProbeTimeout
}

// probe fills in whether m's API answers, its version and the round trip
// time. This node answers for itself without a network round trip.
func (s *Server) probe(ctx context.Context, m api.Member, timeout time.Duration) *node {
	n := &node{ID: m.ID, APIAddr: normalizeURL(m.APIAddr), Addr: m.RaftAddr, Voter: m.Voter}
	start := time.Now()
	defer func() {
		d := time.Since(start)
		n.Time, n.TimeS = d.Seconds(), d.String()
	}()
	if n.APIAddr == "" {
		n.Error = "API address unknown"
		return n
	}
	if s.cfg.AdvAddr != "" && n.APIAddr == s.cfg.AdvAddr {
		n.Version, n.Reachable, n.Leader = s.cfg.Version, true, m.Leader
		n.setProgress(s.store.Progress())
		return n
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.APIAddr+"/readyz?noleader", nil)
	if err != nil {
		n.Error = err.Error()
		return n
	}
	resp, err := s.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			n.Error = "timeout waiting for node to respond"
		} else {
			n.Error = err.Error()
		}
		return n
	}
	resp.Body.Close()
	// Any answer (even a 401) proves the API is reachable.
	n.Version = resp.Header.Get(versionHeader)
	if n.Version == "" {
		n.Version = "unknown"
	}
	n.Reachable, n.Leader = true, m.Leader
	if p, ok := progressFromHeaders(resp.Header); ok {
		n.setProgress(p)
	}
	return n
}

// probeAll probes members in parallel.
func (s *Server) probeAll(ctx context.Context, members []api.Member, timeout time.Duration) []*node {
	out := make([]*node, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = s.probe(ctx, m, timeout)
		}()
	}
	wg.Wait()
	return out
}

// handleNodes serves GET /nodes: the voting members (all members with
// ?nonvoters), probed, as a map keyed by id or with ?ver=2 as
// {"nodes":[...]} sorted by id.
func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request, p *params) {
	members, err := s.store.Members()
	if err != nil {
		writeError(w, api.ErrUnavailable, "store nodes: "+oneLine(err.Error()))
		return
	}
	if !p.nonVoters {
		voters := members[:0:0]
		for _, m := range members {
			if m.Voter {
				voters = append(voters, m)
			}
		}
		members = voters
	}
	nodes := s.probeAll(r.Context(), members, s.probeTimeout(r))
	setLags(nodes)
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	var b []byte
	if p.ver == "2" {
		b, err = json.Marshal(struct {
			Nodes []*node `json:"nodes"`
		}{nodes})
	} else {
		legacy := make(map[string]*node, len(nodes))
		for _, n := range nodes {
			legacy[n.ID] = n
		}
		b, err = json.Marshal(legacy)
	}
	if err != nil {
		writeError(w, api.ErrInternal, "encoding nodes: "+err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, b, p.pretty)
}

// handleLeader serves GET /leader (the leader's node object, 503 when
// none) and POST /leader (the leader steps down, optionally in favour of
// {"id":"target"}).
func (s *Server) handleLeader(w http.ResponseWriter, r *http.Request, p *params) {
	if r.Method == http.MethodPost {
		s.stepDown(w, r, p)
		return
	}
	members, err := s.store.Members()
	if err != nil {
		writeError(w, api.ErrUnavailable, "store nodes: "+oneLine(err.Error()))
		return
	}
	leaderID := s.store.LeaderID()
	var leader *api.Member
	for i := range members {
		if members[i].Leader || (leaderID != "" && members[i].ID == leaderID) {
			leader = &members[i]
			leader.Leader = true
			break
		}
	}
	if leader == nil {
		s.metrics.noLeader.Inc()
		writeError(w, api.ErrNoLeader, api.ErrNoLeader.Error())
		return
	}
	n := s.probe(r.Context(), *leader, s.probeTimeout(r))
	b, err := json.Marshal(n)
	if err != nil {
		writeError(w, api.ErrInternal, "encoding leader: "+err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, b, p.pretty)
}

// idBody parses a {"id":"..."} body. An empty body gives "" when optional.
func idBody(body []byte, optional bool) (string, error) {
	if len(body) == 0 || string(body) == "{}" {
		if optional {
			return "", nil
		}
		return "", errors.New(`body must be {"id":"node-id"}`)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return "", errInvalidJSON
	}
	id, ok := m["id"].(string)
	if len(m) != 1 || !ok || (id == "" && !optional) {
		return "", errors.New(`body must be {"id":"node-id"}`)
	}
	return id, nil
}

func (s *Server) stepDown(w http.ResponseWriter, r *http.Request, p *params) {
	var target string
	if !s.membershipChange(w, r, p, epLeader, "step down", true, func(ctx context.Context, id string) error {
		target = id
		return s.store.StepDown(ctx, id)
	}) {
		return
	}
	s.log.Info("leader stepped down on request", "target", target)
	writeText(w, http.StatusOK, "")
}

// handleRemove serves DELETE /remove with {"id":"node-id"}.
func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request, p *params) {
	var removed string
	if !s.membershipChange(w, r, p, epRemove, "remove node", false, func(ctx context.Context, id string) error {
		removed = id
		return s.store.Remove(ctx, id)
	}) {
		return
	}
	s.log.Info("node removed on request", "id", removed)
	writeText(w, http.StatusOK, "")
}

// promoteReply is the answer of POST /promote.
type promoteReply struct {
	ID       string `json:"id"`
	Promoted bool   `json:"promoted"` // false: it already was a voter
	Message  string `json:"message"`
}

// handlePromote serves POST /promote with {"id":"node-id"}: the leader
// makes the learner a voter once it has caught up (409 learner_not_ready
// until then, 404 for an id that is not a member); a voter is left alone
// (200, "promoted":false).
func (s *Server) handlePromote(w http.ResponseWriter, r *http.Request, p *params) {
	var reply promoteReply
	if !s.membershipChange(w, r, p, epPromote, "promote node", false, func(ctx context.Context, id string) error {
		promoted, err := s.store.Promote(ctx, id)
		reply = promoteReply{ID: id, Promoted: promoted, Message: "already a voter"}
		return err
	}) {
		return
	}
	if reply.Promoted {
		reply.Message = "promoted to voter"
		s.log.Info("learner promoted on request", "id", reply.ID)
	}
	b, err := json.Marshal(reply)
	if err != nil {
		writeError(w, api.ErrInternal, "encoding promote reply: "+err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, b, p.pretty)
}

// membershipChange serves the leader-only change of endpoint ep, whose
// body is {"id":"node-id"} (or empty, when optionalID): a follower passes
// the request to the leader, the leader runs change within the request's
// timeout. It returns true when change succeeded, for the caller to answer;
// otherwise it has answered.
func (s *Server) membershipChange(w http.ResponseWriter, r *http.Request, p *params, ep endpoint, what string, optionalID bool,
	change func(ctx context.Context, id string) error) bool {
	body, ok := s.readBody(w, r)
	if !ok {
		return false
	}
	id, err := idBody(body, optionalID)
	if err != nil {
		writeError(w, api.ErrBadRequest, err.Error())
		return false
	}
	if !s.store.IsLeader() {
		s.toLeader(w, r, p, ep, body)
		return false
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	if err := change(ctx, id); err != nil {
		s.clusterOpFailed(w, r, p, ep, body, what, err)
		return false
	}
	return true
}

func (s *Server) clusterOpFailed(w http.ResponseWriter, r *http.Request, p *params, ep endpoint, body []byte, what string, err error) {
	switch {
	case errors.Is(err, api.ErrNotLeader):
		s.toLeader(w, r, p, ep, body)
	case errors.Is(err, api.ErrNoLeader):
		writeError(w, api.ErrNoLeader, api.ErrNoLeader.Error())
	default:
		re := classifyStoreError(err)
		writeError(w, re.outcome, fmt.Sprintf("%s: %s", what, oneLine(re.msg)))
	}
}
