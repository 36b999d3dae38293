package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/httpx"
)

// Client talks to a raftlite cluster. It is safe for concurrent use; see the
// package documentation for how writes of its session are ordered.
type Client struct {
	core *core
	opts callOptions
}

// core is the state every Client derived by With shares.
type core struct {
	nodes          []node
	hc             *http.Client
	ownsHC         bool // the Client made hc, so Close may close its idle connections
	userAgent      string
	user, password string
	sess           *session // nil when sessions are disabled
	trackIndex     bool
	attemptTimeout time.Duration // 0: none
	maxRetries     int
	backoff        time.Duration
	maxBackoff     time.Duration
	log            *slog.Logger

	lastIndex atomic.Uint64 // the highest raft_index a write reported
	preferred atomic.Int64  // the node that last answered successfully
}

// New validates cfg and returns a Client. It does not contact the cluster.
func New(cfg Config) (*Client, error) {
	s, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	c := &core{
		nodes:          s.nodes,
		hc:             cfg.HTTPClient,
		userAgent:      cfg.UserAgent,
		user:           cfg.User,
		password:       cfg.Password,
		trackIndex:     !cfg.DisableIndexTracking,
		attemptTimeout: s.attemptTimeout,
		maxRetries:     s.maxRetries,
		backoff:        s.backoff,
		maxBackoff:     s.maxBackoff,
		log:            cfg.Logger,
	}
	if c.hc == nil {
		// raftlite's shared transport (internal/httpx), honouring
		// HTTP_PROXY; each attempt is bounded through its context.
		c.hc, c.ownsHC = httpx.NewClient(httpx.Options{ProxyFromEnvironment: true, TLS: cfg.TLS}), true
	}
	if c.userAgent == "" {
		c.userAgent = DefaultUserAgent
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if !cfg.DisableSessions {
		if c.sess, err = newSession(); err != nil {
			return nil, err
		}
	}
	return &Client{core: c}, nil
}

// With returns a Client that applies opts to every call, on top of c's own
// options. It shares c's session, index tracking, node preference and
// connections, so it is cheap to make per call:
//
//	resp, err := c.With(client.WithLevel(api.LevelNone)).Query(ctx, client.SQL("SELECT 1"))
//
// An invalid option makes every call of the returned Client fail.
func (c *Client) With(opts ...Option) *Client {
	d := &Client{core: c.core, opts: c.opts}
	for _, o := range opts {
		if o != nil {
			o(&d.opts)
		}
	}
	return d
}

// Close releases the idle connections of the HTTP client New made. A Client
// still works after Close (it reconnects); a provided HTTPClient is left
// alone.
func (c *Client) Close() error {
	if c.core.ownsHC {
		c.core.hc.CloseIdleConnections()
	}
	return nil
}

// SessionID returns the current session's client_id, or "" when sessions are
// disabled. It changes when the session is renewed.
func (c *Client) SessionID() string {
	if c.core.sess == nil {
		return ""
	}
	id, _ := c.core.sess.current()
	return id
}

// LastIndex returns the highest Raft index a write of this Client reached (0
// before the first write, or with index tracking disabled). Another Client
// can read this Client's writes by passing it to WithMinIndex.
func (c *Client) LastIndex() uint64 { return c.core.lastIndex.Load() }

// Execute runs write statements through the Raft log (/db/execute). With
// sessions (the default) the write is applied at most once however often it
// is retried. A statement that fails does not make err non-nil: see
// Response.Err.
func (c *Client) Execute(ctx context.Context, stmts ...Statement) (*Response, error) {
	return c.write(ctx, "/db/execute", stmts)
}

// Request runs a mix of reads and writes (/db/request); the writes go through
// the Raft log. It is treated as a write: it takes the session and a
// sequence number, and reads in it honour the level and min_index options.
func (c *Client) Request(ctx context.Context, stmts ...Statement) (*Response, error) {
	return c.write(ctx, "/db/request", stmts)
}

// Query runs read statements (/db/query) at the configured level. Reads are
// retried on any transient failure and fail over between nodes. With index
// tracking the read carries min_index, so it sees this Client's writes.
func (c *Client) Query(ctx context.Context, stmts ...Statement) (*Response, error) {
	if c.opts.err != nil {
		return nil, c.opts.err
	}
	body, err := encodeStatements(stmts)
	if err != nil {
		return nil, err
	}
	rq := c.dbRequest("/db/query", body)
	rq.retryAmbiguous = true
	c.addReadParams(&rq.query)
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return nil, err
	}
	return rep.wire.response(stmts), nil
}

