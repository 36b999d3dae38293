package httpx

import (
	"context"
	"crypto/tls"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestTransportDefaultsAndOverrides(t *testing.T) {
	d := newTransport(Options{})
	if d.MaxIdleConns != DefaultMaxIdleConns || d.MaxIdleConnsPerHost != DefaultMaxIdleConnsPerHost ||
		d.IdleConnTimeout != DefaultIdleConnTimeout || d.ResponseHeaderTimeout != 0 {
		t.Errorf("defaults: idle %d/%d for %v, header timeout %v", d.MaxIdleConns, d.MaxIdleConnsPerHost, d.IdleConnTimeout, d.ResponseHeaderTimeout)
	}
	if d.Proxy != nil || !d.DisableCompression || d.TLSClientConfig != nil {
		t.Errorf("defaults: proxy set %v, compression off %v, TLS %v", d.Proxy != nil, d.DisableCompression, d.TLSClientConfig)
	}
	o := newTransport(Options{MaxIdleConns: 2, MaxIdleConnsPerHost: 1, IdleConnTimeout: time.Second,
		ResponseHeaderTimeout: 3 * time.Second, ProxyFromEnvironment: true})
	if o.MaxIdleConns != 2 || o.MaxIdleConnsPerHost != 1 || o.IdleConnTimeout != time.Second ||
		o.ResponseHeaderTimeout != 3*time.Second || o.Proxy == nil {
		t.Errorf("overrides not applied: %+v", o)
	}
}

// TestClientDoesNotFollowRedirects: a follower's 301 must reach the caller.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") != "" {
			t.Errorf("Accept-Encoding %q sent; compression must be off", r.Header.Get("Accept-Encoding"))
		}
		http.Redirect(w, r, "/elsewhere", http.StatusMovedPermanently)
	}))
	defer srv.Close()
	hc := NewClient(Options{})
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(srv.URL + "/db/query")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("status %d, want 301 handed back", resp.StatusCode)
	}
}

func TestClientUsesDialAndTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var dials atomic.Int32
	hc := NewClient(Options{
		Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
		TLS: srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone(),
	})
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if dials.Load() != 1 || resp.TLS == nil {
		t.Fatalf("dials %d, TLS state %v; want the given dialer and a TLS connection", dials.Load(), resp.TLS)
	}
	if v := resp.TLS.Version; v < tls.VersionTLS12 {
		t.Fatalf("TLS version %x", v)
	}
}

// TestOnlyHTTPXBuildsTransports keeps this package the one place that
// configures HTTP clients: no other non-test file of the module may write
// an http.Transport or http.Client literal.
func TestOnlyHTTPXBuildsTransports(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	here, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && path != root || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || filepath.Dir(path) == here {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.CompositeLit)
			if !ok {
				return true
			}
			sel, ok := lit.Type.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if x, ok := sel.X.(*ast.Ident); ok && x.Name == "http" && (sel.Sel.Name == "Transport" || sel.Sel.Name == "Client") {
				t.Errorf("%s: http.%s literal; build it with internal/httpx", fset.Position(lit.Pos()), sel.Sel.Name)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
