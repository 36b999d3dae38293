package cluster

import (
	"bytes"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/tlsconf"
	"github.com/raftlite/raftlite/internal/tlstest"
)

func TestMuxRoutesByHeader(t *testing.T) {
	ln := listen(t)
	m := newMux(ln, nil, slog.New(slog.DiscardHandler))
	a := m.listen('A', tcpAddr("adv:1"))
	b := m.listen('B', tcpAddr("adv:1"))
	m.serve()
	defer m.close()

	if a.Addr().String() != "adv:1" {
		t.Fatalf("sub-listener address = %s", a.Addr())
	}

	// A connection that never sends its header must not hold up others.
	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	// Unknown headers are dropped.
	bad, err := dialer{}.dial(t.Context(), ln.Addr().String(), 'Z', time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = bad.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bad.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("read on connection with unknown header: %v, want EOF", err)
	}
	bad.Close()

	for _, tc := range []struct {
		hdr byte
		l   net.Listener
	}{{'B', b}, {'A', a}} {
		c, err := dialer{}.dial(t.Context(), ln.Addr().String(), tc.hdr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		s, err := tc.l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 2)
		if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("header %c: read %q, %v", tc.hdr, buf, err)
		}
		s.Close()
		c.Close()
	}

	// Closing the mux ends Accept on every sub-listener.
	done := make(chan error, 1)
	go func() { _, err := a.Accept(); done <- err }()
	if err := m.close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Accept after close returned a connection")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept did not return after close")
	}
}

// TestMuxTLS: with TLS on, a node with a certificate of the cluster's CA
// reaches the service of its header; a plaintext peer and a node with a
// certificate of another CA are dropped before any service sees them, and
// the refusal is logged with its reason.
func TestMuxTLS(t *testing.T) {
	ca, other := tlstest.NewCA(t, "cluster"), tlstest.NewCA(t, "other")
	dir := t.TempDir()
	caFile := ca.WriteCA(t, dir, "ca")
	// source loads a node's files as serve does (see internal/tlsconf).
	source := func(issuer *tlstest.CA, name string) *tlsconf.Source {
		pf := issuer.Issue(t, name, "127.0.0.1").Write(t, dir, name)
		src, err := tlsconf.Load(tlsconf.Files{Cert: pf.Cert, Key: pf.Key, CA: caFile}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	serverCfg := source(ca, "server").ServerConfig(true)
	var logs syncBuffer
	ln := listen(t)
	m := newMux(ln, serverCfg, slog.New(slog.NewTextHandler(&logs, nil)))
	a := m.listen('A', tcpAddr("adv:1"))
	m.serve()
	defer m.close()
	addr := ln.Addr().String()
	nodeDialer := func(src *tlsconf.Source) dialer {
		return dialer{tls: func(string) *tls.Config { return src.ClientConfig("127.0.0.1", false) }}
	}

	c, err := nodeDialer(source(ca, "member")).dial(t.Context(), addr, 'A', time.Second)
	if err != nil {
		t.Fatalf("member: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hi")); err != nil {
		t.Fatal(err)
	}
	s, err := a.Accept()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2)
	if _, err := io.ReadFull(s, buf); err != nil || string(buf) != "hi" {
		t.Fatalf("member: read %q, %v", buf, err)
	}
	s.Close()

	// Plaintext: the header byte and a request, answered by nothing.
	plain, err := dialer{}.dial(t.Context(), addr, 'A', time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = plain.Write([]byte("POST /cluster/v1/join HTTP/1.1\r\nHost: x\r\n\r\n"))
	_ = plain.SetReadDeadline(time.Now().Add(5 * time.Second))
	reply, _ := io.ReadAll(plain)
	plain.Close()
	if bytes.Contains(reply, []byte("HTTP/")) {
		t.Fatalf("plaintext peer got an answer: %q", reply)
	}

	// Another CA's certificate, from a peer that trusts the cluster's CA.
	// (With TLS 1.3 the client's handshake completes before the server
	// checks its certificate, so the dial itself may succeed.)
	if sc, err := nodeDialer(source(other, "stranger")).dial(t.Context(), addr, 'A', time.Second); err == nil {
		sc.Close()
	}
	waitFor(t, 5*time.Second, "the refusal logged", func() bool {
		return strings.Contains(logs.String(), "certificate signed by unknown authority")
	})
	if !strings.Contains(logs.String(), "first record does not look like a TLS handshake") {
		t.Fatalf("plaintext refusal not logged:\n%s", logs.String())
	}
	select {
	case conn := <-a.conns:
		t.Fatalf("a refused peer reached the service: %v", conn.RemoteAddr())
	default:
	}
}
