package selftest

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
)

// network is the set of proxies, one in front of each node's Raft port, and
// the links they currently cut. A link is directed: blocked[{a, b}] drops
// every connection node a opens to node b.
type network struct {
	log *slog.Logger
	// owner names the node that opened a connection (from: its address,
	// to: the proxy's), -1 when unknown. Set before the nodes start.
	owner func(from, to *net.TCPAddr) int

	mu      sync.Mutex
	proxies []*proxy
	blocked map[[2]int]bool
	conns   map[*proxyConn]struct{}
	closed  bool
}

func newNetwork(log *slog.Logger) *network {
	return &network{log: log, blocked: map[[2]int]bool{}, conns: map[*proxyConn]struct{}{}}
}

// proxy forwards connections made to node `to` (at its advertised address)
// to the node's real Raft address.
type proxy struct {
	net    *network
	to     int
	target string
	ln     net.Listener
}

// proxyConn is one proxied connection. A blackholed one forwards nothing in
// either direction (like a network that drops every packet) until the
// partition heals, when it is closed.
type proxyConn struct {
	from, to   int
	client     net.Conn
	upstream   net.Conn // nil when blackholed from the start
	blackholed bool     // guarded by network.mu
}

// addProxy starts the proxy of node `to` on addr, forwarding to target.
func (nw *network) addProxy(to int, addr, target string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("proxy for node %d: %w", to+1, err)
	}
	p := &proxy{net: nw, to: to, target: target, ln: ln}
	nw.mu.Lock()
	nw.proxies = append(nw.proxies, p)
	nw.mu.Unlock()
	go p.serve()
	return nil
}

func (p *proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.handle(c)
	}
}

// handle forwards one connection, or blackholes it when its link is cut.
func (p *proxy) handle(client net.Conn) {
	nw := p.net
	from := -1
	if nw.owner != nil {
		from = nw.owner(client.RemoteAddr().(*net.TCPAddr), client.LocalAddr().(*net.TCPAddr))
	}
	pc := &proxyConn{from: from, to: p.to, client: client}
	if !nw.register(pc) {
		client.Close()
		return
	}
	defer nw.closeConn(pc, true)
	if nw.isBlackholed(pc) {
		pc.pump(nw, client, nil)
		return
	}
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		// The node is down: the client sees its connection refused.
		return
	}
	if !nw.attach(pc, up) {
		up.Close()
		return
	}
	go pc.pump(nw, up, client)
	pc.pump(nw, client, up)
}

// pump copies src to dst until either fails, dropping what it reads while
// the connection is blackholed (dst nil: drop everything).
func (pc *proxyConn) pump(nw *network, src, dst net.Conn) {
	defer nw.closeConn(pc, false)
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && dst != nil && !nw.isBlackholed(pc) {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// closeLocked closes both ends; the caller holds network.mu.
func (pc *proxyConn) closeLocked() {
	pc.client.Close()
	if pc.upstream != nil {
		pc.upstream.Close()
	}
}

// closeConn closes pc's ends, and forgets pc when forget is set.
func (nw *network) closeConn(pc *proxyConn, forget bool) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	pc.closeLocked()
	if forget {
		delete(nw.conns, pc)
	}
}

// attach sets pc's upstream connection; false if pc was closed meanwhile
// (the network closed, or a partition healed while it was blackholed).
func (nw *network) attach(pc *proxyConn, up net.Conn) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if _, ok := nw.conns[pc]; !ok || nw.closed {
		return false
	}
	pc.upstream = up
	return true
}

// register adds pc, blackholed if its link is cut; false once closed.
func (nw *network) register(pc *proxyConn) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if nw.closed {
		return false
	}
	pc.blackholed = nw.blocked[[2]int{pc.from, pc.to}]
	nw.conns[pc] = struct{}{}
	return true
}

func (nw *network) isBlackholed(pc *proxyConn) bool {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	return pc.blackholed
}

// isolate cuts every link between node i and the others, both ways: new
// connections are blackholed and so are the open ones.
func (nw *network) isolate(i int) {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	for j := range nw.proxies {
		if j != i {
			nw.blocked[[2]int{i, j}] = true
			nw.blocked[[2]int{j, i}] = true
		}
	}
	for pc := range nw.conns {
		if nw.blocked[[2]int{pc.from, pc.to}] {
			pc.blackholed = true
		}
	}
}

// heal restores every link and closes the blackholed connections, as a
// peer's TCP stack would reset them once packets flow again.
func (nw *network) heal() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	clear(nw.blocked)
	for pc := range nw.conns {
		if pc.blackholed {
			pc.closeLocked()
		}
	}
}

// close stops every proxy and connection.
func (nw *network) close() {
	nw.mu.Lock()
	defer nw.mu.Unlock()
	nw.closed = true
	var errs []error
	for _, p := range nw.proxies {
		if err := p.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	for pc := range nw.conns {
		pc.closeLocked()
	}
	if err := errors.Join(errs...); err != nil {
		nw.log.Warn("closing the proxies", "error", err)
	}
}
