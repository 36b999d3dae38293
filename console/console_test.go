package console

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestHandlerServesFiles: the page, its script and its style come from
// the embedded files with their content types and the headers that keep
// the page to its own files; /console redirects to /console/.
func TestHandlerServesFiles(t *testing.T) {
	h := Handler()
	for path, wantType := range map[string]string{
		"/console/":          "text/html",
		"/console/app.js":    "text/javascript",
		"/console/style.css": "text/css",
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), wantType) {
			t.Errorf("GET %s: %d %q, want 200 %s", path, rec.Code, rec.Header().Get("Content-Type"), wantType)
		}
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/console", nil))
	if rec.Code != http.StatusMovedPermanently || rec.Header().Get("Location") != "/console/" {
		t.Errorf("GET /console: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/console/nope.js", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("GET /console/nope.js: %d", rec.Code)
	}
}

// TestWorksOffline: no file of the console refers to another host (no
// CDN, no web font), so it works where the node has no Internet.
func TestWorksOffline(t *testing.T) {
	external := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}|@import\s+url`)
	n := 0
	err := fs.WalkDir(files, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		n++
		raw, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		if m := external.Find(raw); m != nil {
			t.Errorf("%s refers to another host: %q", path, m)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Fatalf("only %d embedded files", n)
	}
}
