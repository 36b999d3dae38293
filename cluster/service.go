package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/httpx"
)

// The cluster service is a small JSON-over-HTTP RPC served on the Raft port
// (connections with header byte headerCluster). Nodes use it to join, to
// exchange bootstrap notifications, to remove members, to update their
// replicated metadata, to obtain read indexes and to tell the leader how far
// their database is (before a learner is promoted). Requests that need the
// leader are forwarded to it by whichever member receives them.
const (
	pathJoin      = "/cluster/v1/join"
	pathNotify    = "/cluster/v1/notify"
	pathRemove    = "/cluster/v1/remove"
	pathMeta      = "/cluster/v1/meta"
	pathReadIndex = "/cluster/v1/readindex"
	pathProgress  = "/cluster/v1/progress"

	// hopsHeader counts how many times a request was forwarded, so that a
	// confused pair of nodes that each think the other leads cannot bounce
	// a request forever.
	hopsHeader = "X-Raftlite-Hops"
	maxHops    = 3

	maxServiceRequestBody  = 64 << 10
	maxServiceResponseBody = 1 << 20
	// serviceCallTimeout bounds one service call whose context has no
	// earlier deadline (a join waits for a configuration change to commit).
	serviceCallTimeout = 30 * time.Second
	serviceDialTimeout = 5 * time.Second
)

type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	Voter    bool   `json:"voter"`
}

type peerInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

type notifyResponse struct {
	peerInfo
	// Bootstrapped is set when the responder already has a Raft
	// configuration; Servers are then its servers, so that a node that
	// expects a particular cluster can tell whether this is it.
	Bootstrapped bool           `json:"bootstrapped"`
	Servers      []configServer `json:"servers,omitempty"`
	LeaderID     string         `json:"leader_id,omitempty"`
}

// configServer is one server of a Raft configuration.
type configServer struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	Voter    bool   `json:"voter"`
}

type removeRequest struct {
	ID string `json:"id"`
}

type metaRequest struct {
	ID      string `json:"id"`
	APIAddr string `json:"api_addr"`
}

type readIndexResponse struct {
	Index uint64 `json:"index"`
}

// progressResponse is how far a node's database is (api.Progress).
type progressResponse struct {
	AppliedIndex   uint64 `json:"applied_index"`
	CommittedIndex uint64 `json:"committed_index"`
}

type okResponse struct {
	OK bool `json:"ok"`
}

type errorResponse struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// errTooManyHops refuses a request that bounced between nodes that each
// think another leads: there is no agreed leader for now.
var errTooManyHops = api.ErrUnavailable.New("request forwarded too many times")

// errNoSuchService answers a request for no endpoint of the service (an
// unknown path, or a known one with another method than POST), so that
// every answer of the service is JSON with a code.
var errNoSuchService = api.ErrNotFound.New("no such cluster service endpoint")

// remoteError is an error reported by another node's cluster service.
type remoteError struct {
	addr, msg string
	outcome   error // the outcome its code names, or nil
}

func (e *remoteError) Error() string { return fmt.Sprintf("node %s: %s", e.addr, e.msg) }
func (e *remoteError) Unwrap() error { return e.outcome }

// serviceHandler is what the cluster service calls into (the Node).
type serviceHandler interface {
	join(ctx context.Context, req joinRequest, hops int) error
	notify(req peerInfo) notifyResponse
	remove(ctx context.Context, id string, hops int) error
	setMeta(ctx context.Context, req metaRequest, hops int) error
	readIndex(ctx context.Context, hops int) (uint64, error)
	Progress() api.Progress
}

