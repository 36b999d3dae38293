package tlsconf

import (
	"crypto/tls"
	"errors"
	"flag"
	"strings"
)

// ClientFlags are the TLS flags of the command-line tools that talk to a
// node's HTTP API (shell, backup, restore, check, bench). -ca-cert and
// -insecure are the rqlite shell's names.
type ClientFlags struct {
	CACert     string
	ClientCert string
	ClientKey  string
	Insecure   bool
}

// Register adds the flags to fs.
func (f *ClientFlags) Register(fs *flag.FlagSet) {
	fs.StringVar(&f.CACert, "ca-cert", "", "PEM `file` of the CA that signs the nodes' HTTPS certificates (default: the system's roots); implies https")
	fs.StringVar(&f.ClientCert, "client-cert", "", "PEM `file` of a client certificate, for nodes run with -http-verify-client; implies https")
	fs.StringVar(&f.ClientKey, "client-key", "", "PEM `file` of the client certificate's key")
	fs.BoolVar(&f.Insecure, "insecure", false, "do not verify the nodes' HTTPS certificates; implies https")
}

// Set reports whether any TLS flag was given: then host:port addresses
// without a scheme mean https.
func (f *ClientFlags) Set() bool {
	return f.CACert != "" || f.ClientCert != "" || f.ClientKey != "" || f.Insecure
}

// Scheme is the scheme a host:port address without one gets.
func (f *ClientFlags) Scheme() string {
	if f.Set() {
		return "https"
	}
	return "http"
}

// URL turns a host:port address into a URL with Scheme; an address that
// already is a URL is returned as it is.
func (f *ClientFlags) URL(addr string) string {
	if strings.Contains(addr, "://") {
		return addr
	}
	return f.Scheme() + "://" + addr
}

// Config is the client TLS configuration the flags describe, or nil when
// none was given (https URLs are then verified against the system's
// roots).
func (f *ClientFlags) Config() (*tls.Config, error) {
	if !f.Set() {
		return nil, nil
	}
	if (f.ClientCert == "") != (f.ClientKey == "") {
		return nil, errors.New("-client-cert and -client-key must be given together")
	}
	src, err := Load(Files{Cert: f.ClientCert, Key: f.ClientKey, CA: f.CACert}, nil)
	if err != nil {
		return nil, err
	}
	return src.ClientConfig("", f.Insecure), nil
}
