//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/client"
	"github.com/raftlite/raftlite/internal/tlstest"
)

// pki is a test's certificate authority and the files made from it.
type pki struct {
	dir    string
	ca     *tlstest.CA
	caFile string
}

func newPKI(t *testing.T, name string) *pki {
	dir := t.TempDir()
	ca := tlstest.NewCA(t, name)
	return &pki{dir: dir, ca: ca, caFile: ca.WriteCA(t, dir, name+"-ca")}
}

// issue writes a certificate for 127.0.0.1 named name and returns its files.
func (p *pki) issue(t *testing.T, name string) tlstest.Files {
	return p.ca.Issue(t, name, "127.0.0.1").Write(t, p.dir, name)
}

// withSwitches returns args with boolean flags set, before the data
// directory (withFlag writes "-name value", which a boolean flag does not
// take).
func withSwitches(args []string, names ...string) []string {
	out := append([]string(nil), args[:len(args)-1]...)
	for _, n := range names {
		out = append(out, "-"+n)
	}
	return append(out, args[len(args)-1])
}

// tlsNodeArgs gives a node HTTPS with required client certificates and
// mutual node-to-node TLS, with certificates of its own issued by p (node
// TLS) and trusted (httpsCA, nodeCA).
func tlsNodeArgs(t *testing.T, args []string, name string, httpsPKI, nodePKI *pki, nodeCAFile string) []string {
	h := httpsPKI.issue(t, "http-"+name)
	n := nodePKI.issue(t, "node-"+name)
	args = withFlags(t, args,
		"http-cert", h.Cert, "http-key", h.Key, "http-ca-cert", httpsPKI.caFile,
		"node-cert", n.Cert, "node-key", n.Key, "node-ca-cert", nodeCAFile)
	return withSwitches(args, "http-verify-client", "node-verify-client")
}

