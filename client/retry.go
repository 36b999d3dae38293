package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
)

// outcome is what one attempt tells the retry loop.
type outcome int

const (
	// outcomeOK: a node answered successfully.
	outcomeOK outcome = iota
	// outcomeFatal: a definite answer that another attempt would not change.
	outcomeFatal
	// outcomeNotSent: the request never reached a node (the connection could
	// not be made); sending it again is always safe.
	outcomeNotSent
	// outcomeAmbiguous: the node may have acted on the request (timeout,
	// connection cut, leadership lost, 502/503/504); sending it again is safe
	// only for reads and session writes.
	outcomeAmbiguous
)

// request is one logical call; roundTrip may send it several times.
type request struct {
	method      string
	path        string
	query       params // without timeout=, added per attempt
	body        []byte
	contentType string
	// db marks a database endpoint, whose 2xx body is parsed (a top-level
	// "error" in it is a failure).
	db bool
	// write marks a request that may change the cluster: when an attempt
	// failed ambiguously and no later one succeeded, the error wraps
	// ErrUnknownOutcome.
	write bool
	// retryAmbiguous allows another attempt after an ambiguous failure.
	retryAmbiguous bool
	// timeout bounds each attempt; 0 means no bound.
	timeout time.Duration
}

// reply is a node's complete answer.
type reply struct {
	node   string
	status int
	header http.Header
	body   []byte
	wire   *wireResponse // the parsed body of a successful database call
}

// roundTrip sends rq until a node answers successfully, a failure is
// definite, the retries are exhausted or ctx ends. The first attempt goes to
// the node that last answered successfully, each retry to the next node in
// the list. ambiguous reports whether some attempt failed after the request
// may have been acted on.
func (c *core) roundTrip(ctx context.Context, rq *request) (rep *reply, ambiguous bool, err error) {
	n := len(c.nodes)
	start := int(c.preferred.Load())
	untried := n - 1 // nodes that may be tried without a backoff delay
	sleeps := 0
	var lastErr error
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, ambiguous, stoppedError(rq, err, lastErr, ambiguous)
		}
		idx := (start + attempt) % n
		rep, oc, err := c.attempt(ctx, idx, rq)
		if oc == outcomeOK {
			c.preferred.Store(int64(idx))
			return rep, ambiguous, nil
		}
		lastErr = err
		if oc == outcomeAmbiguous {
			ambiguous = true
		}
		if oc == outcomeFatal || (oc == outcomeAmbiguous && !rq.retryAmbiguous) {
			return nil, ambiguous, outcomeError(rq, err, ambiguous)
		}
		if err := ctx.Err(); err != nil {
			return nil, ambiguous, stoppedError(rq, err, lastErr, ambiguous)
		}
		if attempt >= c.maxRetries {
			return nil, ambiguous, outcomeError(rq, fmt.Errorf("giving up after %d attempts: %w", attempt+1, err), ambiguous)
		}
		next := c.nodes[(start+attempt+1)%n].base
		if oc == outcomeNotSent && untried > 0 {
			untried--
			c.log.Debug("raftlite client: node unreachable, trying the next one",
				"path", rq.path, "attempt", attempt+1, "next", next, "err", err)
			continue
		}
		untried = n - 1
		d := c.backoffDelay(sleeps)
		sleeps++
		c.log.Debug("raftlite client: retrying",
			"path", rq.path, "attempt", attempt+1, "next", next, "delay", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ambiguous, stoppedError(rq, ctx.Err(), lastErr, ambiguous)
		case <-t.C:
		}
	}
}

// attempt sends rq once to node idx and classifies what happened.
func (c *core) attempt(ctx context.Context, idx int, rq *request) (*reply, outcome, error) {
	nd := &c.nodes[idx]
	actx, cancel := ctx, context.CancelFunc(func() {})
	if rq.timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, rq.timeout)
	}
	defer cancel()

	q := rq.query
	if dl, ok := actx.Deadline(); ok {
		q = append(q[:len(q):len(q)], "timeout="+serverTimeout(time.Until(dl)))
	}
	u := nd.base + rq.path
	if len(q) > 0 {
		u += "?" + q.encode()
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(rq.body)
	}
	req, err := http.NewRequestWithContext(actx, rq.method, u, body)
	if err != nil {
		return nil, outcomeFatal, fmt.Errorf("raftlite client: %w", err)
	}
	if rq.body != nil {
		req.Header.Set("Content-Type", rq.contentType)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	switch {
	case c.user != "":
		req.SetBasicAuth(c.user, c.password)
	case nd.hasAuth:
		req.SetBasicAuth(nd.user, nd.password)
	}

	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportOutcome(err), err
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, outcomeAmbiguous, fmt.Errorf("%s %s%s: reading the response: %w", rq.method, nd.base, rq.path, err)
	}
	rep := &reply{node: nd.base, status: resp.StatusCode, header: resp.Header, body: data}
	oc, err := classify(rq, rep)
	return rep, oc, err
}

