package sqlapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestStarting checks what a starting node answers: 503 JSON with code
// "starting" everywhere, the phase and its details on /readyz and /status
// (to those allowed to see them), the shape of a request-level failure on
// /db/*, and, once started, the API's own answers.
func TestStarting(t *testing.T) {
	auth, err := ParseAuth(strings.NewReader(`[{"username": "ops", "password": "o", "perms": ["status", "ready"]}]`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Version: "v-test", Logger: quietLogger(), Auth: auth}
	gate := NewStarting(cfg, func() StartupProgress {
		return StartupProgress{Phase: "scanning raft log", Details: map[string]any{"log_entries_scanned": 7}}
	})
	ts := httptest.NewServer(gate)
	defer ts.Close()
	ops := []string{"Authorization", basicAuth("ops", "o")}

	cases := []struct {
		method, path string
		hdr          []string
		status       int
		detailed     bool // carries "starting" with the phase
		results      bool // carries "results": []
	}{
		{"GET", "/readyz", ops, 503, true, false},
		{"GET", "/status", ops, 503, true, false},
		{"GET", "/status", nil, 401, false, false},
		{"POST", "/db/execute", nil, 503, false, true},
		{"GET", "/db/query?q=SELECT+1", nil, 503, false, true},
		{"GET", "/nodes", nil, 503, false, false},
	}
	for _, c := range cases {
		code, h, body := do(t, c.method, ts.URL+c.path, "", "", c.hdr...)
		if code != c.status {
			t.Errorf("%s %s: %d %s, want %d", c.method, c.path, code, body, c.status)
			continue
		}
		if code == http.StatusUnauthorized && (h.Get("WWW-Authenticate") == "" || !strings.Contains(body, `"code":"unauthorized"`)) {
			t.Errorf("%s %s: 401 without WWW-Authenticate or the JSON code: %s", c.method, c.path, body)
		}
		if code != 503 {
			continue
		}
		var got struct {
			Results  []any
			Error    string
			Code     string
			Starting map[string]any
		}
		if err := json.Unmarshal([]byte(body), &got); err != nil || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Errorf("%s %s: not a JSON answer (%v): %s", c.method, c.path, err, body)
			continue
		}
		if got.Code != "starting" || !strings.Contains(got.Error, "scanning raft log") {
			t.Errorf("%s %s: code %q error %q, want code starting and the phase", c.method, c.path, got.Code, got.Error)
		}
		if c.detailed && (got.Starting["phase"] != "scanning raft log" || got.Starting["log_entries_scanned"] != float64(7)) {
			t.Errorf("%s %s: starting = %v, want the phase and its details", c.method, c.path, got.Starting)
		}
		if !c.detailed && got.Starting != nil {
			t.Errorf("%s %s: details given: %s", c.method, c.path, body)
		}
		if c.results != strings.Contains(body, `"results":[]`) {
			t.Errorf("%s %s: results present = %v, want %v: %s", c.method, c.path, !c.results, c.results, body)
		}
	}

	api := New(cfg, &fakeStore{leader: true, leaderID: "1", leaderAPI: ts.URL})
	defer api.Close()
	gate.Started(api)
	if code, _, body := do(t, "GET", ts.URL+"/readyz", "", "", ops...); code != http.StatusOK {
		t.Errorf("/readyz once started: %d %s, want 200", code, body)
	}
}

func basicAuth(user, password string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}
