package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
)

// Defaults applied by New to the zero fields of Config.
const (
	// DefaultTimeout bounds one attempt: one HTTP exchange with one node.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxRetries is how many times a failed call is retried.
	DefaultMaxRetries = 10
	// DefaultRetryBackoff is the delay before the first retry; it doubles
	// with each retry up to MaxRetryBackoff, with jitter.
	DefaultRetryBackoff = 50 * time.Millisecond
	// DefaultMaxRetryBackoff caps the delay between retries.
	DefaultMaxRetryBackoff = 2 * time.Second
	// DefaultUserAgent is the User-Agent header sent when Config.UserAgent
	// is empty.
	DefaultUserAgent = "raftlite-go-client/1"
)

// Config configures a Client. Only Nodes is required.
type Config struct {
	// Nodes are the cluster's HTTP API addresses, as "host:port" (plain
	// HTTP is assumed) or URLs "http://host:port" / "https://host:port",
	// optionally with a path prefix and with credentials
	// ("http://user:pass@host:port"), which then apply to that node when
	// User is empty. A call goes first to the node that last answered
	// successfully and fails over to the next ones in list order.
	Nodes []string

	// HTTPClient sends the requests. When nil, the Client makes its own,
	// with dial and TLS handshake timeouts of 5s, a pool of keep-alive
	// connections, and redirects not followed. A provided client is used as
	// it is; it should not follow redirects of POST requests.
	HTTPClient *http.Client

	// TLS is the TLS configuration of the HTTP client New makes, for
	// https:// nodes: the CA to trust (RootCAs), a client certificate for
	// nodes run with -http-verify-client (Certificates or
	// GetClientCertificate). Nil verifies against the system's roots with
	// no client certificate. Ignored when HTTPClient is set.
	TLS *tls.Config

	// User and Password are sent with HTTP basic authentication when User is
	// not empty.
	User     string
	Password string

	// DisableSessions turns off exactly-once writes: no client_id/seq is
	// sent, writes are not serialised, and a write whose attempt failed
	// ambiguously is not retried (it could be applied twice), only a write
	// that certainly never reached a node (connection refused) is. Sessions
	// are on by default.
	DisableSessions bool

	// DisableIndexTracking turns off read-your-writes: by default writes ask
	// for their raft_index, the Client remembers the highest one, and every
	// read carries min_index=<that index>.
	DisableIndexTracking bool

	// Timeout bounds one attempt (one HTTP exchange with one node, from
	// sending the request to reading the whole body) and is sent to the
	// server as timeout= (slightly less, so the server reports its own
	// timeout before the client gives up). When it passes, the call fails
	// over to the next node. Zero means DefaultTimeout; negative means no
	// per-attempt bound (the context alone bounds the call). WithTimeout
	// overrides it per call.
	Timeout time.Duration

	// MaxRetries is how many times a call is retried after a retryable
	// failure (so a call makes at most MaxRetries+1 attempts); the context
	// may end it earlier. Zero means DefaultMaxRetries; negative disables
	// retries.
	MaxRetries int

	// RetryBackoff is the delay before the first retry; it doubles with each
	// retry up to MaxRetryBackoff, and each delay is randomised between half
	// and all of its value. A retry after a node refused the connection goes
	// at once to the next node, until every node has been tried. Zero means
	// DefaultRetryBackoff.
	RetryBackoff time.Duration

	// MaxRetryBackoff caps the delay between retries. Zero means
	// DefaultMaxRetryBackoff, or RetryBackoff when that is larger.
	MaxRetryBackoff time.Duration

	// UserAgent is the User-Agent header; empty means DefaultUserAgent.
	UserAgent string

	// Logger receives a debug record for every retry and session renewal.
	// Nil means no logging.
	Logger *slog.Logger
}

// node is one parsed entry of Config.Nodes.
type node struct {
	base     string // scheme://host[:port][/prefix], no trailing slash
	user     string // credentials from the URL, used when Config.User is empty
	password string
	hasAuth  bool
}