// dbRequest starts a database endpoint request with the parameters every
// such call carries.
func (c *Client) dbRequest(path string, body []byte) *request {
	rq := &request{
		method:      http.MethodPost,
		path:        path,
		body:        body,
		contentType: "application/json",
		db:          true,
		timeout:     c.core.attemptTimeout,
	}
	if c.opts.timeout > 0 {
		rq.timeout = c.opts.timeout
	}
	rq.query.flag("blob_array")
	if c.opts.transaction {
		rq.query.flag("transaction")
	}
	if c.opts.timings {
		rq.query.flag("timings")
	}
	return rq
}

// addReadParams adds the read consistency parameters.
func (c *Client) addReadParams(q *params) {
	if c.opts.level != api.LevelDefault {
		q.set("level", string(c.opts.level))
	}
	if c.opts.freshness > 0 {
		q.set("freshness", c.opts.freshness.String())
		if c.opts.freshnessStrict {
			q.flag("freshness_strict")
		}
	}
	minIndex := c.opts.minIndex
	if c.core.trackIndex {
		minIndex = max(minIndex, c.core.lastIndex.Load())
	}
	if minIndex > 0 {
		q.set("min_index", strconv.FormatUint(minIndex, 10))
	}
}

// write sends a request that may change the database, in the session.
func (c *Client) write(ctx context.Context, path string, stmts []Statement) (*Response, error) {
	if c.opts.err != nil {
		return nil, c.opts.err
	}
	body, err := encodeStatements(stmts)
	if err != nil {
		return nil, err
	}
	base := c.dbRequest(path, body)
	base.write = true
	if path == "/db/request" {
		c.addReadParams(&base.query)
	}
	if c.core.trackIndex {
		base.query.flag("raft_index")
	}

	sess := c.core.sess
	if sess == nil {
		// Without a session a second delivery could apply the write twice:
		// only a request that never reached a node is sent again.
		rep, _, err := c.core.roundTrip(ctx, base)
		if err != nil {
			return nil, err
		}
		return c.written(rep, stmts), nil
	}

	if err := sess.acquire(ctx); err != nil {
		return nil, fmt.Errorf("raftlite client: waiting for the session: %w", err)
	}
	defer sess.release()
	renewed := false
	for {
		id, seq := sess.next()
		rq := *base
		rq.retryAmbiguous = true
		rq.query = append(base.query[:len(base.query):len(base.query)], "client_id="+id, "seq="+strconv.FormatUint(seq, 10))
		rep, ambiguous, err := c.core.roundTrip(ctx, &rq)
		if err == nil {
			return c.written(rep, stmts), nil
		}
		switch {
		case errors.Is(err, api.ErrSessionExpired):
			if rerr := sess.renew(); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
			if !ambiguous && !renewed {
				// No attempt of this write can have been applied, and none
				// is still on its way: send it again in the new session.
				renewed = true
				c.core.log.Debug("raftlite client: session unknown to the server, resending in a new session",
					"old", id, "seq", seq, "new", c.SessionID())
				continue
			}
			c.core.log.Debug("raftlite client: session unknown to the server, write outcome unknown",
				"old", id, "seq", seq, "new", c.SessionID())
		case errors.Is(err, api.ErrSeqSuperseded), errors.Is(err, api.ErrSeqReused):
			// The server is ahead of this session, or something else
			// wrote under it: it is unusable.
			if rerr := sess.renew(); rerr != nil {
				return nil, errors.Join(err, rerr)
			}
		}
		return nil, err
	}
}

// written builds the Response of a successful write and records its index.
func (c *Client) written(rep *reply, stmts []Statement) *Response {
	resp := rep.wire.response(stmts)
	if c.core.trackIndex && resp.RaftIndex > 0 {
		for {
			cur := c.core.lastIndex.Load()
			if resp.RaftIndex <= cur || c.core.lastIndex.CompareAndSwap(cur, resp.RaftIndex) {
				break
			}
		}
	}
	return resp
}

