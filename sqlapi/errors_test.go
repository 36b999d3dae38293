package sqlapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

// TestEveryErrorIsJSONWithCode walks the API's error paths (routing, auth,
// parameters, bodies, missing leader, forwarding loops, unsupported
// endpoints, cluster operations, panics, stale reads) and checks that each
// answers JSON with a machine-readable code. /readyz is the one plain-text
// exception: its format is rqlite's.
func TestEveryErrorIsJSONWithCode(t *testing.T) {
	auth, err := ParseAuth(strings.NewReader(`[{"username":"u","password":"p","perms":["all"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	_, authed := newTestServer(t, leaderStore(), func(c *Config) { c.Auth = auth })
	panicking := leaderStore()
	panicking.queryFn = func(context.Context, *api.Request) ([]api.Result, error) { panic("boom") }
	_, broken := newTestServer(t, panicking, nil)
	_, leader := newTestServer(t, leaderStore(), func(c *Config) { c.MaxBodyBytes = 64 })
	_, leaderless := newTestServer(t, &fakeStore{}, func(c *Config) { c.LeaderWait = 20 * time.Millisecond })
	// A follower that takes a dead address for the leader's.
	_, lost := newTestServer(t, &fakeStore{leaderID: "2", leaderAPI: "http://127.0.0.1:1"}, func(c *Config) { c.LeaderWait = 20 * time.Millisecond })

	cases := []struct {
		name, method, url, body string
		hdr                     []string
		status                  int
		code                    string
	}{
		{"unknown path", "GET", leader.URL + "/nope", "", nil, 404, "not_found"},
		{"no credentials", "GET", authed.URL + "/status", "", nil, 401, "unauthorized"},
		{"wrong method", "PUT", leader.URL + "/db/execute", "", nil, 405, "method_not_allowed"},
		{"bad parameter", "GET", leader.URL + "/db/query?q=SELECT+1&timeout=soon", "", nil, 400, "bad_request"},
		{"bad body", "POST", leader.URL + "/db/execute", "nope", nil, 400, "bad_request"},
		{"body too large", "POST", leader.URL + "/db/execute", `["` + strings.Repeat("x", 100) + `"]`, nil, 413, "request_too_large"},
		{"queue with a session", "POST", leader.URL + "/db/execute?queue&client_id=a&seq=1", `["X"]`, nil, 400, "bad_request"},
		{"no leader: write", "POST", leaderless.URL + "/db/execute", `["X"]`, nil, 503, "no_leader"},
		{"no leader: GET /leader", "GET", leaderless.URL + "/leader", "", nil, 503, "no_leader"},
		{"not leader: forwarded to a follower", "POST", lost.URL + "/db/execute", `["X"]`, []string{forwardedHeader, "1"}, 503, "not_leader"},
		{"leader unreachable", "POST", lost.URL + "/db/execute", `["X"]`, nil, 502, "forward_failed"},
		{"stale read", "GET", lost.URL + "/db/query?q=SELECT+1&level=none&freshness=1s", "", nil, 503, "stale_read"},
		{"remove: bad body", "DELETE", leader.URL + "/remove", `{}`, nil, 400, "bad_request"},
		{"remove: unknown node", "DELETE", leader.URL + "/remove", `{"id":"unknown"}`, nil, 404, "not_found"},
		{"step down: bad body", "POST", leader.URL + "/leader", `{"id":3}`, nil, 400, "bad_request"},
		{"panic", "GET", broken.URL + "/db/query?q=SELECT+1", "", nil, 500, "internal_error"},
	}
	for _, tc := range cases {
		code, hdr, body := do(t, tc.method, tc.url, "", tc.body, tc.hdr...)
		var answer struct {
			Error string `json:"error"`
			Code  string `json:"code"`
		}
		if code != tc.status || hdr.Get("Content-Type") != contentTypeJSON ||
			json.Unmarshal([]byte(body), &answer) != nil || answer.Code != tc.code || answer.Error == "" {
			t.Errorf("%s: %d %q %q, want %d JSON with code %s", tc.name, code, hdr.Get("Content-Type"), body, tc.status, tc.code)
		}
	}
}
