package selftest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// echoServer accepts connections and echoes lines back.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// dial connects to addr, closing the connection when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// echoes reports whether a line sent on c comes back within d.
func echoes(c net.Conn, d time.Duration) bool {
	_ = c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ping\n"
}

// TestProxyIsolate: a proxy forwards a connection until its link is cut,
// then blackholes it (nothing comes back, nothing fails at once, like a
// network dropping packets), and closes it when the partition heals; new
// connections work again after.
func TestProxyIsolate(t *testing.T) {
	nw := newNetwork(slog.New(slog.DiscardHandler))
	var from atomic.Int32 // the node the test pretends to be
	nw.owner = func(_, _ *net.TCPAddr) int { return int(from.Load()) }
	defer nw.close()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	proxy0 := fmt.Sprintf("127.0.0.1:%d", ports[0])
	if err := nw.addProxy(0, proxy0, echoServer(t)); err != nil {
		t.Fatal(err)
	}
	if err := nw.addProxy(1, fmt.Sprintf("127.0.0.1:%d", ports[1]), echoServer(t)); err != nil {
		t.Fatal(err)
	}
	from.Store(1)
	c := dial(t, proxy0)
	if !echoes(c, 5*time.Second) {
		t.Fatal("no echo through the proxy before the partition")
	}

	nw.isolate(1)
	if echoes(c, 300*time.Millisecond) {
		t.Fatal("an open connection from the isolated node still gets answers")
	}
	fresh := dial(t, proxy0)
	if echoes(fresh, 300*time.Millisecond) {
		t.Fatal("a new connection from the isolated node gets answers")
	}
	from.Store(2) // node 2 is not cut off from node 0
	other := dial(t, proxy0)
	if !echoes(other, 5*time.Second) {
		t.Fatal("a connection between two nodes that are not isolated is cut")
	}

	nw.heal()
	_ = fresh.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fresh.Read(make([]byte, 1)); !errors.Is(err, io.EOF) {
		t.Fatalf("a blackholed connection after healing: %v, want it closed", err)
	}
	from.Store(1)
	again := dial(t, proxy0)
	if !echoes(again, 5*time.Second) {
		t.Fatal("no echo after healing")
	}
}

// TestSocketOwnerPID: the owner of a connection's client end is found
// among the candidate processes (here the test itself).
func TestSocketOwnerPID(t *testing.T) {
	if !partitionsSupported {
		t.Skip("socket owners are looked up in Linux's /proc")
	}
	addr := echoServer(t)
	c := dial(t, addr)
	self := os.Getpid()
	pid, err := socketOwnerPID(c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr), map[int]int{self: 0})
	if err != nil || pid != self {
		t.Fatalf("owner %d, %v; want this process %d", pid, err, self)
	}
	if _, err := socketOwnerPID(c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr), map[int]int{1: 0}); err == nil {
		t.Fatal("found the socket in a process that does not hold it")
	}
}
