package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck: exit 0 when /readyz answers 200, 1 with the node's
// answer on stderr when it answers 503, and 1 when nothing answers; -noleader
// asks /readyz?noleader.
func TestHealthcheck(t *testing.T) {
	ready := true
	var asked string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked = r.URL.RequestURI()
		if !ready {
			http.Error(w, "[+]node ok\n[-]leader not ok", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("[+]node ok\n[+]leader ok\n[+]store ok\n[+]db ok\n"))
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	check := func(want int, wantErr string, args ...string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if got := run(append([]string{"healthcheck"}, args...), &stdout, &stderr); got != want || !strings.Contains(stderr.String(), wantErr) {
			t.Fatalf("healthcheck %q: exit %d, stderr %q; want %d and %q", args, got, stderr.String(), want, wantErr)
		}
	}
	check(0, "", "-H", host)
	if asked != "/readyz" {
		t.Fatalf("asked %s", asked)
	}
	check(0, "", "-H", host, "-noleader")
	if asked != "/readyz?noleader" {
		t.Fatalf("asked %s", asked)
	}
	ready = false
	check(1, "HTTP 503", "-H", host)
	srv.Close()
	check(1, "not ready", "-H", host)
}