func newServiceServer(h serviceHandler, logger *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+pathJoin, func(w http.ResponseWriter, r *http.Request) {
		var req joinRequest
		if !decodeServiceRequest(w, r, &req) {
			return
		}
		writeServiceResult(w, okResponse{OK: true}, h.join(r.Context(), req, hops(r)))
	})
	mux.HandleFunc("POST "+pathNotify, func(w http.ResponseWriter, r *http.Request) {
		var req peerInfo
		if !decodeServiceRequest(w, r, &req) {
			return
		}
		writeServiceResult(w, h.notify(req), nil)
	})
	mux.HandleFunc("POST "+pathRemove, func(w http.ResponseWriter, r *http.Request) {
		var req removeRequest
		if !decodeServiceRequest(w, r, &req) {
			return
		}
		writeServiceResult(w, okResponse{OK: true}, h.remove(r.Context(), req.ID, hops(r)))
	})
	mux.HandleFunc("POST "+pathMeta, func(w http.ResponseWriter, r *http.Request) {
		var req metaRequest
		if !decodeServiceRequest(w, r, &req) {
			return
		}
		writeServiceResult(w, okResponse{OK: true}, h.setMeta(r.Context(), req, hops(r)))
	})
	mux.HandleFunc("POST "+pathReadIndex, func(w http.ResponseWriter, r *http.Request) {
		idx, err := h.readIndex(r.Context(), hops(r))
		writeServiceResult(w, readIndexResponse{Index: idx}, err)
	})
	mux.HandleFunc("POST "+pathProgress, func(w http.ResponseWriter, r *http.Request) {
		p := h.Progress()
		writeServiceResult(w, progressResponse{AppliedIndex: p.AppliedIndex, CommittedIndex: p.CommittedIndex}, nil)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeServiceResult(w, nil, fmt.Errorf("%w: %s %s", errNoSuchService, r.Method, r.URL.Path))
	})
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      serviceCallTimeout + 5*time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

func hops(r *http.Request) int {
	n, _ := strconv.Atoi(r.Header.Get(hopsHeader))
	return max(n, 0)
}

func decodeServiceRequest(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxServiceRequestBody))
	if err := dec.Decode(v); err != nil {
		writeServiceResult(w, nil, fmt.Errorf("%w: %w", api.ErrBadRequest, err))
		return false
	}
	return true
}

func writeServiceResult(w http.ResponseWriter, v any, err error) {
	status := http.StatusOK
	if err != nil {
		o := api.OutcomeOf(err)
		status = o.Status
		v = errorResponse{Error: err.Error(), Code: o.Code}
	}
	body, merr := json.Marshal(v)
	if merr != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":"encoding response","code":"` + api.ErrInternal.Code + `"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// serviceClient calls other nodes' cluster services through the mux, over
// raftlite's shared transport (internal/httpx) with a dialer that writes the
// cluster header byte. Service calls are rare (joins, removals, forwarded
// membership changes), so it keeps few idle connections, briefly.
type serviceClient struct {
	client *http.Client
}

func newServiceClient(d dialer) *serviceClient {
	return &serviceClient{client: httpx.NewClient(httpx.Options{
		// The dialer does the TLS of node-to-node traffic (under the mux
		// header), so requests go out as http:// on a TLS connection.
		Dial: func(ctx context.Context, _, addr string) (net.Conn, error) {
			return d.dial(ctx, addr, headerCluster, serviceDialTimeout)
		},
		MaxIdleConnsPerHost:   2,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: serviceCallTimeout,
	})}
}

func (c *serviceClient) close() { c.client.CloseIdleConnections() }

// call POSTs in (JSON) to path on the node at raftAddr and decodes its answer
// into out.
func (c *serviceClient) call(ctx context.Context, raftAddr, path string, hops int, in, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, serviceCallTimeout)
		defer cancel()
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s request: %w", path, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+raftAddr+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s request to %s: %w", path, raftAddr, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(hopsHeader, strconv.Itoa(hops))
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s request to %s: %w", path, raftAddr, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxServiceResponseBody))
	if err != nil {
		return fmt.Errorf("%s response from %s: %w", path, raftAddr, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorResponse
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s: HTTP %d", path, resp.StatusCode)
		}
		var outcome error
		if o := api.ByCode(e.Code); o != nil {
			outcome = o
		}
		return &remoteError{addr: raftAddr, msg: e.Error, outcome: outcome}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode %s response from %s: %w", path, raftAddr, err)
		}
	}
	return nil
}
