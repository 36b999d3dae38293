package cluster

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// dialWithHeader opens a TCP connection to addr and writes the mux header
// byte that selects the service on the far side.
func dialWithHeader(ctx context.Context, addr string, header byte, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if timeout > 0 {
		_ = conn.SetWriteDeadline(time.Now().Add(timeout))
	}
	if _, err := conn.Write([]byte{header}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("write mux header to %s: %w", addr, err)
	}
	_ = conn.SetWriteDeadline(time.Time{})
	return conn, nil
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
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

var _ raft.StreamLayer = (*raftLayer)(nil)

func newRaftLayer(l *muxListener) *raftLayer {
	return &raftLayer{muxListener: l, conns: make(map[*trackedConn]struct{})}
}

func (l *raftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return dialWithHeader(context.Background(), string(address), headerRaft, timeout)
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
