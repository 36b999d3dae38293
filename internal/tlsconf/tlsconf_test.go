package tlsconf

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/internal/tlstest"
)

// handshakeResult is what each side of one connection saw.
type handshakeResult struct {
	serverErr, clientErr error
	serverSaw, clientSaw *x509.Certificate // the peer's leaf certificate
}

// handshake connects a client with clientCfg to a server with serverCfg
// over loopback TCP and exchanges one byte each way, so that a client
// certificate refused after a TLS 1.3 handshake shows on the client too.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) handshakeResult {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var res handshakeResult
	done := make(chan struct{})
	go func() {
		defer close(done)
		raw, err := ln.Accept()
		if err != nil {
			res.serverErr = err
			return
		}
		conn := tls.Server(raw, serverCfg)
		defer conn.Close()
		if res.serverErr = conn.Handshake(); res.serverErr != nil {
			return
		}
		if peers := conn.ConnectionState().PeerCertificates; len(peers) > 0 {
			res.serverSaw = peers[0]
		}
		var b [1]byte
		if _, res.serverErr = io.ReadFull(conn, b[:]); res.serverErr == nil {
			_, res.serverErr = conn.Write(b[:])
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, clientCfg)
	res.clientErr = conn.Handshake()
	if res.clientErr == nil {
		res.clientSaw = conn.ConnectionState().PeerCertificates[0]
		var b [1]byte
		if _, res.clientErr = conn.Write([]byte{'x'}); res.clientErr == nil {
			_, res.clientErr = io.ReadFull(conn, b[:])
		}
	}
	conn.Close()
	<-done
	return res
}

// side is one party's files, written under a temporary directory.
type side struct {
	src   *Source
	files Files
	pair  tlstest.Pair
}

func newSide(t *testing.T, ca *tlstest.CA, trust *tlstest.CA, name string, logger *slog.Logger) side {
	t.Helper()
	dir := t.TempDir()
	pair := ca.Issue(t, name, "127.0.0.1", name+".test")
	pf := pair.Write(t, dir, name)
	files := Files{Cert: pf.Cert, Key: pf.Key, CA: trust.WriteCA(t, dir, "ca")}
	src, err := Load(files, logger)
	if err != nil {
		t.Fatal(err)
	}
	return side{src: src, files: files, pair: pair}
}

// withName is cfg for a connection to name, as a dialer sets it.
func withName(cfg *tls.Config, name string) *tls.Config {
	c := cfg.Clone()
	c.ServerName = name
	return c
}

