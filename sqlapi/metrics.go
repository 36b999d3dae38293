package sqlapi

import (
	"bytes"
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// endpoint identifies a route for metrics and expvar.
type endpoint uint8

const (
	epOther endpoint = iota
	epExecute
	epQuery
	epRequest
	epBackup
	epLoad
	epStatus
	epNodes
	epLeader
	epReadyz
	epRemove
	epDebugVars
	epMetrics
	numEndpoints
)

var endpointNames = [numEndpoints]string{
	epOther:     "other",
	epExecute:   "execute",
	epQuery:     "query",
	epRequest:   "request",
	epBackup:    "backup",
	epLoad:      "load",
	epStatus:    "status",
	epNodes:     "nodes",
	epLeader:    "leader",
	epReadyz:    "readyz",
	epRemove:    "remove",
	epDebugVars: "debug_vars",
	epMetrics:   "metrics",
}

func (e endpoint) String() string { return endpointNames[e] }

// latencyBuckets are the upper bounds (seconds) of the request latency
// histogram.
var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// histogram is a lock-free Prometheus-style histogram.
type histogram struct {
	counts  [16]atomic.Uint64 // len(latencyBuckets)+1 (+Inf)
	sumBits atomic.Uint64
	count   atomic.Uint64
}

func (h *histogram) observe(v float64) {
	i := sort.SearchFloat64s(latencyBuckets, v)
	h.counts[i].Add(1)
	h.count.Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// metrics are the HTTP layer's counters, exposed on /metrics in the
// Prometheus text format and partly on /debug/vars.
type metrics struct {
	requests [numEndpoints][600]atomic.Uint64 // by endpoint and status code

	latency     [numEndpoints]histogram
	statements  [numEndpoints]atomic.Uint64
	forwarded   [numEndpoints]atomic.Uint64
	redirected  atomic.Uint64
	forwardErrs atomic.Uint64
	noLeader    atomic.Uint64
	authFail    atomic.Uint64
	staleReads  atomic.Uint64
	panics      atomic.Uint64

	queued           atomic.Uint64 // requests accepted into the queue
	queueBatches     atomic.Uint64
	queueStatements  atomic.Uint64
	queueFailures    atomic.Uint64 // failed batch attempts
	queueBatchErrors atomic.Uint64 // batches given up
}

func newMetrics() *metrics { return &metrics{} }

func (m *metrics) observe(ep endpoint, status int, d time.Duration) {
	if status < 0 || status >= len(m.requests[ep]) {
		status = 0
	}
	m.requests[ep][status].Add(1)
	m.latency[ep].observe(d.Seconds())
}

// eachRequestCount calls fn for every non-zero (endpoint, status) count.
func (m *metrics) eachRequestCount(fn func(ep endpoint, status int, n uint64)) {
	for ep := endpoint(0); ep < numEndpoints; ep++ {
		for code := range m.requests[ep] {
			if n := m.requests[ep][code].Load(); n > 0 {
				fn(ep, code, n)
			}
		}
	}
}

// promWriter writes the Prometheus text exposition format.
type promWriter struct {
	b bytes.Buffer
}

func (w *promWriter) header(name, typ, help string) {
	fmt.Fprintf(&w.b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
}

func (w *promWriter) sample(name string, value float64, labels ...string) {
	w.b.WriteString(name)
	if len(labels) > 0 {
		w.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.b.WriteString(labels[i])
			w.b.WriteString(`="`)
			w.b.WriteString(escapeLabel(labels[i+1]))
			w.b.WriteByte('"')
		}
		w.b.WriteByte('}')
	}
	w.b.WriteByte(' ')
	w.b.WriteString(formatPromFloat(value))
	w.b.WriteByte('\n')
}

func escapeLabel(s string) string {
	if !strings.ContainsAny(s, "\\\"\n") {
		return s
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return r.Replace(s)
}

func formatPromFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// render writes every metric. storeStats is flattened into
// raftlite_store_stat gauges (numeric and boolean leaves only).
func (m *metrics) render(version string, start time.Time, queuePending int, storeStats map[string]any) []byte {
	w := &promWriter{}

	w.header("raftlite_build_info", "gauge", "Build information; the value is always 1.")
	w.sample("raftlite_build_info", 1, "version", version, "go_version", runtime.Version())

	w.header("raftlite_http_requests_total", "counter", "HTTP requests by endpoint and status code.")
	m.eachRequestCount(func(ep endpoint, code int, n uint64) {
		w.sample("raftlite_http_requests_total", float64(n), "endpoint", ep.String(), "code", strconv.Itoa(code))
	})

	w.header("raftlite_http_request_duration_seconds", "histogram", "HTTP request latency by endpoint.")
	for ep := endpoint(0); ep < numEndpoints; ep++ {
		h := &m.latency[ep]
		n := h.count.Load()
		if n == 0 {
			continue
		}
		name := ep.String()
		var cum uint64
		for i, le := range latencyBuckets {
			cum += h.counts[i].Load()
			w.sample("raftlite_http_request_duration_seconds_bucket", float64(cum), "endpoint", name, "le", formatPromFloat(le))
		}
		cum += h.counts[len(latencyBuckets)].Load()
		w.sample("raftlite_http_request_duration_seconds_bucket", float64(cum), "endpoint", name, "le", "+Inf")
		w.sample("raftlite_http_request_duration_seconds_sum", math.Float64frombits(h.sumBits.Load()), "endpoint", name)
		w.sample("raftlite_http_request_duration_seconds_count", float64(cum), "endpoint", name)
	}

	w.header("raftlite_http_statements_total", "counter", "SQL statements received by endpoint.")
	for ep := endpoint(0); ep < numEndpoints; ep++ {
		if n := m.statements[ep].Load(); n > 0 {
			w.sample("raftlite_http_statements_total", float64(n), "endpoint", ep.String())
		}
	}
	w.header("raftlite_http_forwarded_total", "counter", "Requests forwarded to the leader by endpoint.")
	for ep := endpoint(0); ep < numEndpoints; ep++ {
		if n := m.forwarded[ep].Load(); n > 0 {
			w.sample("raftlite_http_forwarded_total", float64(n), "endpoint", ep.String())
		}
	}
	simple := []struct {
		name, help string
		v          uint64
	}{
		{"raftlite_http_forward_errors_total", "Forwarded requests that got no answer from the leader.", m.forwardErrs.Load()},
		{"raftlite_http_redirects_total", "Requests answered with a redirect to the leader.", m.redirected.Load()},
		{"raftlite_http_leader_not_found_total", "Requests refused because no leader was known.", m.noLeader.Load()},
		{"raftlite_http_auth_failures_total", "Requests refused for missing or wrong credentials.", m.authFail.Load()},
		{"raftlite_http_stale_reads_total", "Reads refused as stale (freshness).", m.staleReads.Load()},
		{"raftlite_http_panics_total", "Handler panics recovered.", m.panics.Load()},
		{"raftlite_queue_requests_total", "Write requests accepted into the queue.", m.queued.Load()},
		{"raftlite_queue_batches_total", "Queued batches applied.", m.queueBatches.Load()},
		{"raftlite_queue_statements_total", "Queued statements applied.", m.queueStatements.Load()},
		{"raftlite_queue_attempt_failures_total", "Failed attempts to apply a queued batch.", m.queueFailures.Load()},
		{"raftlite_queue_batches_failed_total", "Queued batches given up.", m.queueBatchErrors.Load()},
	}
	for _, s := range simple {
		w.header(s.name, "counter", s.help)
		w.sample(s.name, float64(s.v))
	}
	w.header("raftlite_queue_pending", "gauge", "Write requests waiting in the queue.")
	w.sample("raftlite_queue_pending", float64(queuePending))

	w.header("go_goroutines", "gauge", "Number of goroutines that currently exist.")
	w.sample("go_goroutines", float64(runtime.NumGoroutine()))
	w.header("process_start_time_seconds", "gauge", "Start time of the HTTP API since the Unix epoch in seconds.")
	w.sample("process_start_time_seconds", float64(start.UnixNano())/1e9)

	if len(storeStats) > 0 {
		var flat []statLeaf
		flattenStats("", storeStats, &flat)
		sort.Slice(flat, func(i, j int) bool { return flat[i].key < flat[j].key })
		w.header("raftlite_store_stat", "gauge", "Numeric and boolean values of /status store, by dotted key.")
		for _, l := range flat {
			w.sample("raftlite_store_stat", l.v, "key", l.key)
		}
	}
	return w.b.Bytes()
}

type statLeaf struct {
	key string
	v   float64
}

// flattenStats collects the numeric leaves of a /status object (numbers,
// booleans and strings that parse as numbers).
func flattenStats(prefix string, m map[string]any, out *[]statLeaf) {
	for k, v := range m {
		key := k
		if prefix != "" {
			key = prefix + "." + k
		}
		switch x := v.(type) {
		case map[string]any:
			flattenStats(key, x, out)
		case bool:
			f := 0.0
			if x {
				f = 1
			}
			*out = append(*out, statLeaf{key, f})
		case string:
			if f, err := strconv.ParseFloat(x, 64); err == nil {
				*out = append(*out, statLeaf{key, f})
			}
		default:
			if f, ok := toFloat(x); ok {
				*out = append(*out, statLeaf{key, f})
			}
		}
	}
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int8:
		return float64(x), true
	case int16:
		return float64(x), true
	case int32:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint:
		return float64(x), true
	case uint8:
		return float64(x), true
	case uint16:
		return float64(x), true
	case uint32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float32:
		return float64(x), true
	case float64:
		return x, true
	case time.Duration:
		return x.Seconds(), true
	}
	return 0, false
}
