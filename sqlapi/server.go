package sqlapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/raftlite/raftlite/api"
)

// Server is the HTTP API. It is an http.Handler; Serve and Shutdown run it
// on a listener of the caller's.
type Server struct {
	cfg     Config
	store   Store
	log     *slog.Logger
	start   time.Time
	client  *http.Client
	metrics *metrics
	queue   *writeQueue
	routes  map[string]*route
	// watchesEnded is closed by EndWatches: watch streams and long polls,
	// which would otherwise hold a graceful shutdown up, end then.
	watchesEnded chan struct{}
	endWatches   sync.Once

	mu      sync.Mutex
	httpSrv *http.Server
	closed  bool
}

// route is one endpoint: its allowed methods, the permission each needs
// (from endpointAccess) and its handler.
type route struct {
	ep      endpoint
	methods []string
	handle  func(http.ResponseWriter, *http.Request, *params)
	access  map[string]access // by method
}

// New returns the HTTP API of store. It starts the write queue's goroutine:
// call Shutdown or Close when done.
func New(cfg Config, store Store) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:    cfg,
		store:  store,
		log:    cfg.Logger.With("component", "sqlapi"),
		start:  time.Now(),
		client: newHTTPClient(cfg.ClientTLS),

		watchesEnded: make(chan struct{}),
	}
	s.metrics = newMetrics(cfg.Metrics, cfg.Version, func() int { return s.queue.pending() })
	s.queue = newWriteQueue(s, cfg.QueueCapacity, cfg.QueueBatchSize, cfg.QueueTimeout)
	get, post := []string{http.MethodGet, http.MethodHead}, []string{http.MethodPost}
	s.routes = map[string]*route{
		"/db/execute":  {ep: epExecute, methods: post, handle: s.handleExecute},
		"/db/query":    {ep: epQuery, methods: []string{http.MethodGet, http.MethodPost}, handle: s.handleQuery},
		"/db/request":  {ep: epRequest, methods: post, handle: s.handleRequest},
		"/db/backup":   {ep: epBackup, methods: get, handle: s.handleBackup},
		"/db/checksum": {ep: epChecksum, methods: []string{http.MethodGet, http.MethodHead, http.MethodPost}, handle: s.handleChecksum},
		"/db/load":     {ep: epLoad, methods: post, handle: s.handleLoad},
		"/db/watch":    {ep: epWatch, methods: get, handle: s.handleWatch},
		"/db/compact":  {ep: epCompact, methods: post, handle: s.handleCompact},
		"/status":      {ep: epStatus, methods: get, handle: s.handleStatus},
		"/nodes":       {ep: epNodes, methods: get, handle: s.handleNodes},
		"/leader":      {ep: epLeader, methods: []string{http.MethodGet, http.MethodHead, http.MethodPost}, handle: s.handleLeader},
		"/readyz":      {ep: epReadyz, methods: get, handle: s.handleReadyz},
		"/remove":      {ep: epRemove, methods: []string{http.MethodDelete}, handle: s.handleRemove},
		"/promote":     {ep: epPromote, methods: post, handle: s.handlePromote},
		"/snapshot":    {ep: epSnapshot, methods: post, handle: s.handleSnapshot},
		"/reap":        {ep: epReap, methods: post, handle: s.handleReap},
		"/boot":        {ep: epBoot, methods: post, handle: s.handleBoot},
		"/debug/vars":  {ep: epDebugVars, methods: get, handle: s.handleExpvar},
		"/metrics":     {ep: epMetrics, methods: get, handle: s.handleMetrics},
		pprofPrefix:    {ep: epPprof, methods: get, handle: handlePprof},
		consolePath:    {ep: epConsole, methods: get, handle: func(w http.ResponseWriter, r *http.Request, _ *params) { serveConsole(s.cfg, w, r) }},
	}
	for path, rt := range s.routes {
		var err error
		if rt.access, err = routeAccess(path, rt.methods); err != nil {
			panic("sqlapi: route without a permission: " + err.Error())
		}
	}
	registerServer(s)
	return s
}

// Serve serves the API on ln until Shutdown; it returns
// http.ErrServerClosed after a Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	if s.httpSrv == nil {
		s.httpSrv = &http.Server{
			Handler:           s,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		}
	}
	srv := s.httpSrv
	s.mu.Unlock()
	return srv.Serve(ln)
}

// Shutdown ends the watches (EndWatches), stops Serve gracefully (if it
// was used), then stops the write queue, applying what it holds, both
// within ctx.
func (s *Server) Shutdown(ctx context.Context) error {
	s.EndWatches()
	s.mu.Lock()
	s.closed = true
	srv := s.httpSrv
	s.mu.Unlock()
	var errs []error
	if srv != nil {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("http shutdown: %w", err))
		}
	}
	if err := s.queue.close(ctx); err != nil {
		errs = append(errs, fmt.Errorf("write queue: %w", err))
	}
	unregisterServer(s)
	s.client.CloseIdleConnections()
	return errors.Join(errs...)
}

