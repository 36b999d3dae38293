package sqlapi

import (
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
	epPromote
	epDebugVars
	epMetrics
	epChecksum
	epPprof
	epSnapshot
	epReap
	epBoot
	epConsole
	epWatch
	epCompact
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
	epPromote:   "promote",
	epDebugVars: "debug_vars",
	epMetrics:   "metrics",
	epChecksum:  "checksum",
	epPprof:     "pprof",
	epSnapshot:  "snapshot",
	epReap:      "reap",
	epBoot:      "boot",
	epConsole:   "console",
	epWatch:     "watch",
	epCompact:   "compact",
}

func (e endpoint) String() string { return endpointNames[e] }

// latencyBuckets are the request-latency histogram's upper bounds in
// seconds: from half a millisecond (a local read) to the default timeout.
// stageBuckets are the upper bounds of the per-stage histograms: from
// 10 µs (parsing a one-statement body) to 1 s.
var stageBuckets = prometheus.ExponentialBucketsRange(10e-6, 1, 11)

var latencyBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// metrics are the API's Prometheus metrics, in Config.Metrics (where the
// node's cluster and fsm packages register theirs, beside the code that
// measures) or else a registry of the Server's own; never the global one,
// so several servers in one process, as in the tests, do not collide.
// Per-endpoint series are resolved once, so the hot path only increments.
type metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec // by endpoint and status code
	latency    [numEndpoints]prometheus.Observer
	statements [numEndpoints]prometheus.Counter
	forwarded  [numEndpoints]prometheus.Counter
	// decode and respond are the stages of a write before and after the
	// store: reading and parsing the body, and encoding and sending the
	// answer.
	decode  [numEndpoints]prometheus.Observer
	respond [numEndpoints]prometheus.Observer

	redirected  prometheus.Counter
	forwardErrs prometheus.Counter
	noLeader    prometheus.Counter
	authFail    prometheus.Counter
	throttled   prometheus.Counter
	staleReads  prometheus.Counter
	panics      prometheus.Counter

	queued           prometheus.Counter // requests accepted into the queue
	queueBatches     prometheus.Counter
	queueStatements  prometheus.Counter
	queueFailures    prometheus.Counter // failed batch attempts
	queueBatchErrors prometheus.Counter // batches given up
}

// newMetrics registers the API's metrics in reg (nil: a new registry);
// queuePending is read at scrape time.
func newMetrics(reg *prometheus.Registry, version string, queuePending func() int) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	f := promauto.With(reg)
	counter := func(name, help string) prometheus.Counter {
		return f.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	}
	m := &metrics{
		reg: reg,
		requests: f.NewCounterVec(prometheus.CounterOpts{
			Name: "raftlite_http_requests_total", Help: "HTTP requests by endpoint and status code.",
		}, []string{"endpoint", "code"}),
		redirected:       counter("raftlite_http_redirects_total", "Requests answered with a redirect to the leader."),
		forwardErrs:      counter("raftlite_http_forward_errors_total", "Forwarded requests that got no answer from the leader."),
		noLeader:         counter("raftlite_http_leader_not_found_total", "Requests refused because no leader was known."),
		authFail:         counter("raftlite_http_auth_failures_total", "Requests refused for missing or wrong credentials."),
		throttled:        counter("raftlite_http_login_throttled_total", "Requests refused with 429 after too many failed logins."),
		staleReads:       counter("raftlite_http_stale_reads_total", "Reads refused as stale (freshness)."),
		panics:           counter("raftlite_http_panics_total", "Handler panics recovered."),
		queued:           counter("raftlite_queue_requests_total", "Write requests accepted into the queue."),
		queueBatches:     counter("raftlite_queue_batches_total", "Queued batches applied."),
		queueStatements:  counter("raftlite_queue_statements_total", "Queued statements applied."),
		queueFailures:    counter("raftlite_queue_attempt_failures_total", "Failed attempts to apply a queued batch."),
		queueBatchErrors: counter("raftlite_queue_batches_failed_total", "Queued batches given up."),
	}
	latency := f.NewHistogramVec(prometheus.HistogramOpts{
		Name: "raftlite_http_request_duration_seconds", Help: "HTTP request latency by endpoint.", Buckets: latencyBuckets,
	}, []string{"endpoint"})
	statements := f.NewCounterVec(prometheus.CounterOpts{
		Name: "raftlite_http_statements_total", Help: "SQL statements received by endpoint.",
	}, []string{"endpoint"})
	forwarded := f.NewCounterVec(prometheus.CounterOpts{
		Name: "raftlite_http_forwarded_total", Help: "Requests forwarded to the leader by endpoint.",
	}, []string{"endpoint"})
	stage := func(name, help string) *prometheus.HistogramVec {
		return f.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: stageBuckets}, []string{"endpoint"})
	}
	decode := stage("raftlite_http_decode_seconds", "Time to read and parse a write request's body, by endpoint.")
	respond := stage("raftlite_http_respond_seconds", "Time to encode and send a write's answer, by endpoint.")
	for ep := endpoint(0); ep < numEndpoints; ep++ {
		m.decode[ep] = decode.WithLabelValues(ep.String())
		m.respond[ep] = respond.WithLabelValues(ep.String())
		m.latency[ep] = latency.WithLabelValues(ep.String())
		m.statements[ep] = statements.WithLabelValues(ep.String())
		m.forwarded[ep] = forwarded.WithLabelValues(ep.String())
	}
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "raftlite_queue_pending", Help: "Write requests waiting in the queue.",
	}, func() float64 { return float64(queuePending()) })
	f.NewGauge(prometheus.GaugeOpts{
		Name: "raftlite_build_info", Help: "Build information; the value is always 1.",
		ConstLabels: prometheus.Labels{"version": version, "go_version": runtime.Version()},
	}).Set(1)
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) observe(ep endpoint, status int, d time.Duration) {
	m.requests.WithLabelValues(ep.String(), strconv.Itoa(status)).Inc()
	m.latency[ep].Observe(d.Seconds())
}

// handler serves the registry in the Prometheus exposition format.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
