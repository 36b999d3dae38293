package sqlapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

const testCreds = `[
  {"username": "admin", "password": "secret", "perms": ["all"]},
  {"username": "reader", "password": "r", "perms": ["query", "status"]},
  {"username": "*", "perms": ["ready", "status"]}
]`

// bcryptHash hashes password at bcrypt's lowest cost (the tests need the
// format, not the strength).
func bcryptHash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func mustParseAuth(t *testing.T, creds string) *Auth {
	t.Helper()
	a, err := ParseAuth(strings.NewReader(creds))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// login is a password tried for a user, and whether it should pass.
type login struct {
	user, password string
	want           bool
}

// checkLogins tries each login in turn.
func checkLogins(t *testing.T, a *Auth, logins []login) {
	t.Helper()
	for _, l := range logins {
		u := a.users[l.user]
		if got := u != nil && a.verify(u, l.password); got != l.want {
			t.Errorf("%s with %q: %v, want %v", l.user, l.password, got, l.want)
		}
	}
}

// TestRqliteHashedCredentials loads the credentials rqlite's own test of
// hashed passwords loads (testdata/auth/rqlite_hashed.txt) and expects
// rqlite's answers, except that the hash itself is no password here.
func TestRqliteHashedCredentials(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "auth", "rqlite_hashed.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var file []string
	for _, line := range strings.Split(string(raw), "\n") {
		if !strings.HasPrefix(line, "#") {
			file = append(file, line)
		}
	}
	a := mustParseAuth(t, strings.Join(file, "\n"))
	if len(a.Warnings()) != 0 {
		t.Errorf("warnings for rqlite's file: %q", a.Warnings())
	}
	hash := "$2a$10$fKRHxrEuyDTP6tXIiDycr.nyC8Q7UMIfc31YMyXHDLgRDyhLK3VFS"
	checkLogins(t, a, []login{
		{"username1", "password1", true},
		{"username2", "password2", true},
		{"username1", "wrong", false},
		{"username2", "wrong", false},
		{"username1", hash, false}, // rqlite: true; see Auth
		{"username2", "password1", false},
		{"nobody", "password1", false},
	})
}

// TestPasswords: every bcrypt prefix rqlite's files may hold verifies;
// plain text still works; a verified password is remembered without
// admitting any other; doubtful entries are reported.
func TestPasswords(t *testing.T) {
	hashed := bcryptHash(t, "s3cret")
	creds := fmt.Sprintf(`[
		{"username": "a", "password": %q, "perms": ["query"]},
		{"username": "b", "password": %q, "perms": ["query"]},
		{"username": "y", "password": %q, "perms": ["query"]},
		{"username": "plain", "password": "pl41n", "perms": ["query", "reed"]},
		{"username": "empty", "password": "", "perms": ["query"]},
		{"username": "broken", "password": "$2a$10$short", "perms": ["query"]},
		{"username": "plain", "password": "again", "perms": ["query"]}
	]`, hashed, "$2b$"+hashed[4:], "$2y$"+hashed[4:])
	a := mustParseAuth(t, creds)
	checkLogins(t, a, []login{
		{"a", "s3cret", true},
		{"b", "s3cret", true},
		{"y", "s3cret", true},
		{"a", "s3cret ", false},
		{"a", "", false},
		{"a", hashed, false},
		{"a", "s3cret", true}, // now from memory
		{"a", "S3cret", false},
		{"plain", "again", true}, // the last entry counts
		{"plain", "pl41n", false},
		{"empty", "", true},
		{"empty", "x", false},
		{"broken", "$2a$10$short", true},
	})
	if a.users["a"].verified.Load() == nil || a.users["plain"].hash != nil {
		t.Error("a's bcrypt verification not remembered, or plain text taken for a hash")
	}
	warnings := strings.Join(a.Warnings(), "\n")
	for _, want := range []string{`"reed"`, `user "plain" is listed more than once`, `user "broken" looks like a bcrypt hash`} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %s:\n%s", want, warnings)
		}
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

// futureEndpoints are the rows of endpointAccess for endpoints other
// parts of issue 16 are adding: until their routes exist, only their
// authorization decision is tested.
var futureEndpoints = []string{"/db/watch", "/boot", "/snapshot", "/reap", "/promote"}

// principal is one kind of caller of the table test.
type principal struct {
	name     string
	user, pw string
	creds    bool
	// allowed: whether rqlite's rules let it in, given that "*" holds
	// ready and nothing else.
	allowed func(need access) bool
}

// TestEveryEndpointPermission: every row of endpointAccess, every method,
// asked by an anonymous caller, a wrong password, a user holding exactly
// the permission (bcrypt-hashed) and a user holding every other one,
// with "*" holding ready as rqlite allows. A refusal is 401 with
// WWW-Authenticate and the JSON code; an admission gets exactly the answer
// the same request gets from the API without auth.
func TestEveryEndpointPermission(t *testing.T) {
	var creds []credential
	creds = append(creds, credential{Username: anonymousUser, Perms: []string{PermReady}})
	holder := func(need access) string { return "has-" + strings.ReplaceAll(need.String(), " ", "-") }
	lacker := func(need access) string { return "lacks-" + strings.ReplaceAll(need.String(), " ", "-") }
	seen := map[string]bool{}
	for _, r := range endpointAccess {
		if seen[r.need.String()] {
			continue
		}
		seen[r.need.String()] = true
		// The lacker holds every permission but the needed ones; for a
		// need of several together, it holds all but the last of them.
		missing := r.need.perms
		if r.need.all {
			missing = missing[len(missing)-1:]
		}
		var others []string
		for p := range knownPerms {
			if p != PermAll && !slices.Contains(missing, p) {
				others = append(others, p)
			}
		}
		sort.Strings(others)
		creds = append(creds,
			credential{Username: holder(r.need), Password: bcryptHash(t, "pw-"+holder(r.need)), Perms: r.need.perms},
			credential{Username: lacker(r.need), Password: "pw-" + lacker(r.need), Perms: others})
	}
	raw, err := json.Marshal(creds)
	if err != nil {
		t.Fatal(err)
	}
	a := mustParseAuth(t, string(raw))
	a.limiter = newLoginLimiter(1000, 1000, time.Minute) // this test fails logins on purpose
	anonymousMay := func(need access) bool { return need.public || (!need.all && slices.Contains(need.perms, PermReady)) }
	callers := []principal{
		{"anonymous", "", "", false, anonymousMay},
		{"wrong password", "", "nope", true, anonymousMay}, // user: the holder
		{"holder", "", "", true, func(access) bool { return true }},
		{"lacker", "", "", true, anonymousMay},
	}

	authed := New(Config{Logger: quietLogger(), Auth: a, LeaderWait: 10 * time.Millisecond}, leaderStore())
	open := New(Config{Logger: quietLogger(), LeaderWait: 10 * time.Millisecond}, leaderStore())
	t.Cleanup(func() { authed.Close(); open.Close() })

	serve := func(s *Server, method, path string, set func(*http.Request)) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(`["SELECT 1"]`))
		if set != nil {
			set(req)
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}
	checked := 0
	for _, r := range endpointAccess {
		routed := authed.routes[r.path] != nil
		if !routed && !slices.Contains(futureEndpoints, r.path) {
			t.Errorf("%s has a permission but no route, and is not a known future endpoint", r.path)
		}
		for _, method := range r.methods {
			for _, c := range callers {
				user, pw := c.user, c.pw
				switch c.name {
				case "wrong password":
					user = holder(r.need)
				case "holder":
					user, pw = holder(r.need), "pw-"+holder(r.need)
				case "lacker":
					user, pw = lacker(r.need), "pw-"+lacker(r.need)
				}
				setCreds := func(req *http.Request) {
					if c.creds {
						req.SetBasicAuth(user, pw)
					}
				}
				want := c.allowed(r.need)
				what := fmt.Sprintf("%s %s (needs %s) as %s", method, r.path, r.need, c.name)
				req := httptest.NewRequest(method, r.path, nil)
				setCreds(req)
				if d := a.authorize(req, r.need, quietLogger()); (d.status == 0) != want {
					t.Errorf("%s: decision %d %q, want allowed=%v", what, d.status, d.msg, want)
				}
				if !routed {
					continue
				}
				checked++
				got := serve(authed, method, r.path, setCreds)
				if !want {
					var body struct{ Code string }
					if got.Code != http.StatusUnauthorized || got.Header().Get("WWW-Authenticate") == "" ||
						json.Unmarshal(got.Body.Bytes(), &body) != nil || body.Code != "unauthorized" {
						t.Errorf("%s: %d %v %s, want 401 with WWW-Authenticate and code unauthorized", what, got.Code, got.Header(), got.Body)
					}
					continue
				}
				if plain := serve(open, method, r.path, nil); got.Code != plain.Code {
					t.Errorf("%s: %d %s, want %d as without auth (%s)", what, got.Code, got.Body, plain.Code, plain.Body)
				}
			}
		}
	}
	if checked < 4*len(authed.routes) {
		t.Fatalf("only %d HTTP checks for %d routes", checked, len(authed.routes))
	}
}