func TestMutualTLS(t *testing.T) {
	ca, other := tlstest.NewCA(t, "ca"), tlstest.NewCA(t, "other")
	server := newSide(t, ca, ca, "server", nil)
	client := newSide(t, ca, ca, "client", nil)

	res := handshake(t, server.src.ServerConfig(true), withName(client.src.ClientConfig("", false), "127.0.0.1"))
	if res.serverErr != nil || res.clientErr != nil {
		t.Fatalf("same CA: server %v, client %v", res.serverErr, res.clientErr)
	}
	if !res.serverSaw.Equal(client.pair.Cert) || !res.clientSaw.Equal(server.pair.Cert) {
		t.Fatal("the sides did not see each other's certificates")
	}

	t.Run("client certificate from another CA", func(t *testing.T) {
		stranger := newSide(t, other, ca, "stranger", nil)
		res := handshake(t, server.src.ServerConfig(true), withName(stranger.src.ClientConfig("", false), "127.0.0.1"))
		var verr *tls.CertificateVerificationError
		if !errors.As(res.serverErr, &verr) || !strings.Contains(res.serverErr.Error(), "unknown authority") {
			t.Fatalf("server: %v, want the client's certificate refused as signed by an unknown authority", res.serverErr)
		}
		if res.clientErr == nil {
			t.Fatal("client: no error after its certificate was refused")
		}
	})
	t.Run("no client certificate", func(t *testing.T) {
		anon, err := Load(Files{CA: server.files.CA}, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := handshake(t, server.src.ServerConfig(true), withName(anon.ClientConfig("", false), "127.0.0.1"))
		if res.serverErr == nil || res.clientErr == nil {
			t.Fatalf("server %v, client %v: want both to fail", res.serverErr, res.clientErr)
		}
		// Without verifyClient the same client is served.
		if res := handshake(t, server.src.ServerConfig(false), withName(anon.ClientConfig("", false), "127.0.0.1")); res.serverErr != nil || res.clientErr != nil {
			t.Fatalf("no client verification: server %v, client %v", res.serverErr, res.clientErr)
		}
	})
	t.Run("server certificate from another CA", func(t *testing.T) {
		distrustful := newSide(t, ca, other, "distrustful", nil)
		res := handshake(t, server.src.ServerConfig(false), withName(distrustful.src.ClientConfig("", false), "127.0.0.1"))
		if res.clientErr == nil || !strings.Contains(res.clientErr.Error(), "unknown authority") {
			t.Fatalf("client: %v, want the server's certificate refused", res.clientErr)
		}
		// -insecure accepts it.
		res = handshake(t, server.src.ServerConfig(false), withName(distrustful.src.ClientConfig("", true), "127.0.0.1"))
		if res.serverErr != nil || res.clientErr != nil {
			t.Fatalf("insecure: server %v, client %v", res.serverErr, res.clientErr)
		}
	})
	t.Run("server name", func(t *testing.T) {
		res := handshake(t, server.src.ServerConfig(false), withName(client.src.ClientConfig("", false), "elsewhere.test"))
		if res.clientErr == nil || !strings.Contains(res.clientErr.Error(), "elsewhere.test") {
			t.Fatalf("client: %v, want the name mismatch refused", res.clientErr)
		}
		// A name to verify other than the address dialed (-node-verify-server-name).
		res = handshake(t, server.src.ServerConfig(false), client.src.ClientConfig("server.test", false))
		if res.clientErr != nil {
			t.Fatalf("server name given: %v", res.clientErr)
		}
		res = handshake(t, server.src.ServerConfig(false), client.src.ClientConfig("", false))
		if res.clientErr == nil {
			t.Fatal("a client with no server name to verify connected")
		}
	})
}

// TestRotation replaces the files under running configurations: the next
// handshake uses them, without a new configuration.
func TestRotation(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	var logs bytes.Buffer
	server := newSide(t, ca, ca, "server", slog.New(slog.NewTextHandler(&logs, nil)))
	client := newSide(t, ca, ca, "client", nil)
	serverCfg := server.src.ServerConfig(true)
	clientCfg := withName(client.src.ClientConfig("", false), "127.0.0.1")

	renewed := ca.Issue(t, "server", "127.0.0.1")
	renewed.Write(t, t.TempDir(), "unused") // a different file changes nothing
	if res := handshake(t, serverCfg, clientCfg); !res.clientSaw.Equal(server.pair.Cert) {
		t.Fatal("certificate changed without its files changing")
	}
	writeOver(t, server.files.Cert, renewed.CertPEM)
	writeOver(t, server.files.Key, renewed.KeyPEM)
	res := handshake(t, serverCfg, clientCfg)
	if res.clientErr != nil || !res.clientSaw.Equal(renewed.Cert) {
		t.Fatalf("after rotation: error %v, serial %v, want %v", res.clientErr, res.clientSaw.SerialNumber, renewed.Cert.SerialNumber)
	}
	if !strings.Contains(logs.String(), "reloaded") || !strings.Contains(logs.String(), renewed.Cert.SerialNumber.String()) {
		t.Fatalf("no reload logged with the new serial: %s", logs.String())
	}

	// Half a rotation (a certificate without its key): the previous pair
	// stays in use and the failure is logged.
	half := ca.Issue(t, "server", "127.0.0.1")
	writeOver(t, server.files.Cert, half.CertPEM)
	res = handshake(t, serverCfg, clientCfg)
	if res.clientErr != nil || !res.clientSaw.Equal(renewed.Cert) {
		t.Fatalf("half rotation: error %v; want the previous certificate still served", res.clientErr)
	}
	if !strings.Contains(logs.String(), "cannot be read") {
		t.Fatalf("half rotation not logged: %s", logs.String())
	}
	writeOver(t, server.files.Key, half.KeyPEM)
	if res := handshake(t, serverCfg, clientCfg); !res.clientSaw.Equal(half.Cert) {
		t.Fatal("completed rotation not picked up")
	}

	// A new CA: both sides' CA files and certificates replaced. The
	// server follows at once and refuses the client's old certificate; a
	// client configuration made after the change trusts the new CA.
	newCA := tlstest.NewCA(t, "ca2")
	writeOver(t, server.files.CA, newCA.PEM)
	sp := newCA.Issue(t, "server", "127.0.0.1")
	writeOver(t, server.files.Cert, sp.CertPEM)
	writeOver(t, server.files.Key, sp.KeyPEM)
	if res := handshake(t, serverCfg, clientCfg); res.serverErr == nil || res.clientErr == nil {
		t.Fatalf("old CA still accepted: server %v, client %v", res.serverErr, res.clientErr)
	}
	writeOver(t, client.files.CA, newCA.PEM)
	cp := newCA.Issue(t, "client")
	writeOver(t, client.files.Cert, cp.CertPEM)
	writeOver(t, client.files.Key, cp.KeyPEM)
	clientCfg = withName(client.src.ClientConfig("", false), "127.0.0.1")
	if res := handshake(t, serverCfg, clientCfg); res.serverErr != nil || res.clientErr != nil || !res.serverSaw.Equal(cp.Cert) {
		t.Fatalf("after CA rotation: server %v, client %v", res.serverErr, res.clientErr)
	}
}

// writeOver replaces a file's content in place (not by rename): a reader
// must notice that too.
func writeOver(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "ca")
	dir := t.TempDir()
	pf := ca.Issue(t, "n", "127.0.0.1").Write(t, dir, "n")
	notPEM := dir + "/not.pem"
	writeOver(t, notPEM, []byte("hello"))
	for name, f := range map[string]Files{
		"cert without key": {Cert: pf.Cert},
		"missing file":     {Cert: pf.Cert, Key: dir + "/nope.key"},
		"key mismatch":     {Cert: pf.Cert, Key: ca.Issue(t, "m").Write(t, dir, "m").Key},
		"CA not PEM":       {CA: notPEM},
	} {
		if _, err := Load(f, nil); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestClientFlags(t *testing.T) {
	var f ClientFlags
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if cfg, err := f.Config(); cfg != nil || err != nil || f.URL("h:1") != "http://h:1" {
		t.Fatalf("no flags: %v %v %s", cfg, err, f.URL("h:1"))
	}
	if err := fs.Parse([]string{"-insecure"}); err != nil {
		t.Fatal(err)
	}
	if f.URL("h:1") != "https://h:1" || f.URL("http://h:1") != "http://h:1" {
		t.Fatalf("-insecure: %s %s", f.URL("h:1"), f.URL("http://h:1"))
	}
	if cfg, err := f.Config(); err != nil || !cfg.InsecureSkipVerify {
		t.Fatalf("-insecure: %v, config %+v", err, cfg)
	}
	if err := fs.Parse([]string{"-client-cert", "x.crt"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Config(); err == nil {
		t.Fatal("-client-cert without -client-key accepted")
	}
}