// Close is Shutdown with the default timeout.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DefaultTimeout)
	defer cancel()
	return s.Shutdown(ctx)
}

// statusRecorder remembers the status written, for metrics and for the
// panic handler.
type statusRecorder struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (r *statusRecorder) WriteHeader(code int) {
	if !r.wrote {
		r.code, r.wrote = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if !r.wrote {
		r.code, r.wrote = http.StatusOK, true
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *statusRecorder) status() int {
	if !r.wrote {
		return http.StatusOK
	}
	return r.code
}

// ServeHTTP routes a request: 404 for an unknown path, 405 for a wrong
// method, 401 without the permission endpointAccess names (429 after too
// many failed logins), 400 for bad query parameters, else the endpoint's
// handler. It never lets a panic escape.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	rec.Header().Set(versionHeader, s.cfg.Version)
	if s.cfg.AllowOrigin != "" {
		rec.Header().Set("Access-Control-Allow-Origin", s.cfg.AllowOrigin)
	}
	ep := epOther
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.metrics.panics.Inc()
			s.log.Error("panic in HTTP handler", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			if !rec.wrote {
				writeError(rec, api.ErrInternal, fmt.Sprintf("internal error: %v", v))
			}
		}
		s.metrics.observe(ep, rec.status(), time.Since(start))
	}()

	path := r.URL.Path
	if path == "/" || path == "" {
		redirectRoot(s.cfg, rec, r)
		return
	}
	rt := s.route(path)
	if rt == nil {
		writeError(rec, api.ErrNotFound, "not found")
		return
	}
	ep = rt.ep
	if r.Method == http.MethodOptions {
		rec.Header().Set("Allow", strings.Join(append([]string{http.MethodOptions}, rt.methods...), ", "))
		rec.WriteHeader(http.StatusOK)
		return
	}
	if !methodAllowed(rt.methods, r.Method) {
		rec.Header().Set("Allow", strings.Join(rt.methods, ", "))
		writeError(rec, api.ErrMethodNotAllowed, "method not allowed")
		return
	}
	if d := s.cfg.Auth.authorize(r, rt.access[r.Method], s.log); d.status != 0 {
		if d.status == http.StatusTooManyRequests {
			s.metrics.throttled.Inc()
		} else {
			s.metrics.authFail.Inc()
		}
		d.refuse(rec, r)
		return
	}
	p, err := parseParams(r.URL.RawQuery, s.cfg.DefaultTimeout)
	if err != nil {
		writeError(rec, api.ErrBadRequest, err.Error())
		return
	}
	p.start = start
	rt.handle(rec, r, p)
}

// route returns the endpoint serving path, nil if none.
func (s *Server) route(path string) *route {
	rt := s.routes[path]
	if rt == nil && len(path) > 1 && strings.HasSuffix(path, "/") {
		rt = s.routes[strings.TrimSuffix(path, "/")]
	}
	if rt == nil && strings.HasPrefix(path, pprofPrefix+"/") {
		rt = s.routes[pprofPrefix]
	}
	if rt == nil && isConsolePath(path) {
		rt = s.routes[consolePath]
	}
	return rt
}

func methodAllowed(methods []string, m string) bool {
	for _, x := range methods {
		if x == m {
			return true
		}
	}
	return false
}

// readBody reads the request body, bounded by MaxBodyBytes. On failure it
// has answered (413 or 400) and returns false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	if r.Body == nil || r.Body == http.NoBody {
		return nil, true
	}
	max := s.cfg.MaxBodyBytes
	if r.ContentLength > max {
		writeError(w, api.ErrRequestTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", max))
		return nil, false
	}
	rd := http.MaxBytesReader(w, r.Body, max)
	size := 512
	if r.ContentLength > 0 {
		size = int(r.ContentLength) + 1
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, true
		}
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, api.ErrRequestTooLarge, fmt.Sprintf("request body too large: limit is %d bytes", max))
			} else {
				writeError(w, api.ErrBadRequest, "reading request body: "+err.Error())
			}
			return nil, false
		}
	}
}

// requestContext bounds a request's work by its timeout, counted from its
// arrival, so that waiting and then forwarding share one budget.
func requestContext(r *http.Request, p *params) (context.Context, context.CancelFunc) {
	if p.start.IsZero() {
		return context.WithTimeout(r.Context(), p.timeout)
	}
	return context.WithDeadline(r.Context(), p.start.Add(p.timeout))
}
