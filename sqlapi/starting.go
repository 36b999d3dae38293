package sqlapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/raftlite/raftlite/api"
)

// Starting is a node's HTTP handler from the moment its process starts,
// so that a restart that has to read its Raft log first is seen to be
// starting, and why, rather than refusing connections. Until Started hands
// it the API, it answers every request with 503 and a JSON body carrying
// code "starting" and the phase of the start; /readyz and /status (with
// their usual permissions) also carry the progress the phase reports.
// After Started it passes every request to the API.
type Starting struct {
	cfg      Config
	progress func() StartupProgress
	api      atomic.Pointer[Server]
}

// StartupProgress is how far a node's start has got.
type StartupProgress struct {
	// Phase names what the node is doing, e.g. "scanning raft log".
	Phase string
	// Details are further facts about the phase (entries scanned, ...),
	// reported under "starting" by /readyz and /status.
	Details map[string]any
}

// NewStarting returns the handler of a starting node; progress reports
// how far the start has got.
func NewStarting(cfg Config, progress func() StartupProgress) *Starting {
	return &Starting{cfg: cfg.withDefaults(), progress: progress}
}

// Started hands every request from now on to api.
func (s *Starting) Started(api *Server) { s.api.Store(api) }

// startingBody is the JSON answer of a starting node.
type startingBody struct {
	Results  json.RawMessage `json:"results,omitempty"`
	Error    string          `json:"error"`
	Code     string          `json:"code"`
	Ready    *bool           `json:"ready,omitempty"`
	Starting map[string]any  `json:"starting,omitempty"`
}

func (s *Starting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if api := s.api.Load(); api != nil {
		api.ServeHTTP(w, r)
		return
	}
	w.Header().Set(versionHeader, s.cfg.Version)
	// The console's files and the redirect to them need no node: a
	// browser opened on a starting node sees the console, whose calls
	// then say the node is starting.
	switch {
	case r.URL.Path == "/":
		redirectRoot(s.cfg, w, r)
		return
	case isConsolePath(r.URL.Path) && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		serveConsole(s.cfg, w, r)
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	// /readyz and /status show the progress, to those their permission
	// admits; the rest of the API refuses every request alike.
	var need access
	progressShown := false
	if path == "/readyz" || path == "/status" {
		need, progressShown = accessFor(path, http.MethodGet)
	}
	if progressShown {
		if d := s.cfg.Auth.authorize(r, need, s.cfg.Logger); d.status != 0 {
			d.refuse(w, r)
			return
		}
	}
	p := s.progress()
	body := startingBody{Error: "node is starting: " + p.Phase, Code: api.ErrStarting.Code}
	switch {
	case progressShown:
		ready := false
		body.Ready = &ready
		body.Starting = map[string]any{"phase": p.Phase}
		for k, v := range p.Details {
			body.Starting[k] = v
		}
	case strings.HasPrefix(path, "/db/"):
		body.Results = json.RawMessage("[]") // the shape of a request-level failure
	}
	b, err := json.Marshal(body)
	if err != nil { // only plain values: cannot happen
		writeText(w, http.StatusInternalServerError, "encoding the startup state: "+err.Error())
		return
	}
	w.Header().Set("Retry-After", "1")
	writeJSONBytes(w, api.ErrStarting.Status, b, false)
}
