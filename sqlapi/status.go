package sqlapi

import (
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/raftlite/raftlite/api"
)

// handleStatus serves GET /status: node and cluster diagnostics. The store
// object is Store.Stats(); ?key=a.b returns a sub-object ({} when absent).
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request, p *params) {
	status := s.status()
	var v any = status
	if p.key != "" {
		v = subKey(status, p.key)
	}
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, api.ErrInternal, "encoding status: "+err.Error())
		return
	}
	writeJSONBytes(w, http.StatusOK, b, p.pretty)
}

// status builds the /status object.
func (s *Server) status() map[string]any {
	now := time.Now()
	storeStats := s.store.Stats()
	if storeStats == nil {
		storeStats = map[string]any{}
	}
	authState := "disabled"
	if s.cfg.Auth != nil {
		authState = "enabled"
	}
	host, _ := os.Hostname()
	return map[string]any{
		"store": storeStats,
		"http": map[string]any{
			"bind_addr": s.cfg.Addr,
			"adv_addr":  s.cfg.AdvAddr,
			"auth":      authState,
			"queue":     s.queue.stats(),
		},
		"node": map[string]any{
			"start_time":   s.start,
			"current_time": now,
			"uptime":       now.Sub(s.start).String(),
		},
		"build": map[string]any{
			"version":    s.cfg.Version,
			"go_version": runtime.Version(),
			"compiler":   runtime.Compiler,
		},
		"runtime": map[string]any{
			"GOARCH":        runtime.GOARCH,
			"GOOS":          runtime.GOOS,
			"GOMAXPROCS":    runtime.GOMAXPROCS(0),
			"num_cpu":       runtime.NumCPU(),
			"num_goroutine": runtime.NumGoroutine(),
			"version":       runtime.Version(),
		},
		"os": map[string]any{
			"pid":       os.Getpid(),
			"ppid":      os.Getppid(),
			"page_size": os.Getpagesize(),
			"hostname":  host,
		},
	}
}

// subKey walks a dotted key path: a missing key gives {}, a non-object on
// the way gives that value (rqlite's behaviour).
func subKey(m map[string]any, key string) any {
	var cur any = m
	for _, k := range strings.Split(key, ".") {
		obj, ok := asObject(cur)
		if !ok {
			return cur
		}
		v, ok := obj[k]
		if !ok {
			return map[string]any{}
		}
		cur = v
	}
	return cur
}

// asObject returns v as a JSON object, converting typed maps by a JSON
// round trip when needed.
func asObject(v any) (map[string]any, bool) {
	switch x := v.(type) {
	case map[string]any:
		return x, true
	case nil, string, bool, float64, int, int64, uint64:
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil || len(b) == 0 || b[0] != '{' {
		return nil, false
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil, false
	}
	return m, true
}

// handleReadyz serves GET /readyz: 200 when this node has a leader and an
// open store; ?noleader checks only that this node answers. Without a
// leader, the store's reason is added when it says more than that (e.g. the
// node is not yet part of a cluster, and why). Its headers carry the node's
// progress (progressHeaders), which /nodes reads from each member's probe.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, p *params) {
	setProgressHeaders(w.Header(), s.store.Progress())
	if p.noLeader {
		writeText(w, http.StatusOK, "[+]node ok")
		return
	}
	if s.store.LeaderID() == "" && s.store.LeaderAPIAddr() == "" {
		body := "[+]node ok\n[+]leader does not exist"
		if err := s.store.Ready(); err != nil && !errors.Is(err, api.ErrNoLeader) {
			body += "\n[+]store not ready: " + oneLine(err.Error())
		}
		writeText(w, http.StatusServiceUnavailable, body)
		return
	}
	if !s.store.IsLeader() && s.leaderURL() == "" {
		// A follower that cannot reach the leader cannot serve writes.
		writeText(w, http.StatusServiceUnavailable, "[+]node ok\n[+]leader not contactable: API address unknown")
		return
	}
	if err := s.store.Ready(); err != nil {
		writeText(w, http.StatusServiceUnavailable, "[+]node ok\n[+]leader ok\n[+]store not ready: "+oneLine(err.Error()))
		return
	}
	// rqlite v10 adds the database's own line after the store's.
	writeText(w, http.StatusOK, "[+]node ok\n[+]leader ok\n[+]store ok\n[+]db ok")
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// handleMetrics serves GET /metrics in the Prometheus text format.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request, p *params) {
	s.metrics.handler().ServeHTTP(w, r)
}

// handleExpvar serves GET /debug/vars: every published expvar, or only
// ?key's.
func (s *Server) handleExpvar(w http.ResponseWriter, r *http.Request, p *params) {
	var sb strings.Builder
	sb.WriteString("{\n")
	first := true
	expvar.Do(func(kv expvar.KeyValue) {
		if p.key != "" && p.key != kv.Key {
			return
		}
		if !first {
			sb.WriteString(",\n")
		}
		first = false
		fmt.Fprintf(&sb, "%q: %s", kv.Key, kv.Value)
	})
	sb.WriteString("\n}\n")
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(sb.String()))
}

// The expvar "http" object sums the counters of every live Server (there
// is one per process outside tests).
var (
	liveMu      sync.Mutex
	liveServers = map[*Server]struct{}{}
	publishOnce sync.Once
)

func registerServer(s *Server) {
	publishOnce.Do(func() {
		if expvar.Get("http") == nil {
			expvar.Publish("http", expvar.Func(expvarHTTP))
		}
		for _, group := range []string{"store", "cluster"} {
			if expvar.Get(group) == nil {
				expvar.Publish(group, expvar.Func(func() any { return rqliteVars(group, series()) }))
			}
		}
	})
	liveMu.Lock()
	liveServers[s] = struct{}{}
	liveMu.Unlock()
}

func unregisterServer(s *Server) {
	liveMu.Lock()
	delete(liveServers, s)
	liveMu.Unlock()
}

func expvarHTTP() any { return rqliteVars("http", series()) }

// series sums the metrics of every live Server's registry (there is one per
// process outside tests): a counter under its Prometheus name followed by
// its label values (raftlite_http_requests_total.backup.200), a histogram's
// sample count under its name with "_count" added. It is the one source
// of the /debug/vars objects, so /metrics and /debug/vars never disagree.
func series() map[string]float64 {
	liveMu.Lock()
	servers := make([]*Server, 0, len(liveServers))
	for s := range liveServers {
		servers = append(servers, s)
	}
	liveMu.Unlock()
	out := map[string]float64{}
	for _, s := range servers {
		families, err := s.metrics.reg.Gather()
		if err != nil {
			continue
		}
		for _, mf := range families {
			for _, m := range mf.GetMetric() {
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					key += "." + l.GetValue()
				}
				switch mf.GetType() {
				case dto.MetricType_COUNTER:
					out[key] += m.GetCounter().GetValue()
				case dto.MetricType_HISTOGRAM:
					out[key+"_count"] += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return out
}
