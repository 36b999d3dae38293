// Package dnsstub is a tiny authoritative DNS server on a loopback UDP
// port, for tests of DNS discovery: it answers A and SRV questions from
// records the test sets (and may change while it runs), and NXDOMAIN for
// any other name. A node started with RAFTLITE_DNS_RESOLVER set to its
// Addr resolves through it, so a test controls what DNS says without
// touching the machine's resolver.
package dnsstub

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/net/dns/dnsmessage"
)

// SRV is one SRV record's target and port.
type SRV struct {
	Target string
	Port   uint16
}

// Server is the stub. Names are matched without case and without the
// trailing dot.
type Server struct {
	conn net.PacketConn

	mu   sync.Mutex
	a    map[string][]netip.Addr
	srv  map[string][]SRV
	done chan struct{}
}

// Start serves on a free 127.0.0.1 UDP port until Close.
func Start() (*Server, error) {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("dnsstub: listen: %w", err)
	}
	s := &Server{conn: conn, a: map[string][]netip.Addr{}, srv: map[string][]SRV{}, done: make(chan struct{})}
	go s.serve()
	return s, nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.conn.LocalAddr().String() }

// Close stops the server.
func (s *Server) Close() error {
	err := s.conn.Close()
	<-s.done
	return err
}

// SetA makes name resolve to ips (none: NXDOMAIN).
func (s *Server) SetA(name string, ips ...string) {
	addrs := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, netip.MustParseAddr(ip))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.a[canonical(name)] = addrs
}

// SetSRV sets the SRV records of name (e.g. "_raft._tcp.raftlite.local").
func (s *Server) SetSRV(name string, records ...SRV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv[canonical(name)] = records
}

func canonical(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

func (s *Server) serve() {
	defer close(s.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if reply, err := s.answer(buf[:n]); err == nil {
			s.conn.WriteTo(reply, from)
		}
	}
}

// answer builds the reply to one query.
func (s *Server) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := canonical(q.Name.String())
	s.mu.Lock()
	ips, srvs := s.a[name], s.srv[name]
	known := len(ips) > 0 || len(srvs) > 0
	s.mu.Unlock()

	rcode := dnsmessage.RCodeSuccess
	if !known {
		rcode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RCode: rcode})
	b.EnableCompression()
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 1}
	switch q.Type {
	case dnsmessage.TypeA:
		for _, ip := range ips {
			if ip.Is4() {
				if err := b.AResource(rh, dnsmessage.AResource{A: ip.As4()}); err != nil {
					return nil, err
				}
			}
		}
	case dnsmessage.TypeSRV:
		for _, r := range srvs {
			target, err := dnsmessage.NewName(canonical(r.Target) + ".")
			if err != nil {
				return nil, err
			}
			if err := b.SRVResource(rh, dnsmessage.SRVResource{Priority: 0, Weight: 10, Port: r.Port, Target: target}); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}
