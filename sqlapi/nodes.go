package sqlapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
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
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	target, err := idBody(body, true)
	if err != nil {
		writeError(w, api.ErrBadRequest, err.Error())
		return
	}
	if !s.store.IsLeader() {
		s.toLeader(w, r, p, epLeader, body)
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	if err := s.store.StepDown(ctx, target); err != nil {
		s.clusterOpFailed(w, r, p, epLeader, body, "step down", err)
		return
	}
	s.log.Info("leader stepped down on request", "target", target)
	writeText(w, http.StatusOK, "")
}

// handleRemove serves DELETE /remove with {"id":"node-id"}.
func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request, p *params) {
	body, ok := s.readBody(w, r)
	if !ok {
		return
	}
	id, err := idBody(body, false)
	if err != nil {
		writeError(w, api.ErrBadRequest, err.Error())
		return
	}
	if !s.store.IsLeader() {
		s.toLeader(w, r, p, epRemove, body)
		return
	}
	ctx, cancel := requestContext(r, p)
	defer cancel()
	if err := s.store.Remove(ctx, id); err != nil {
		s.clusterOpFailed(w, r, p, epRemove, body, "remove node", err)
		return
	}
	s.log.Info("node removed on request", "id", id)
	writeText(w, http.StatusOK, "")
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
