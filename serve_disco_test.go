package main

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/dnsstub"
)

// TestDiscoFlags: -disco-mode dns and dns-srv with rqlited's -disco-config
// are read (the port defaults to 4002) and need -bootstrap-expect; other
// modes, a config without a name or without a mode, and a malformed
// resolver address are refused with a message saying what to give.
func TestDiscoFlags(t *testing.T) {
	f, err := parseServeFlags([]string{"-disco-mode", "dns", "-disco-config", `{"name":"raftlite-headless"}`, "-bootstrap-expect", "3", "data"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := f.rqlited.disco; d == nil || d.cfg.Name != "raftlite-headless" || d.cfg.Port != defaultDiscoPort {
		t.Fatalf("disco = %+v", d)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-disco-mode", "consul-kv", "-disco-config", `{}`, "-bootstrap-expect", "3"}, `-disco-mode "consul-kv" is not supported`},
		{[]string{"-disco-mode", "dns", "-bootstrap-expect", "3"}, `want JSON such as`},
		{[]string{"-disco-mode", "dns", "-disco-config", `{"port":4002}`, "-bootstrap-expect", "3"}, `"name" is required`},
		{[]string{"-disco-mode", "dns", "-disco-config", `{"name":"x","prot":4002}`, "-bootstrap-expect", "3"}, `unknown field "prot"`},
		{[]string{"-disco-mode", "dns-srv", "-disco-config", `{"name":"x"}`, "-bootstrap-expect", "3"}, `needs "service"`},
		{[]string{"-disco-config", `{"name":"x"}`}, `-disco-config needs -disco-mode`},
		{[]string{"-disco-mode", "dns", "-disco-config", `{"name":"x"}`}, `-disco-mode needs -bootstrap-expect`},
	} {
		_, err := parseServeFlags(append(c.args, "data"), io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: err = %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := newDNSDiscovery("dns", `{"name":"x"}`, func(string) string { return "nowhere" }); err == nil || !strings.Contains(err.Error(), dnsResolverEnv) {
		t.Errorf("a malformed %s: err = %v", dnsResolverEnv, err)
	}
}

// TestDNSDiscoveryLookups: through a stub DNS server (dnsResolverEnv), dns
// returns every address of the name with the configured port and sees
// records added later (discovery looks up again at every round); dns-srv
// returns the SRV targets and ports; a name DNS does not know is an error
// naming it.
func TestDNSDiscoveryLookups(t *testing.T) {
	stub, err := dnsstub.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Close()
	env := func(name string) string {
		if name == dnsResolverEnv {
			return stub.Addr()
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	a, err := newDNSDiscovery("dns", `{"name":"raftlite-headless.test","port":4102}`, env)
	if err != nil {
		t.Fatal(err)
	}
	stub.SetA("raftlite-headless.test", "127.0.0.2")
	lookup := func(d *dnsDiscovery, want ...string) {
		t.Helper()
		got, err := d.addrs(ctx)
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("addrs = %v, %v; want %v", got, err, want)
		}
	}
	lookup(a, "127.0.0.2:4102")
	stub.SetA("raftlite-headless.test", "127.0.0.3", "127.0.0.1", "127.0.0.2")
	lookup(a, "127.0.0.1:4102", "127.0.0.2:4102", "127.0.0.3:4102")

	srv, err := newDNSDiscovery("dns-srv", `{"name":"raftlite.test","service":"raft"}`, env)
	if err != nil {
		t.Fatal(err)
	}
	stub.SetSRV("_raft._tcp.raftlite.test",
		dnsstub.SRV{Target: "raftlite-1.raftlite.test", Port: 4012}, dnsstub.SRV{Target: "raftlite-0.raftlite.test.", Port: 4002})
	lookup(srv, "raftlite-0.raftlite.test:4002", "raftlite-1.raftlite.test:4012")

	missing, err := newDNSDiscovery("dns", `{"name":"nobody.test"}`, env)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := missing.addrs(ctx); err == nil || !strings.Contains(err.Error(), "nobody.test") {
		t.Fatalf("unknown name: %v, %v", got, err)
	}
}
