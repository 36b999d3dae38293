package cluster

import (
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

func TestMuxRoutesByHeader(t *testing.T) {
	ln := listen(t)
	m := newMux(ln, slog.New(slog.DiscardHandler))
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
	bad, err := dialWithHeader(t.Context(), ln.Addr().String(), 'Z', time.Second)
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
		c, err := dialWithHeader(t.Context(), ln.Addr().String(), tc.hdr, time.Second)
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