// TestTLSCluster runs the Procfile's cluster with HTTPS (client
// certificates required) and mutual TLS between nodes: it forms, forwards
// and fails over; plaintext and certificate-less clients are refused; the
// shell, backup, check and the Go client work with the test CA; the Raft
// port refuses a plaintext peer; a node whose certificate comes from
// another CA never becomes a member, and both sides log why; replaced
// certificate files are used by new handshakes without a restart.
func TestTLSCluster(t *testing.T) {
	p := newPKI(t, "raftlite-test")
	c := addProcfileNodes(t)
	for _, n := range c.nodes {
		n.args = tlsNodeArgs(t, n.args, n.name, p, p, p.caFile)
	}
	clientFiles := p.issue(t, "client")
	clientCert, err := tls.LoadX509KeyPair(clientFiles.Cert, clientFiles.Key)
	if err != nil {
		t.Fatal(err)
	}
	trusted := &tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{clientCert}}
	c.hc.Transport.(*http.Transport).TLSClientConfig = trusted
	for _, n := range c.nodes {
		n.start(t)
	}
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	createTable(t, c.nodes[0])
	// Through every node: followers forward to the leader over HTTPS,
	// presenting their own HTTP certificates.
	acked := writeThroughEach(t, c.nodes, 0)
	waitIdentical(t, acked, c.nodes...)
	follower := c.others(leader)[0]

	t.Run("plaintext HTTP is refused", func(t *testing.T) {
		resp, err := http.Get("http://" + follower.httpAddr + "/status")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Fatalf("plaintext request answered 200: %s", body)
			}
			t.Logf("plaintext request: HTTP %d %q", resp.StatusCode, bytes.TrimSpace(body))
		}
	})
	t.Run("clients without a trusted certificate are refused", func(t *testing.T) {
		stranger := newPKI(t, "stranger")
		strangerFiles := stranger.issue(t, "client")
		strangerCert, err := tls.LoadX509KeyPair(strangerFiles.Cert, strangerFiles.Key)
		if err != nil {
			t.Fatal(err)
		}
		for name, cfg := range map[string]*tls.Config{
			"no client certificate":                  {RootCAs: p.ca.Pool()},
			"client certificate from another CA":     {RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{strangerCert}},
			"server certificate not trusted (no CA)": {Certificates: []tls.Certificate{clientCert}},
		} {
			if code, err := httpsGet(cfg, follower.url("/status")); err == nil {
				t.Errorf("%s: HTTP %d, want the connection refused", name, code)
			} else {
				t.Logf("%s: %v", name, err)
			}
		}
		if code, err := httpsGet(trusted, follower.url("/status")); err != nil || code != http.StatusOK {
			t.Fatalf("trusted client: HTTP %d, %v", code, err)
		}
	})
	t.Run("web console", func(t *testing.T) {
		// The same HTTPS server serves the console; its calls are paths on
		// the page's own origin, so they go over the same TLS.
		code, body, err := follower.call("GET", "/console/", nil, "")
		if err != nil || code != http.StatusOK || !bytes.Contains(body, []byte("<title>raftlite console</title>")) {
			t.Fatalf("GET /console/ over HTTPS: %d %v %.200s", code, err, body)
		}
	})
	t.Run("Go client", func(t *testing.T) {
		var nodes []string
		for _, n := range c.nodes {
			nodes = append(nodes, n.url(""))
		}
		gc, err := client.New(client.Config{Nodes: nodes, TLS: trusted.Clone()})
		if err != nil {
			t.Fatal(err)
		}
		defer gc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		acked++
		if _, err := gc.Execute(ctx, client.SQL("INSERT INTO t(id, via) VALUES(?, 'go client')", acked)); err != nil {
			t.Fatalf("execute over HTTPS: %v", err)
		}
		resp, err := gc.With(client.WithLevel(api.LevelStrong)).Query(ctx, client.SQL("SELECT COUNT(*) FROM t"))
		if err != nil {
			t.Fatalf("query over HTTPS: %v", err)
		}
		if got := fmt.Sprint(resp.Results[0].Values[0][0]); got != fmt.Sprint(acked) {
			t.Fatalf("count %s, want %d", got, acked)
		}
	})
	t.Run("shell, backup and check", func(t *testing.T) {
		tlsArgs := []string{"-ca-cert", p.caFile, "-client-cert", clientFiles.Cert, "-client-key", clientFiles.Key}
		out := runTool(t, append([]string{"shell", "-H", follower.httpAddr, "-c", "SELECT COUNT(*) AS n FROM t"}, tlsArgs...)...)
		if !regexp.MustCompile(fmt.Sprintf(`\|\s+%d\s+\|`, acked)).MatchString(out) {
			t.Fatalf("shell over HTTPS printed:\n%s\nwant the count %d", out, acked)
		}
		backupFile := filepath.Join(t.TempDir(), "backup.sql")
		runTool(t, append([]string{"backup", "-H", follower.httpAddr, "-fmt", "sql", "-o", backupFile}, tlsArgs...)...)
		runTool(t, append([]string{"check", "-H", follower.httpAddr, "-timeout", "30s"}, tlsArgs...)...)
		// Without the client certificate the shell is refused.
		cmd := exec.Command(binary, "shell", "-H", follower.httpAddr, "-ca-cert", p.caFile, "-timeout", "2s", "-c", "SELECT 1")
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Fatalf("shell without a client certificate succeeded:\n%s", out)
		}
	})
	t.Run("the Raft port refuses a plaintext peer", func(t *testing.T) {
		from := follower.logSize()
		conn, err := net.DialTimeout("tcp", follower.raftAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// The cluster service's header byte and a request, in the clear.
		fmt.Fprintf(conn, "CPOST /cluster/v1/notify HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		reply, _ := io.ReadAll(conn)
		if bytes.Contains(reply, []byte("HTTP/")) {
			t.Fatalf("plaintext peer got an answer: %q", reply)
		}
		follower.waitLog(t, from, waitTimeout, regexp.MustCompile(`TLS handshake failed.*first record does not look like a TLS handshake`))
	})
	t.Run("a node with another CA's certificate cannot join", func(t *testing.T) {
		other := newPKI(t, "other")
		// It trusts the cluster's CA, so the refusal is the cluster's.
		joiner := c.addJoiner("stranger", "stranger", c.nodes[0])
		joiner.args = tlsNodeArgs(t, joiner.args, "stranger", p, other, p.caFile)
		froms := map[*node]int64{}
		for _, n := range c.nodes {
			froms[n] = n.logSize()
		}
		joiner.start(t)
		defer joiner.shutdown()
		m, end := joiner.waitLog(t, 0, waitTimeout, regexp.MustCompile(`join attempt failed: TLS refused.*remote error: tls.*`))
		t.Logf("the stranger logs: %s", m[0])
		joiner.waitLog(t, end, waitTimeout, regexp.MustCompile(`join attempt failed: TLS refused`))
		refusal := regexp.MustCompile(`TLS handshake failed.*certificate signed by unknown authority.*`)
		var refusedBy []string
		for _, n := range c.nodes[:3] {
			if m, _ := n.findInLog(froms[n], refusal); m != nil {
				refusedBy = append(refusedBy, n.name)
				t.Logf("%s logs: %s", n.name, m[0])
			}
		}
		if len(refusedBy) == 0 {
			t.Fatal("no member logged why it refused the stranger")
		}
		t.Logf("refusal logged by %v", refusedBy)
		members, err := leader.members()
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := members["stranger"]; ok || len(members) != 3 {
			t.Fatalf("members %v: the stranger must never be one", members)
		}
		waitReadyz(t, http.StatusServiceUnavailable, joiner)
		joiner.kill(t)
	})
	t.Run("rotation", func(t *testing.T) {
		rotated := c.nodes[0]
		before := peerCertificate(t, trusted, rotated.httpAddr)
		h := p.ca.Issue(t, "http-"+rotated.name+"-renewed", "127.0.0.1")
		h.Write(t, p.dir, "http-"+rotated.name)
		n := p.ca.Issue(t, "node-"+rotated.name+"-renewed", "127.0.0.1")
		n.Write(t, p.dir, "node-"+rotated.name)
		if got := peerCertificate(t, trusted, rotated.httpAddr); !got.Equal(h.Cert) || got.Equal(before) {
			t.Fatalf("HTTPS after rotation presents serial %v, want the new %v", got.SerialNumber, h.Cert.SerialNumber)
		}
		// The Raft port: a node's TLS connection, header byte inside.
		nodeTLS := &tls.Config{RootCAs: p.ca.Pool(), Certificates: []tls.Certificate{n.TLSCertificate(t)}}
		if got := peerCertificate(t, nodeTLS, rotated.raftAddr); !got.Equal(n.Cert) {
			t.Fatalf("Raft port after rotation presents serial %v, want the new %v", got.SerialNumber, n.Cert.SerialNumber)
		}
		acked = writeThroughEach(t, []*node{rotated}, acked)
	})
	t.Run("failover", func(t *testing.T) {
		old := c.waitLeader()
		old.kill(t)
		if l := c.waitLeader(); l == old {
			t.Fatalf("killed %s still leads", old.name)
		}
		acked = writeThroughEach(t, c.serving(), acked)
		old.start(t)
		waitReady(t, old)
		waitIdentical(t, acked, c.nodes[:3]...)
	})
}

// httpsGet does a GET with its own transport using cfg, returning the
// status or the connection's failure.
func httpsGet(cfg *tls.Config, url string) (int, error) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// peerCertificate makes a new TLS connection to addr and returns the
// certificate the server presented. On the Raft port it also sends a
// header byte so that the server's side completes.
func peerCertificate(t *testing.T, cfg *tls.Config, addr string) *x509.Certificate {
	t.Helper()
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		t.Fatalf("TLS to %s: %v", addr, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// runTool runs a raftlite subcommand, failing the test unless it exits 0,
// and returns its combined output.
func runTool(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("raftlite %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