// TestPermissionTableDocumented: docs/API.md shows endpointAccess as it is.
func TestPermissionTableDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "API.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), accessTable()) {
		t.Fatalf("docs/API.md does not hold the permission table of endpointAccess; it should read:\n%s", accessTable())
	}
}

// TestFailedLoginsThrottled: after failedLoginsPerIP failures from one
// address, its requests get 429 with Retry-After (even with the right
// password, which is not checked) until the window has passed; other
// addresses are unaffected until the user has failedLoginsPerUser
// failures. Every failure is logged at WARN with the user and address,
// never the password, and reaching a limit once more.
func TestFailedLoginsThrottled(t *testing.T) {
	a := mustParseAuth(t, fmt.Sprintf(`[{"username": "ops", "password": %q, "perms": ["status"]}]`, bcryptHash(t, "right")))
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	a.limiter.now = func() time.Time { return clock }
	var logs bytes.Buffer // requests are served one at a time, on this goroutine
	s := New(Config{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Auth: a}, leaderStore())
	t.Cleanup(func() { s.Close() })
	status := func(ip, user, pw string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, "/status", nil)
		req.RemoteAddr = ip + ":5555"
		req.SetBasicAuth(user, pw)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		return rec
	}

	for i := range failedLoginsPerIP {
		if got := status("192.0.2.1", "ops", fmt.Sprintf("guess-%d", i)); got.Code != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d %s, want 401", i, got.Code, got.Body)
		}
		clock = clock.Add(time.Second)
	}
	got := status("192.0.2.1", "ops", "right")
	var body struct{ Code string }
	if got.Code != http.StatusTooManyRequests || got.Header().Get("Retry-After") != "50" ||
		json.Unmarshal(got.Body.Bytes(), &body) != nil || body.Code != "login_throttled" {
		t.Fatalf("right password after %d guesses: %d Retry-After=%q %s, want 429, 50 s, login_throttled",
			failedLoginsPerIP, got.Code, got.Header().Get("Retry-After"), got.Body)
	}
	if got := status("192.0.2.2", "ops", "right"); got.Code != http.StatusOK {
		t.Fatalf("another address: %d %s, want 200", got.Code, got.Body)
	}
	clock = clock.Add(50 * time.Second)
	if got := status("192.0.2.1", "ops", "right"); got.Code != http.StatusOK {
		t.Fatalf("after the window: %d %s, want 200", got.Code, got.Body)
	}

	out := logs.String()
	failed := regexp.MustCompile(`level=WARN msg="login failed" .*user=ops client=192\.0\.2\.1 `)
	if n := len(failed.FindAllString(out, -1)); n != failedLoginsPerIP {
		t.Errorf("%d failed-login warnings, want %d:\n%s", n, failedLoginsPerIP, out)
	}
	if strings.Count(out, "failed logins throttled") != 1 || strings.Contains(out, "guess-") || strings.Contains(out, "right") {
		t.Errorf("want one throttling warning and no password in the log:\n%s", out)
	}

	// One guess from each of many addresses: the user's limit.
	clock = clock.Add(failedLoginWindow)
	for i := range failedLoginsPerUser {
		if got := status(fmt.Sprintf("198.51.100.%d", i), "ops", "guess"); got.Code != http.StatusUnauthorized {
			t.Fatalf("spread guess %d: %d, want 401", i, got.Code)
		}
	}
	if got := status("203.0.113.9", "ops", "right"); got.Code != http.StatusTooManyRequests {
		t.Fatalf("right password after %d guesses for the user: %d, want 429", failedLoginsPerUser, got.Code)
	}
	// Unknown users are counted per address only.
	for i := range 3 * failedLoginsPerUser {
		status(fmt.Sprintf("10.0.%d.%d", i/200, i%200), fmt.Sprintf("nobody-%d", i), "x")
	}
	if len(a.limiter.users) != 1 {
		t.Errorf("per-user record holds %d users, want only ops", len(a.limiter.users))
	}
}