// transportOutcome classifies an error of http.Client.Do: a failure to
// connect means the request was never sent; anything else (timeout,
// connection reset, EOF) happened after it may have been.
func transportOutcome(err error) outcome {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return outcomeNotSent
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return outcomeNotSent
	}
	return outcomeAmbiguous
}

// classify judges a complete answer.
func classify(rq *request, rep *reply) (outcome, error) {
	var msg, code string
	switch {
	case rep.status >= 200 && rep.status < 300:
		if !rq.db {
			return outcomeOK, nil
		}
		w, err := decodeWire(rep.body)
		if err != nil {
			// Unreadable: for a write, whether it was applied is unknown.
			return outcomeAmbiguous, &APIError{Node: rep.node, Status: rep.status, Message: err.Error()}
		}
		msg, code = w.requestError()
		if msg == "" && code == "" {
			rep.wire = w
			return outcomeOK, nil
		}
	case rep.status >= 300 && rep.status < 400:
		msg = "unexpected redirect"
		if loc := rep.header.Get("Location"); loc != "" {
			msg += " to " + loc
		}
	default:
		msg, code = errorFromBody(rep.body)
		if msg == "" {
			msg = http.StatusText(rep.status)
		}
	}
	apiErr := &APIError{Node: rep.node, Status: rep.status, Message: msg, Code: code}
	if code == api.ErrCompacted.Code {
		apiErr.OldestIndex = oldestIndex(rep.body)
	}
	switch {
	case isSessionError(apiErr):
		return outcomeFatal, apiErr
	case retryableStatus(rep.status):
		return outcomeAmbiguous, apiErr
	case !definiteStatus(rep.status) && retryableMessage(msg, code):
		return outcomeAmbiguous, apiErr
	}
	return outcomeFatal, apiErr
}

// retryableStatus reports the status codes of transient failures.
func retryableStatus(s int) bool {
	switch s {
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// definiteStatus reports the status codes that another attempt with the same
// request cannot change, whatever the message says.
func definiteStatus(s int) bool {
	switch s {
	case http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden,
		http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusLengthRequired,
		http.StatusRequestEntityTooLarge, http.StatusRequestURITooLong,
		http.StatusUnsupportedMediaType, http.StatusRequestHeaderFieldsTooLarge,
		http.StatusNotImplemented:
		return true
	}
	return s >= 300 && s < 400
}

// retryablePhrases are the failure texts of a node that may succeed on
// another attempt or another node.
var retryablePhrases = []string{
	"leadership lost",
	"leader not found",
	"not leader",
	"not the leader",
	"no leader",
	"leader unknown",
	"timeout",
	"timed out",
	"deadline exceeded",
	"stale read",
	"forwarding",
	"connection refused",
	"connection reset",
	"broken pipe",
	"eof",
	"unavailable",
	"not ready",
	"shutting down",
	"shutdown",
}

func retryableMessage(msg, code string) bool {
	m := strings.ToLower(msg + " " + strings.ReplaceAll(code, "_", " "))
	for _, p := range retryablePhrases {
		if strings.Contains(m, p) {
			return true
		}
	}
	return false
}

// outcomeError marks err as leaving a write's outcome unknown when an
// attempt failed ambiguously.
func outcomeError(rq *request, err error, ambiguous bool) error {
	if rq.write && ambiguous && !errors.Is(err, ErrUnknownOutcome) {
		return fmt.Errorf("%w: %w", ErrUnknownOutcome, err)
	}
	return err
}

// stoppedError reports a call ended by its context.
func stoppedError(rq *request, ctxErr, lastErr error, ambiguous bool) error {
	var err error
	if lastErr != nil {
		err = fmt.Errorf("raftlite client: %w (last failure: %w)", ctxErr, lastErr)
	} else {
		err = fmt.Errorf("raftlite client: %w", ctxErr)
	}
	return outcomeError(rq, err, ambiguous)
}

// backoffDelay is the delay before the retry that follows n earlier delays:
// RetryBackoff doubled n times, capped at MaxRetryBackoff, randomised between
// half and all of it.
func (c *core) backoffDelay(n int) time.Duration {
	d := c.backoff
	for i := 0; i < n && d < c.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.maxBackoff)
	half := d / 2
	return half + rand.N(d-half+1)
}

// serverTimeout is the timeout= sent with an attempt that has remaining
// time: a little less, so the server reports its own timeout (a precise,
// definite answer) before the client gives up on the attempt.
func serverTimeout(remaining time.Duration) string {
	margin := min(remaining/10, time.Second)
	t := (remaining - margin).Truncate(time.Millisecond)
	if t < time.Millisecond {
		t = time.Millisecond
	}
	return t.String()
}

// params is a URL query under construction: "key" for a presence flag,
// "key=value" otherwise, both escaped.
type params []string

func (p *params) flag(key string) { *p = append(*p, url.QueryEscape(key)) }

func (p *params) set(key, value string) {
	*p = append(*p, url.QueryEscape(key)+"="+url.QueryEscape(value))
}

func (p params) encode() string { return strings.Join(p, "&") }
