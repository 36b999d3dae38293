package main

import (
	"cmp"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"

	"github.com/raftlite/raftlite/internal/tlsconf"
)

// tlsFlags are serve's TLS settings, with rqlited's flag names: HTTPS for
// the HTTP API (-http-*) and TLS between nodes on the Raft port (-node-*).
type tlsFlags struct {
	httpCert, httpKey, httpCA string
	httpVerifyClient          bool

	nodeCert, nodeKey, nodeCA string
	nodeNoVerify              bool
	nodeVerifyClient          bool
	nodeServerName            string
}

func (f *tlsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.httpCert, "http-cert", "", "PEM `file` of the HTTP API's X.509 certificate; with -http-key, the API serves HTTPS only")
	fs.StringVar(&f.httpKey, "http-key", "", "PEM `file` of the HTTP API certificate's private key")
	fs.StringVar(&f.httpCA, "http-ca-cert", "", "PEM `file` of the CA for HTTPS: it verifies client certificates (-http-verify-client) and the leader's "+
		"certificate when a follower forwards a request (default: the system's roots)")
	fs.BoolVar(&f.httpVerifyClient, "http-verify-client", false, "require HTTPS clients to present a certificate signed by -http-ca-cert (mutual TLS)")
	fs.StringVar(&f.nodeCert, "node-cert", "", "PEM `file` of this node's X.509 certificate for node-to-node TLS; with -node-key, "+
		"all traffic on the Raft port is TLS (it must allow server and client authentication)")
	fs.StringVar(&f.nodeKey, "node-key", "", "PEM `file` of the node certificate's private key")
	fs.StringVar(&f.nodeCA, "node-ca-cert", "", "PEM `file` of the CA that signs the other nodes' certificates (default: the system's roots)")
	fs.BoolVar(&f.nodeNoVerify, "node-no-verify", false, "do not verify the certificates of the nodes this node connects to")
	fs.BoolVar(&f.nodeVerifyClient, "node-verify-client", false, "require nodes connecting to this one to present a certificate signed by -node-ca-cert (mutual TLS)")
	fs.StringVar(&f.nodeServerName, "node-verify-server-name", "", "`name` to verify in other nodes' certificates (default: the host of the address dialed)")
}

// check reports flags that do not make sense together.
func (f *tlsFlags) check() error {
	var errs []error
	if (f.httpCert == "") != (f.httpKey == "") {
		errs = append(errs, errors.New("-http-cert and -http-key must be given together"))
	}
	if f.httpCert == "" && (f.httpCA != "" || f.httpVerifyClient) {
		errs = append(errs, errors.New("-http-ca-cert and -http-verify-client need -http-cert and -http-key"))
	}
	if (f.nodeCert == "") != (f.nodeKey == "") {
		errs = append(errs, errors.New("-node-cert and -node-key must be given together"))
	}
	if f.nodeCert == "" && (f.nodeCA != "" || f.nodeNoVerify || f.nodeVerifyClient || f.nodeServerName != "") {
		errs = append(errs, errors.New("-node-ca-cert, -node-no-verify, -node-verify-client and -node-verify-server-name need -node-cert and -node-key"))
	}
	return errors.Join(errs...)
}

// httpScheme is the scheme of this node's advertised HTTP API URL.
func (f *tlsFlags) httpScheme() string {
	if f.httpCert != "" {
		return "https"
	}
	return "http"
}

// httpTLS loads the HTTPS files: the server configuration of the API, and
// the client configuration this node uses towards other nodes' APIs
// (forwarding to the leader, probing members), which verifies their
// certificates against -http-ca-cert and presents this node's HTTP
// certificate to nodes that require client certificates. Both nil without
// -http-cert.
func (f *tlsFlags) httpTLS(logger *slog.Logger) (server, client *tls.Config, err error) {
	if f.httpCert == "" {
		return nil, nil, nil
	}
	src, err := tlsconf.Load(tlsconf.Files{Cert: f.httpCert, Key: f.httpKey, CA: f.httpCA}, logger.With("component", "https"))
	if err != nil {
		return nil, nil, fmt.Errorf("HTTPS (-http-cert, -http-key, -http-ca-cert): %w", err)
	}
	return src.ServerConfig(f.httpVerifyClient), src.ClientConfig("", false), nil
}

// nodeTLS loads the node-to-node files: the Raft port's server
// configuration, and the configuration of each connection to another node,
// made afresh per connection so that a replaced CA file takes effect too.
// Both nil without -node-cert.
func (f *tlsFlags) nodeTLS(logger *slog.Logger) (server *tls.Config, client func(addr string) *tls.Config, err error) {
	if f.nodeCert == "" {
		return nil, nil, nil
	}
	src, err := tlsconf.Load(tlsconf.Files{Cert: f.nodeCert, Key: f.nodeKey, CA: f.nodeCA}, logger.With("component", "node-tls"))
	if err != nil {
		return nil, nil, fmt.Errorf("node TLS (-node-cert, -node-key, -node-ca-cert): %w", err)
	}
	client = func(addr string) *tls.Config {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		return src.ClientConfig(cmp.Or(f.nodeServerName, host), f.nodeNoVerify)
	}
	return src.ServerConfig(f.nodeVerifyClient), client, nil
}