// TestLoginLimiterBoundsAddresses: the per-IP record never passes
// maxTrackedIPs; a sweep makes room once the old failures have left the
// window, and an untracked address is still held by the user's limit.
func TestLoginLimiterBoundsAddresses(t *testing.T) {
	l := newLoginLimiter(2, 3, time.Minute)
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l.now = func() time.Time { return clock }
	fail := func(ip, user string) time.Duration {
		wait, _ := l.attempt(ip, user)
		return wait
	}
	for i := range maxTrackedIPs {
		fail(fmt.Sprintf("ip-%d", i), "")
	}
	for range 3 {
		if wait := fail("late", "u"); wait != 0 || len(l.ips) != maxTrackedIPs {
			t.Fatalf("full record: late waits %v, %d addresses tracked", wait, len(l.ips))
		}
	}
	if wait := fail("late", "u"); wait != time.Minute {
		t.Fatalf("untracked address: user limit not applied: %v", wait)
	}
	clock = clock.Add(time.Minute + time.Second)
	fail("late", "")
	if len(l.ips) != 1 {
		t.Fatalf("after the window, %d addresses remain, want only the new one", len(l.ips))
	}
}

// TestConcurrentGuessesHeldToLimit: guesses sent all at once, before any
// has been answered, get no more password checks than failedLoginsPerIP.
func TestConcurrentGuessesHeldToLimit(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("right"), 8)
	if err != nil {
		t.Fatal(err)
	}
	a := mustParseAuth(t, fmt.Sprintf(`[{"username": "ops", "password": %q, "perms": ["status"]}]`, hash))
	s := New(Config{Logger: quietLogger(), Auth: a}, leaderStore())
	t.Cleanup(func() { s.Close() })
	const guesses = 3 * failedLoginsPerIP
	codes := make(chan int, guesses)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range guesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest(http.MethodGet, "/status", nil)
			req.SetBasicAuth("ops", fmt.Sprintf("guess-%d", i))
			rec := httptest.NewRecorder()
			<-start
			s.ServeHTTP(rec, req)
			codes <- rec.Code
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	if count[http.StatusUnauthorized] != failedLoginsPerIP || count[http.StatusTooManyRequests] != guesses-failedLoginsPerIP {
		t.Fatalf("%d concurrent guesses: %v, want %d checked (401) and the rest 429", guesses, count, failedLoginsPerIP)
	}
}