// adminRequest starts a request to a cluster endpoint.
func (c *Client) adminRequest(method, path string, body []byte) *request {
	rq := &request{method: method, path: path, body: body, contentType: "application/json", timeout: c.core.attemptTimeout}
	if c.opts.timeout > 0 {
		rq.timeout = c.opts.timeout
	}
	return rq
}

// Leader returns the cluster's leader (GET /leader). While there is none the
// call is retried like any other, until a leader is known, the retries are
// exhausted or ctx ends.
func (c *Client) Leader(ctx context.Context) (Node, error) {
	rq := c.adminRequest(http.MethodGet, "/leader", nil)
	rq.retryAmbiguous = true
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return Node{}, err
	}
	return decodeNode(rep.body)
}

// Nodes returns the cluster's members, read-only members included, sorted by
// id (GET /nodes?nonvoters&ver=2; the legacy map form is understood too).
func (c *Client) Nodes(ctx context.Context) ([]Node, error) {
	rq := c.adminRequest(http.MethodGet, "/nodes", nil)
	rq.retryAmbiguous = true
	rq.query.flag("nonvoters")
	rq.query.set("ver", "2")
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return nil, err
	}
	return decodeNodes(rep.body)
}

// Status returns the /status diagnostics of the first node that answers
// (numbers as float64). To ask a particular node, use a Client whose Nodes
// lists only it.
func (c *Client) Status(ctx context.Context) (map[string]any, error) {
	rq := c.adminRequest(http.MethodGet, "/status", nil)
	rq.retryAmbiguous = true
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(rep.body, &m); err != nil {
		return nil, fmt.Errorf("raftlite client: invalid /status body: %w", err)
	}
	return m, nil
}

// Ready returns nil when the first node that answers is ready (GET /readyz),
// with noLeader checking only the node itself, not that a leader is known.
// A node that is not ready yields an *APIError (status 503) carrying its
// report; unreachable nodes are skipped.
func (c *Client) Ready(ctx context.Context, noLeader bool) error {
	rq := c.adminRequest(http.MethodGet, "/readyz", nil)
	if noLeader {
		rq.query.flag("noleader")
	}
	_, _, err := c.core.roundTrip(ctx, rq)
	return err
}

// Remove removes the member id from the cluster (DELETE /remove). It is not
// retried after an ambiguous failure; such an error wraps ErrUnknownOutcome.
func (c *Client) Remove(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("raftlite client: Remove: empty node id")
	}
	body, err := json.Marshal(map[string]string{"id": id})
	if err != nil {
		return err
	}
	rq := c.adminRequest(http.MethodDelete, "/remove", body)
	rq.write = true
	_, _, err = c.core.roundTrip(ctx, rq)
	return err
}

// Promote makes the learner (non-voter) id a voter (POST /promote);
// promoted is false when it already was one. The leader refuses a learner
// whose database lags or that does not answer: the error matches
// api.ErrLearnerNotReady (409), and api.ErrNotFound (404) when id is not a
// member. Promoting twice is harmless, so an ambiguous failure is retried.
func (c *Client) Promote(ctx context.Context, id string) (promoted bool, err error) {
	if id == "" {
		return false, errors.New("raftlite client: Promote: empty node id")
	}
	body, err := json.Marshal(map[string]string{"id": id})
	if err != nil {
		return false, err
	}
	rq := c.adminRequest(http.MethodPost, "/promote", body)
	rq.write, rq.retryAmbiguous = true, true
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return false, err
	}
	var answer struct {
		Promoted bool `json:"promoted"`
	}
	if err := json.Unmarshal(rep.body, &answer); err != nil {
		return false, fmt.Errorf("raftlite client: invalid /promote body: %w", err)
	}
	return answer.Promoted, nil
}

// StepDown asks the leader to step down (POST /leader), handing leadership
// to the member id when id is not empty. It is not retried after an
// ambiguous failure (a second one could depose the new leader); such an
// error wraps ErrUnknownOutcome.
func (c *Client) StepDown(ctx context.Context, id string) error {
	var body []byte
	if id != "" {
		var err error
		if body, err = json.Marshal(map[string]string{"id": id}); err != nil {
			return err
		}
	}
	rq := c.adminRequest(http.MethodPost, "/leader", body)
	rq.write = true
	_, _, err := c.core.roundTrip(ctx, rq)
	return err
}
