package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// dialer opens connections to other nodes' Raft ports: a TCP connection,
// a TLS handshake when node-to-node TLS is on, then the mux header byte
// that selects the service on the far side (inside TLS, so a plaintext
// peer learns nothing, not even which services exist).
type dialer struct {
	// tls, when set, returns the TLS configuration of a connection to
	// addr. It is asked at every dial so that it can follow certificate
	// files replaced while the node runs.
	tls func(addr string) *tls.Config
}

// dial opens a connection to addr for the service of header. timeout
// bounds the connect and the handshake.
func (d dialer) dial(ctx context.Context, addr string, header byte, timeout time.Duration) (net.Conn, error) {
	nd := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	conn, err := nd.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		_ = conn.SetDeadline(time.Now().Add(timeout))
	}
	if d.tls != nil {
		tc := tls.Client(conn, d.tls(addr))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	if _, err := conn.Write([]byte{header}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write mux header to %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, nil
}

// tlsRefused reports whether err is a TLS refusal between nodes: one side
// does not trust the other's certificate (signed by another CA, expired,
// for another name) or does not speak TLS. Retrying does not help, so it
// is worth a warning where other failures of a call are routine.
func tlsRefused(err error) bool {
	var verr *tls.CertificateVerificationError
	var rerr tls.RecordHeaderError
	// The far side's refusal arrives as an alert, whose type crypto/tls
	// does not export: "remote error: tls: bad certificate".
	return errors.As(err, &verr) || errors.As(err, &rerr) || strings.Contains(err.Error(), "remote error: tls:")
}

// logCallFailure logs a failed call to another node: at level, or as a
// warning when TLS refused it.
func logCallFailure(logger *slog.Logger, level slog.Level, msg string, err error, attrs ...any) {
	if tlsRefused(err) {
		level, msg = slog.LevelWarn, msg+": TLS refused (are both nodes' certificates signed by a CA the other trusts? see -node-ca-cert)"
	}
	logger.Log(context.Background(), level, msg, append(attrs, "error", err)...)
}

// raftLayer is the raft.StreamLayer of the Raft sub-listener: it accepts the
// connections whose header was headerRaft, and dials with that header.
//
// NetworkTransport.Close does not close the connections it accepted (their
// handlers block reading until the peer hangs up), so the layer tracks them
// and closeConns ends them; their reads then report a clean EOF, so that the
// transport does not log a decoding error for each one.
type raftLayer struct {
	*muxListener
	dialer dialer
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

var _ raft.StreamLayer = (*raftLayer)(nil)

func newRaftLayer(l *muxListener, d dialer) *raftLayer {
	return &raftLayer{muxListener: l, dialer: d, conns: make(map[*trackedConn]struct{})}
}

func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.dialer.dial(context.Background(), string(address), headerRaft, timeout)
}

func (l *raftLayer) Accept() (net.Conn, error) {
	c, err := l.muxListener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, layer: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// closeConns closes every accepted connection, and any accepted later.
func (l *raftLayer) closeConns() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for c := range l.conns {
		c.shut.Store(true)
		c.Conn.Close()
	}
	clear(l.conns)
}

type trackedConn struct {
	net.Conn
	layer *raftLayer
	shut  atomic.Bool
}

func (c *trackedConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if err != nil && c.shut.Load() {
		err = io.EOF
	}
	return n, err
}

func (c *trackedConn) Close() error {
	c.layer.mu.Lock()
	delete(c.layer.conns, c)
	c.layer.mu.Unlock()
	return c.Conn.Close()
}