// parseNode normalises one entry of Config.Nodes.
func parseNode(s string) (node, error) {
	raw := strings.TrimSpace(s)
	if raw == "" {
		return node{}, errors.New("empty node address")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return node{}, fmt.Errorf("node %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return node{}, fmt.Errorf("node %q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return node{}, fmt.Errorf("node %q: no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return node{}, fmt.Errorf("node %q: must not have a query or fragment", s)
	}
	n := node{}
	if u.User != nil {
		n.user = u.User.Username()
		n.password, _ = u.User.Password()
		n.hasAuth = true
		u.User = nil
	}
	n.base = strings.TrimRight(u.String(), "/")
	return n, nil
}

// settings is a validated Config with its defaults applied.
type settings struct {
	nodes          []node
	attemptTimeout time.Duration // 0: none
	maxRetries     int           // 0: no retries
	backoff        time.Duration
	maxBackoff     time.Duration
}

func (cfg *Config) validate() (settings, error) {
	var s settings
	if len(cfg.Nodes) == 0 {
		return s, ErrNoNodes
	}
	seen := make(map[string]bool, len(cfg.Nodes))
	for _, a := range cfg.Nodes {
		n, err := parseNode(a)
		if err != nil {
			return s, fmt.Errorf("raftlite client: %w", err)
		}
		if seen[n.base] {
			return s, fmt.Errorf("raftlite client: node %q listed twice", a)
		}
		seen[n.base] = true
		s.nodes = append(s.nodes, n)
	}
	if cfg.User == "" && cfg.Password != "" {
		return s, errors.New("raftlite client: Password set without User")
	}
	switch {
	case cfg.Timeout == 0:
		s.attemptTimeout = DefaultTimeout
	case cfg.Timeout > 0:
		s.attemptTimeout = cfg.Timeout
	}
	switch {
	case cfg.MaxRetries == 0:
		s.maxRetries = DefaultMaxRetries
	case cfg.MaxRetries > 0:
		s.maxRetries = cfg.MaxRetries
	}
	if cfg.RetryBackoff < 0 || cfg.MaxRetryBackoff < 0 {
		return s, errors.New("raftlite client: negative retry backoff")
	}
	s.backoff = cfg.RetryBackoff
	if s.backoff == 0 {
		s.backoff = DefaultRetryBackoff
	}
	s.maxBackoff = cfg.MaxRetryBackoff
	if s.maxBackoff == 0 {
		s.maxBackoff = max(DefaultMaxRetryBackoff, s.backoff)
	}
	if s.maxBackoff < s.backoff {
		return s, fmt.Errorf("raftlite client: MaxRetryBackoff %v is less than RetryBackoff %v", s.maxBackoff, s.backoff)
	}
	return s, nil
}

// callOptions are the per-call settings an Option changes.
type callOptions struct {
	level           api.Level
	transaction     bool
	timeout         time.Duration // 0: the Client's attempt timeout
	minIndex        uint64
	freshness       time.Duration
	freshnessStrict bool
	timings         bool
	err             error // the first invalid option
}

// Option changes how a call runs. Options are given to Client.With, which
// returns a Client that applies them to every call.
type Option func(*callOptions)

// WithLevel sets the read consistency level of Query and Request. Execute
// ignores it.
func WithLevel(l api.Level) Option {
	return func(o *callOptions) {
		if !l.Valid() {
			o.setErr(fmt.Errorf("raftlite client: unknown consistency level %q", string(l)))
			return
		}
		o.level = l
	}
}

// WithTransaction runs each call's statements in one SQLite transaction: on
// the first statement error the transaction is rolled back and the results
// end at the failing statement.
func WithTransaction() Option {
	return func(o *callOptions) { o.transaction = true }
}

// WithTimeout bounds each attempt of a call (one HTTP exchange with one node)
// and is sent to the server as timeout=, overriding Config.Timeout. Use a
// context deadline to bound the whole call including its retries.
func WithTimeout(d time.Duration) Option {
	return func(o *callOptions) {
		if d <= 0 {
			o.setErr(fmt.Errorf("raftlite client: timeout %v is not positive", d))
			return
		}
		o.timeout = d
	}
}

// WithMinIndex makes reads wait until the serving node has applied Raft index
// n (min_index=). With index tracking the larger of n and the Client's own
// highest write index is sent. Use it to carry read-your-writes across
// Clients: pass another Client's LastIndex.
func WithMinIndex(n uint64) Option {
	return func(o *callOptions) { o.minIndex = n }
}

// WithFreshness bounds the staleness of a level none read served by a
// follower (freshness=); strict sets freshness_strict.
func WithFreshness(d time.Duration, strict bool) Option {
	return func(o *callOptions) {
		if d <= 0 {
			o.setErr(fmt.Errorf("raftlite client: freshness %v is not positive", d))
			return
		}
		o.freshness = d
		o.freshnessStrict = strict
	}
}

// WithTimings asks the server for timings, filled in Result.Time and
// Response.Time.
func WithTimings() Option {
	return func(o *callOptions) { o.timings = true }
}

func (o *callOptions) setErr(err error) {
	if o.err == nil {
		o.err = err
	}
}