// TestAuthOverHTTP: a follower checks the credentials before it forwards a
// write, and the leader checks them again.
func TestAuthOverHTTP(t *testing.T) {
	a := mustParseAuth(t, testCreds)
	p := newPair(t, func(c *Config) { c.Auth = a })
	cases := []struct {
		method, path, body, auth string
		status                   int
	}{
		{"POST", "/db/execute", `["X"]`, "", 401},
		{"POST", "/db/execute", `["X"]`, basicAuth("admin", "wrong"), 401},
		{"POST", "/db/execute", `["X"]`, basicAuth("reader", "r"), 401},
		{"POST", "/db/execute", `["X"]`, basicAuth("admin", "secret"), 200},
		{"GET", "/db/query?q=SELECT+1", "", basicAuth("reader", "r"), 200},
		{"POST", "/db/request", `["SELECT 1"]`, basicAuth("reader", "r"), 401},
		{"GET", "/readyz", "", "", 200},
		{"GET", "/nope", "", "", 404},
	}
	for _, c := range cases {
		var hdr []string
		if c.auth != "" {
			hdr = []string{"Authorization", c.auth}
		}
		code, _, body := do(t, c.method, p.followerTS.URL+c.path, "", c.body, hdr...)
		if code != c.status {
			t.Errorf("%s %s auth=%q: %d %q, want %d", c.method, c.path, c.auth, code, body, c.status)
		}
	}
	p.leaderRec.mu.Lock()
	defer p.leaderRec.mu.Unlock()
	seen := false
	for _, in := range p.leaderRec.reqs {
		if in.URL.Path == "/db/execute" && in.Header.Get("Authorization") == basicAuth("admin", "secret") {
			seen = true
		}
	}
	if !seen {
		t.Fatalf("leader did not see the credentials")
	}
}
