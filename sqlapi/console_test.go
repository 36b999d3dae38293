package sqlapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// consoleStandIn plays package console's handler: it names the path it
// was asked for.
var consoleStandIn = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("console " + r.URL.Path))
})

// TestConsoleRouting: with -auth, the console's files are served without
// credentials (they hold no data) while the API still refuses; "/" sends a
// browser to the console and any other client to /status; a script's 401
// carries no WWW-Authenticate (the browser would show its own dialog);
// without a console, /console is 404 and "/" goes to /status.
func TestConsoleRouting(t *testing.T) {
	auth := mustParseAuth(t, `[{"username":"alice","password":"pw","perms":["all"]}]`)
	s := New(Config{Logger: quietLogger(), Auth: auth, Console: consoleStandIn, LeaderWait: 10 * time.Millisecond}, leaderStore())
	bare := New(Config{Logger: quietLogger(), LeaderWait: 10 * time.Millisecond}, leaderStore())
	t.Cleanup(func() { s.Close(); bare.Close() })

	do := func(h http.Handler, method, path string, header map[string]string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, nil)
		for k, v := range header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	for _, c := range []struct {
		name     string
		h        http.Handler
		method   string
		path     string
		header   map[string]string
		code     int
		location string
		body     string
		wwwAuth  bool
	}{
		{"console page, no credentials", s, "GET", "/console/", nil, 200, "", "console /console/", false},
		{"console file", s, "GET", "/console/app.js", nil, 200, "", "console /console/app.js", false},
		{"console without slash", s, "GET", "/console", nil, 200, "", "console /console", false},
		{"console HEAD", s, "HEAD", "/console/", nil, 200, "", "", false},
		{"console POST", s, "POST", "/console/", nil, 405, "", "", false},
		{"browser at /", s, "GET", "/", map[string]string{"Accept": "text/html,application/xhtml+xml"}, 302, "/console/", "", false},
		{"curl at /", s, "GET", "/", map[string]string{"Accept": "*/*"}, 302, "/status", "", false},
		{"JSON client at /", s, "GET", "/", map[string]string{"Accept": "application/json"}, 302, "/status", "", false},
		{"API without credentials", s, "GET", "/status", nil, 401, "", "", true},
		{"API from a script", s, "GET", "/status", map[string]string{"X-Requested-With": "XMLHttpRequest"}, 401, "", "", false},
		{"no console", bare, "GET", "/console/", nil, 404, "", "", false},
		{"browser at /, no console", bare, "GET", "/", map[string]string{"Accept": "text/html"}, 302, "/status", "", false},
	} {
		got := do(c.h, c.method, c.path, c.header)
		if got.Code != c.code {
			t.Errorf("%s: %s %s: %d %s, want %d", c.name, c.method, c.path, got.Code, got.Body, c.code)
			continue
		}
		if loc := got.Header().Get("Location"); loc != c.location {
			t.Errorf("%s: Location %q, want %q", c.name, loc, c.location)
		}
		if c.body != "" && got.Body.String() != c.body {
			t.Errorf("%s: body %q, want %q", c.name, got.Body, c.body)
		}
		if has := got.Header().Get("WWW-Authenticate") != ""; has != c.wwwAuth {
			t.Errorf("%s: WWW-Authenticate present %v, want %v", c.name, has, c.wwwAuth)
		}
	}
}

// TestConsoleWhileStarting: a starting node serves the console and sends
// a browser there; its API answers 503 starting as before.
func TestConsoleWhileStarting(t *testing.T) {
	gate := NewStarting(Config{Logger: quietLogger(), Console: consoleStandIn}, func() StartupProgress { return StartupProgress{Phase: "scanning raft log"} })
	rec := httptest.NewRecorder()
	gate.ServeHTTP(rec, httptest.NewRequest("GET", "/console/", nil))
	if rec.Code != 200 || rec.Body.String() != "console /console/" {
		t.Fatalf("GET /console/ while starting: %d %s", rec.Code, rec.Body)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept", "text/html")
	rec = httptest.NewRecorder()
	gate.ServeHTTP(rec, req)
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "/console/" {
		t.Fatalf("GET / from a browser while starting: %d %v", rec.Code, rec.Header())
	}
	rec = httptest.NewRecorder()
	gate.ServeHTTP(rec, httptest.NewRequest("GET", "/db/query?q=SELECT+1", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("GET /db/query while starting: %d %s", rec.Code, rec.Body)
	}
}
