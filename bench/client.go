package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/raftlite/raftlite/internal/httpx"
)

// client is one worker's connection to one node: its own http.Client over
// its own transport (internal/httpx, with an idle pool of two), so each
// worker keeps its own keep-alive connection(s) and workers never queue
// behind each other for a pooled connection. It sends raw requests rather
// than going through the Go client in client/: the load generator shares
// the machine's cores with the nodes, and must measure the server, not a
// client's sessions, retries and JSON decoding.
type client struct {
	base    string // "http://host:port", no trailing slash
	hc      *http.Client
	user    string
	pass    string
	timeout time.Duration
	buf     bytes.Buffer // response body, reused
}

// newClient returns a worker's client for base with cfg's credentials and
// TLS.
func newClient(base string, timeout time.Duration, cfg *Config) *client {
	return &client{
		base:    base,
		hc:      httpx.NewClient(httpx.Options{MaxIdleConns: 2, MaxIdleConnsPerHost: 2, TLS: cfg.TLS}),
		user:    cfg.User,
		pass:    cfg.Pass,
		timeout: timeout,
	}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// errBody is a 200 response whose body reports an error.
var errBody = errors.New("error in response body")

// do sends one request and reads the whole response into c.buf (so the
// connection is reused). It fails on a transport error, a status other
// than 200, or a body that mentions "error" (a statement's or the
// request's). The check is a byte search rather than a JSON decode: the
// load generator shares the machine's cores with the nodes, so it must be
// cheap, and the workloads never store the string "error".
func (c *client) do(ctx context.Context, method, pathQuery string, body []byte) ([]byte, error) {
	b, err := c.doRaw(ctx, method, pathQuery, body)
	if err != nil {
		return b, err
	}
	if bytes.Contains(b, []byte(`"error"`)) {
		return b, fmt.Errorf("%w: %s", errBody, firstLine(b))
	}
	return b, nil
}

// doRaw is do without the body check, for diagnostic endpoints (/nodes,
// /status) whose answers may name an error that is not the request's.
func (c *client) doRaw(ctx context.Context, method, pathQuery string, body []byte) ([]byte, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+pathQuery, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.user != "" {
		req.SetBasicAuth(c.user, c.pass)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	c.buf.Reset()
	_, err = c.buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	b := c.buf.Bytes()
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("HTTP %d: %s", resp.StatusCode, firstLine(b))
	}
	return b, nil
}

// firstLine is a short, one-line excerpt of a response body for error
// messages.
func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// baseURL turns "host:port" or a URL into "scheme://host:port".
func baseURL(h string) (string, error) {
	h = strings.TrimSpace(h)
	if h == "" {
		return "", errors.New("empty host")
	}
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return "", fmt.Errorf("bad host %q: %w", h, err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("bad host %q: no host:port", h)
	}
	return u.Scheme + "://" + u.Host, nil
}
