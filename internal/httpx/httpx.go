package httpx

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"
)

// The defaults an Options field gets when it is left zero.
const (
	// DefaultDialTimeout bounds TCP connection set-up: a node that does not
	// accept within it is treated as down, so callers fail over quickly.
	DefaultDialTimeout = 5 * time.Second
	// DefaultKeepAlive is the TCP keep-alive period, which finds peers that
	// vanished without closing their connections.
	DefaultKeepAlive = 30 * time.Second
	// DefaultMaxIdleConns bounds idle connections kept across all hosts.
	DefaultMaxIdleConns = 256
	// DefaultMaxIdleConnsPerHost bounds idle connections kept per host. It
	// is sized for a follower forwarding a busy client's concurrent writes
	// to the leader without reconnecting for each.
	DefaultMaxIdleConnsPerHost = 64
	// DefaultIdleConnTimeout is how long an idle connection is kept.
	DefaultIdleConnTimeout = 90 * time.Second
	// TLSHandshakeTimeout bounds a TLS handshake (used once TLS is on).
	TLSHandshakeTimeout = 5 * time.Second
	// ExpectContinueTimeout is how long a request with "Expect:
	// 100-continue" waits before sending its body anyway.
	ExpectContinueTimeout = time.Second
)

// DialFunc opens a connection, as net.Dialer.DialContext does.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options are what a caller may choose about its transport. The zero value
// is the configuration most callers want.
type Options struct {
	// DialTimeout bounds connection set-up; zero means DefaultDialTimeout.
	// It is ignored when Dial is set (Dial bounds itself).
	DialTimeout time.Duration
	// Dial replaces the TCP dialer, for connections that need more than a
	// connect (the cluster service writes a mux header byte first).
	Dial DialFunc
	// MaxIdleConns and MaxIdleConnsPerHost size the idle pool; zero means
	// DefaultMaxIdleConns and DefaultMaxIdleConnsPerHost.
	MaxIdleConns        int
	MaxIdleConnsPerHost int
	// IdleConnTimeout is how long an idle connection is kept; zero means
	// DefaultIdleConnTimeout.
	IdleConnTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for a response's headers after
	// the request is sent; zero means no bound (the request's context
	// bounds it).
	ResponseHeaderTimeout time.Duration
	// ProxyFromEnvironment sends requests through the proxy named by
	// HTTP_PROXY and friends, as programs embedding the Go client expect.
	// Node-to-node traffic never goes through a proxy.
	ProxyFromEnvironment bool
	// TLS, when set, is the client TLS configuration for https:// URLs.
	TLS *tls.Config
}

// newTransport returns an http.Transport configured from o.
//
// Compression is always off: raftlite never answers with a
// Content-Encoding, and a node forwarding a request must pass bodies
// through untouched rather than have the transport decode them.
func newTransport(o Options) *http.Transport {
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{
			Timeout:   orDefault(o.DialTimeout, DefaultDialTimeout),
			KeepAlive: DefaultKeepAlive,
		}).DialContext
	}
	t := &http.Transport{
		DialContext:           dial,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          orDefault(o.MaxIdleConns, DefaultMaxIdleConns),
		MaxIdleConnsPerHost:   orDefault(o.MaxIdleConnsPerHost, DefaultMaxIdleConnsPerHost),
		IdleConnTimeout:       orDefault(o.IdleConnTimeout, DefaultIdleConnTimeout),
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		TLSHandshakeTimeout:   TLSHandshakeTimeout,
		ExpectContinueTimeout: ExpectContinueTimeout,
		DisableCompression:    true,
		// A copy: net/http sets up HTTP/2 by changing the Transport's
		// tls.Config, and callers share theirs between clients.
		TLSClientConfig: o.TLS.Clone(),
	}
	if o.ProxyFromEnvironment {
		t.Proxy = http.ProxyFromEnvironment
	}
	return t
}

// NewClient returns an http.Client over newTransport(o) that does not
// follow redirects: a 301 from a follower (asked for with ?redirect) goes
// back to the caller, which decides where to send the request next. It has
// no overall timeout; callers bound each request with its context.
func NewClient(o Options) *http.Client {
	return &http.Client{
		Transport: newTransport(o),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// orDefault is v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
