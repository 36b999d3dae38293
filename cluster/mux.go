package cluster

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// Header bytes that open every connection to the Raft port and say which
// service it is for.
const (
	headerRaft    byte = 'R' // hashicorp/raft NetworkTransport RPCs
	headerCluster byte = 'C' // the internal cluster service (service.go)
)

// muxHeaderTimeout bounds how long a new connection may take to send its
// header byte.
const muxHeaderTimeout = 10 * time.Second

// handshakeLogInterval is how often the same refusal of TLS connections
// from one host is logged: a node that keeps retrying with a bad certificate
// must show in the log without flooding it.
const handshakeLogInterval = 10 * time.Second

// mux accepts connections on one TCP listener and hands each to the
// sub-listener registered for its first byte, which it consumes. With a
// TLS configuration, every connection must first complete a TLS handshake
// (the header byte travels inside TLS): a peer that does not, speaks
// plaintext or presents a certificate the configuration does not trust is
// dropped and logged.
type mux struct {
	ln     net.Listener
	tls    *tls.Config // nil: plaintext
	logger *slog.Logger

	mu      sync.Mutex
	subs    map[byte]*muxListener
	pending map[net.Conn]struct{} // connections whose header is being read
	closed  bool
	// refusedLogged is when each TLS refusal (remote host and reason) was
	// last logged.
	refusedLogged map[string]time.Time

	wg   sync.WaitGroup // accept loop and per-connection goroutines
	done chan struct{}
}

func newMux(ln net.Listener, tlsConfig *tls.Config, logger *slog.Logger) *mux {
	return &mux{
		ln:            ln,
		tls:           tlsConfig,
		logger:        logger,
		subs:          make(map[byte]*muxListener),
		pending:       make(map[net.Conn]struct{}),
		refusedLogged: make(map[string]time.Time),
		done:          make(chan struct{}),
	}
}

// listen registers the sub-listener for header b. Its Addr reports addr (the
// advertised address). Register before serve.
func (m *mux) listen(b byte, addr net.Addr) *muxListener {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.subs[b]; dup {
		panic(fmt.Sprintf("cluster: mux header %q registered twice", b))
	}
	l := &muxListener{mux: m, header: b, addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
	m.subs[b] = l
	return l
}

// serve runs the accept loop in the background until close.
func (m *mux) serve() {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		var delay time.Duration
		for {
			conn, err := m.ln.Accept()
			if err != nil {
				select {
				case <-m.done:
					return
				default:
				}
				if errors.Is(err, net.ErrClosed) {
					return
				}
				// Probably temporary (e.g. out of file descriptors): back off.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				m.logger.Warn("raft port accept failed", "error", err, "retry_in", delay)
				select {
				case <-time.After(delay):
				case <-m.done:
					return
				}
				continue
			}
			delay = 0
			if !m.track(conn) {
				conn.Close()
				return
			}
			m.wg.Add(1)
			go m.route(conn)
		}
	}()
}

func (m *mux) track(conn net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.pending[conn] = struct{}{}
	return true
}

func (m *mux) untrack(conn net.Conn) {
	m.mu.Lock()
	delete(m.pending, conn)
	m.mu.Unlock()
}

// route completes the TLS handshake (when TLS is on), reads the header
// byte of conn and hands the connection to its sub-listener.
func (m *mux) route(raw net.Conn) {
	defer m.wg.Done()
	conn := raw
	_ = raw.SetDeadline(time.Now().Add(muxHeaderTimeout))
	if m.tls != nil {
		tc := tls.Server(raw, m.tls)
		if err := tc.Handshake(); err != nil {
			m.untrack(raw)
			m.refused(raw.RemoteAddr(), err)
			raw.Close()
			return
		}
		conn = tc
	}
	var hdr [1]byte
	_, err := io.ReadFull(conn, hdr[:])
	m.untrack(raw)
	if err != nil {
		conn.Close()
		return
	}
	_ = raw.SetDeadline(time.Time{})

	m.mu.Lock()
	sub := m.subs[hdr[0]]
	m.mu.Unlock()
	if sub == nil {
		m.logger.Warn("raft port: connection with unknown header dropped", "header", hdr[0], "remote", conn.RemoteAddr().String())
		conn.Close()
		return
	}
	select {
	case sub.conns <- conn:
	case <-sub.done:
		conn.Close()
	case <-m.done:
		conn.Close()
	}
}

// refused logs a failed TLS handshake, the same failure from the same host
// at most once per handshakeLogInterval.
func (m *mux) refused(remote net.Addr, err error) {
	host, _, splitErr := net.SplitHostPort(remote.String())
	if splitErr != nil {
		host = remote.String()
	}
	key := host + " " + err.Error()
	now := time.Now()
	m.mu.Lock()
	last, seen := m.refusedLogged[key]
	log := !seen || now.Sub(last) >= handshakeLogInterval
	if log {
		if len(m.refusedLogged) >= 1024 {
			clear(m.refusedLogged) // bounded, whoever knocks
		}
		m.refusedLogged[key] = now
	}
	m.mu.Unlock()
	if log {
		m.logger.Warn("raft port: refused a connection: TLS handshake failed (a node not using node TLS, or a certificate not signed by a trusted CA?)",
			"remote", remote.String(), "error", err, "repeats_logged_every", handshakeLogInterval)
	}
}

// close stops accepting, closes connections not yet handed over and waits
// for the mux's goroutines. Connections already handed to sub-listeners
// belong to their acceptors.
func (m *mux) close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	close(m.done)
	for c := range m.pending {
		c.Close()
	}
	subs := make([]*muxListener, 0, len(m.subs))
	for _, s := range m.subs {
		subs = append(subs, s)
	}
	m.mu.Unlock()

	err := m.ln.Close()
	for _, s := range subs {
		s.Close()
	}
	m.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// muxListener is the net.Listener of one header byte.
type muxListener struct {
	mux    *mux
	header byte
	addr   net.Addr
	conns  chan net.Conn
	once   sync.Once
	done   chan struct{}
}

func (l *muxListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.mux.done:
		return nil, net.ErrClosed
	}
}

// Close stops this sub-listener only; the mux and its port stay open.
func (l *muxListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *muxListener) Addr() net.Addr { return l.addr }

// tcpAddr is a net.Addr for an advertised host:port that need not be a
// local interface.
type tcpAddr string

func (a tcpAddr) Network() string { return "tcp" }
func (a tcpAddr) String() string  { return string(a) }
