package sqlapi

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testCreds = `[
  {"username": "admin", "password": "secret", "perms": ["all"]},
  {"username": "reader", "password": "r", "perms": ["query", "status"]},
  {"username": "*", "perms": ["ready", "status"]},
  {"username": "hashed", "password": "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", "perms": ["all"]}
]`

func TestAuthAllowed(t *testing.T) {
	a, err := ParseAuth(strings.NewReader(testCreds))
	if err != nil {
		t.Fatal(err)
	}
	if !a.HasBcrypt() {
		t.Fatal("bcrypt hash not noticed")
	}
	tests := []struct {
		user, pw string
		ok       bool
		perms    []string
		want     bool
	}{
		{"admin", "secret", true, []string{PermExecute, PermQuery}, true},
		{"admin", "wrong", true, []string{PermExecute}, false},
		{"reader", "r", true, []string{PermQuery}, true},
		{"reader", "r", true, []string{PermExecute}, false},
		{"reader", "r", true, []string{PermQuery, PermExecute}, false},
		{"", "", false, []string{PermReady}, true},
		{"", "", false, []string{PermQuery}, false},
		{"nobody", "x", true, []string{PermStatus}, true}, // anonymous perm
		{"*", "", true, []string{PermQuery}, false},
	}
	for _, tt := range tests {
		if got := a.Allowed(tt.user, tt.pw, tt.ok, tt.perms...); got != tt.want {
			t.Errorf("Allowed(%q, %q, %v) = %v, want %v", tt.user, tt.pw, tt.perms, got, tt.want)
		}
	}
	var none *Auth
	if !none.Allowed("", "", false, PermAll) {
		t.Fatal("nil Auth must allow everything")
	}
}

func TestLoadAuthFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(path, []byte(testCreds), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthFile(path); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAuthFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Fatal("missing file accepted")
	}
	if _, err := ParseAuth(strings.NewReader(`{"username": "x"}`)); err == nil {
		t.Fatal("non-array accepted")
	}
	if _, err := ParseAuth(strings.NewReader(`[{"password": "x"}]`)); err == nil {
		t.Fatal("credential without username accepted")
	}
}

func TestAuthOverHTTP(t *testing.T) {
	a, err := ParseAuth(strings.NewReader(testCreds))
	if err != nil {
		t.Fatal(err)
	}
	p := newPair(t, func(c *Config) { c.Auth = a })
	basic := func(u, pw string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, pw)
		return r.Header.Get("Authorization")
	}
	cases := []struct {
		method, path, body, auth string
		status                   int
	}{
		{"POST", "/db/execute", `["X"]`, "", 401},
		{"POST", "/db/execute", `["X"]`, basic("admin", "wrong"), 401},
		{"POST", "/db/execute", `["X"]`, basic("reader", "r"), 401},
		{"POST", "/db/execute", `["X"]`, basic("admin", "secret"), 200},
		{"GET", "/db/query?q=SELECT+1", "", basic("reader", "r"), 200},
		{"POST", "/db/request", `["SELECT 1"]`, basic("reader", "r"), 401},
		{"GET", "/readyz", "", "", 200},
		{"GET", "/status", "", "", 200},
		{"GET", "/nodes", "", "", 200},
		{"DELETE", "/remove", `{"id":"2"}`, basic("reader", "r"), 401},
		{"POST", "/leader", ``, basic("reader", "r"), 401},
		{"POST", "/promote", `{"id":"2"}`, basic("reader", "r"), 401},
		{"GET", "/nope", "", "", 404},
	}
	for _, c := range cases {
		var hdr []string
		if c.auth != "" {
			hdr = []string{"Authorization", c.auth}
		}
		code, h, body := do(t, c.method, p.followerTS.URL+c.path, "", c.body, hdr...)
		if code != c.status {
			t.Errorf("%s %s auth=%q: %d %q, want %d", c.method, c.path, c.auth, code, body, c.status)
		}
		if code == 401 && h.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", c.method, c.path)
		}
	}
	// The forwarded write carried the credentials and the leader checked them.
	p.leaderRec.mu.Lock()
	defer p.leaderRec.mu.Unlock()
	seen := false
	for _, in := range p.leaderRec.reqs {
		if in.URL.Path == "/db/execute" && in.Header.Get("Authorization") == basic("admin", "secret") {
			seen = true
		}
	}
	if !seen {
		t.Fatalf("leader did not see the credentials")
	}
}
