package sqlapi

import (
	"crypto/tls"
	"github.com/prometheus/client_golang/prometheus"
	"log/slog"
	"net/http"
	"time"
)

// Defaults for the zero values of Config.
const (
	DefaultMaxBodyBytes   = 64 << 20
	DefaultMaxLoadBytes   = 4 << 30
	DefaultTimeout        = 30 * time.Second
	DefaultProbeTimeout   = 2 * time.Second
	DefaultQueueCapacity  = 1024
	DefaultQueueBatchSize = 128
	DefaultQueueTimeout   = 50 * time.Millisecond
	// DefaultLeaderWait is how long a request that needs the leader waits
	// for one to be elected, or for an unreachable one to be replaced: a
	// failover takes about a second.
	DefaultLeaderWait = 5 * time.Second
)

// Config configures the HTTP API.
type Config struct {
	// Addr is the address the API is bound to, reported as http.bind_addr
	// in /status.
	Addr string
	// AdvAddr is this node's API URL as other nodes and clients reach it
	// (e.g. "http://127.0.0.1:4001"). It is used to recognise this node in
	// the member list and to refuse forwarding to itself.
	AdvAddr string
	// Version is sent in every response's X-RQLITE-VERSION header and shown
	// in /status build.version and /nodes.
	Version string
	// Logger receives the API's logs; nil means slog.Default().
	Logger *slog.Logger
	// Metrics is the registry /metrics serves: the API registers its own
	// metrics in it, beside those the node registered (serve passes the
	// registry it gave the cluster and fsm packages). Nil: a registry of
	// the API's own. One Server per registry.
	Metrics *prometheus.Registry
	// MaxBodyBytes bounds a request body; larger bodies get 413.
	MaxBodyBytes int64
	// MaxLoadBytes bounds the body of POST /db/load, which is spooled to a
	// file rather than held in memory (default DefaultMaxLoadBytes).
	MaxLoadBytes int64
	// TempDir holds spooled /db/load uploads (default os.TempDir()). Put it
	// on the data directory's file system so a large upload is not limited
	// by a small /tmp.
	TempDir string
	// DefaultTimeout bounds a request when it has no ?timeout.
	DefaultTimeout time.Duration
	// ProbeTimeout bounds each member probe of /nodes and /leader when the
	// request has no ?timeout.
	ProbeTimeout time.Duration
	// LeaderWait bounds how long a request that needs the leader waits, within
	// its own timeout, while no leader is known or the known one cannot be
	// reached (the request was never sent, so resending it is safe).
	LeaderWait time.Duration
	// ClientTLS is the TLS configuration of this node's requests to other
	// nodes' HTTPS APIs (forwarding to the leader, probing members for
	// /nodes); nil uses the system's roots and no client certificate.
	ClientTLS *tls.Config
	// Auth enables HTTP basic auth; nil disables it.
	Auth *Auth
	// QueueCapacity is how many queued write requests may wait (?queue).
	QueueCapacity int
	// QueueBatchSize is how many statements make a full batch.
	QueueBatchSize int
	// MaxEntryBytes is the store's limit on one log entry (zero: none).
	// The write queue closes a batch before its statements would pass it,
	// and refuses a queued request that alone would, with 413.
	MaxEntryBytes int
	// QueueTimeout is how long a batch may wait to fill before it is sent.
	QueueTimeout time.Duration
	// QueueTx applies each queued batch in one transaction (rqlited's
	// -write-queue-tx).
	QueueTx bool
	// AllowOrigin, when set, is sent as Access-Control-Allow-Origin on
	// every answer (rqlited's -http-allow-origin).
	AllowOrigin string
	// Console serves the web console at /console and below (package
	// console's Handler), to anyone: its files hold no data, and the calls
	// it makes are authorized as any other. "/" redirects a browser
	// (Accept: text/html) there. Nil: /console is 404.
	Console http.Handler
}

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxLoadBytes <= 0 {
		c.MaxLoadBytes = DefaultMaxLoadBytes
	}
	if c.DefaultTimeout <= 0 {
		c.DefaultTimeout = DefaultTimeout
	}
	if c.ProbeTimeout <= 0 {
		c.ProbeTimeout = DefaultProbeTimeout
	}
	if c.LeaderWait <= 0 {
		c.LeaderWait = DefaultLeaderWait
	}
	if c.QueueCapacity <= 0 {
		c.QueueCapacity = DefaultQueueCapacity
	}
	if c.QueueBatchSize <= 0 {
		c.QueueBatchSize = DefaultQueueBatchSize
	}
	if c.QueueTimeout <= 0 {
		c.QueueTimeout = DefaultQueueTimeout
	}
	if c.Version == "" {
		c.Version = "unknown"
	}
	c.AdvAddr = normalizeURL(c.AdvAddr)
	return c
}
