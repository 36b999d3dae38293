package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
)

// DNS discovery, rqlited's -disco-mode dns and dns-srv: the nodes of a new
// cluster find each other through DNS (a Kubernetes headless Service, a
// Docker Compose service name, ...) rather than a -join list written in
// advance, and bootstrap with -bootstrap-expect. The lookup is repeated at
// every round of bootstrap notifications, so nodes whose names appear in
// DNS only once they start are found (cluster.Config.Discover).

// dnsResolverEnv names the environment variable that points DNS discovery
// at one DNS server (host:port) instead of those of /etc/resolv.conf: a
// hook for tests (a stub server on loopback) and for operators whose
// cluster names live on a server of their own.
const dnsResolverEnv = "RAFTLITE_DNS_RESOLVER"

// defaultDiscoPort is the Raft port a -disco-mode dns name's addresses are
// given when -disco-config names none: raftlite's default -raft-addr port.
const defaultDiscoPort = 4002

// discoConfig is -disco-config's JSON, with rqlited's field names.
type discoConfig struct {
	Name    string `json:"name"`    // the name to look up
	Port    int    `json:"port"`    // dns: the nodes' Raft port
	Service string `json:"service"` // dns-srv: the service, looked up as _service._tcp.name
}

// dnsDiscovery finds the Raft addresses of the nodes by DNS.
type dnsDiscovery struct {
	mode     string // "dns" or "dns-srv"
	cfg      discoConfig
	resolver *net.Resolver
}

// newDNSDiscovery reads -disco-mode and -disco-config; nil when no mode is
// given. getenv reads dnsResolverEnv.
func newDNSDiscovery(mode, config string, getenv func(string) string) (*dnsDiscovery, error) {
	if mode == "" {
		if config != "" {
			return nil, fmt.Errorf("-disco-config needs -disco-mode dns or dns-srv")
		}
		return nil, nil
	}
	if mode != "dns" && mode != "dns-srv" {
		return nil, fmt.Errorf("-disco-mode %q is not supported: use dns or dns-srv (Consul and etcd discovery are not), or -join with -bootstrap-expect", mode)
	}
	d := &dnsDiscovery{mode: mode, resolver: net.DefaultResolver}
	dec := json.NewDecoder(strings.NewReader(config))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d.cfg); err != nil {
		return nil, fmt.Errorf(`-disco-config: want JSON such as {"name":"raftlite-headless","port":4002}: %w`, err)
	}
	switch {
	case d.cfg.Name == "":
		return nil, fmt.Errorf("-disco-config: \"name\" is required: the DNS name to look up")
	case mode == "dns" && d.cfg.Port == 0:
		d.cfg.Port = defaultDiscoPort
	case mode == "dns-srv" && d.cfg.Service == "":
		return nil, fmt.Errorf("-disco-config: -disco-mode dns-srv needs \"service\" (looked up as _service._tcp.name)")
	}
	if d.cfg.Port < 0 || d.cfg.Port > 65535 {
		return nil, fmt.Errorf("-disco-config: port %d out of range", d.cfg.Port)
	}
	if server := getenv(dnsResolverEnv); server != "" {
		if _, _, err := net.SplitHostPort(server); err != nil {
			return nil, fmt.Errorf("%s=%q: want host:port of a DNS server: %w", dnsResolverEnv, server, err)
		}
		d.resolver = resolverAt(server)
	}
	return d, nil
}

// resolverAt returns a pure-Go resolver that sends every question to the
// DNS server at addr.
func resolverAt(addr string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
}

// addrs looks the name up now and returns the nodes' Raft addresses,
// sorted: for dns each address of the name with the configured port, for
// dns-srv each SRV record's target and port.
func (d *dnsDiscovery) addrs(ctx context.Context) ([]string, error) {
	var out []string
	switch d.mode {
	case "dns":
		ips, err := d.resolver.LookupHost(ctx, d.cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("DNS discovery: look up %s: %w", d.cfg.Name, err)
		}
		for _, ip := range ips {
			out = append(out, net.JoinHostPort(ip, strconv.Itoa(d.cfg.Port)))
		}
	case "dns-srv":
		_, records, err := d.resolver.LookupSRV(ctx, d.cfg.Service, "tcp", d.cfg.Name)
		if err != nil {
			return nil, fmt.Errorf("DNS discovery: look up SRV _%s._tcp.%s: %w", d.cfg.Service, d.cfg.Name, err)
		}
		for _, r := range records {
			out = append(out, net.JoinHostPort(strings.TrimSuffix(r.Target, "."), strconv.Itoa(int(r.Port))))
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
