package sqlapi

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

func TestSnapshotEndpoint(t *testing.T) {
	p := newPair(t, nil)
	// Local, not forwarded: every node compacts its own log.
	if code, _, body := do(t, "POST", p.followerTS.URL+"/snapshot?trailing=5", "", ""); code != 200 || body != "" {
		t.Fatalf("POST /snapshot?trailing=5: %d %q", code, body)
	}
	if code, _, body := do(t, "POST", p.leaderTS.URL+"/snapshot", "", ""); code != 200 {
		t.Fatalf("POST /snapshot: %d %q", code, body)
	}
	if len(p.follower.trailings) != 1 || p.follower.trailings[0] != 5 || len(p.leader.trailings) != 1 || p.leader.trailings[0] != 0 {
		t.Fatalf("trailing: follower %v, leader %v", p.follower.trailings, p.leader.trailings)
	}
	if code, _, body := do(t, "POST", p.leaderTS.URL+"/snapshot?trailing=x", "", ""); code != 400 || !strings.Contains(body, `"code":"bad_request"`) {
		t.Fatalf("bad trailing: %d %q", code, body)
	}
	if code, _, _ := do(t, "GET", p.leaderTS.URL+"/snapshot", "", ""); code != 405 {
		t.Fatalf("GET /snapshot: %d", code)
	}
}

func TestReapEndpoint(t *testing.T) {
	p := newPair(t, nil)
	p.leader.unreachable = []api.ReapedMember{{ID: "3", Voter: true, Unreachable: 2500 * time.Millisecond}}
	// By default a member must have been unreachable for 10 s.
	if code, _, body := do(t, "POST", p.followerTS.URL+"/reap", "", ""); code != 200 || body != `{"reaped":[]}` {
		t.Fatalf("POST /reap of a member unreachable for 2.5s: %d %s, want none reaped", code, body)
	}
	for _, bad := range []string{"x", "-1s"} {
		if code, _, body := do(t, "POST", p.followerTS.URL+"/reap?min_unreachable="+bad, "", ""); code != 400 || !strings.Contains(body, `"code":"bad_request"`) {
			t.Fatalf("min_unreachable=%s: %d %s", bad, code, body)
		}
	}
	// A follower forwards to the leader, which reaps.
	code, _, body := do(t, "POST", p.followerTS.URL+"/reap?min_unreachable=2s", "", "")
	if want := `{"reaped":[{"id":"3","voter":true,"unreachable":2.5,"unreachable_s":"2.5s"}]}`; code != 200 || body != want {
		t.Fatalf("POST /reap: %d %s, want %s", code, body, want)
	}
	if code, _, body := do(t, "POST", p.leaderTS.URL+"/reap", "", ""); code != 200 || body != `{"reaped":[]}` {
		t.Fatalf("POST /reap with nothing to reap: %d %s", code, body)
	}
	if want := []time.Duration{DefaultReapMinUnreachable, 2 * time.Second, DefaultReapMinUnreachable}; fmt.Sprint(p.leader.reapMins) != fmt.Sprint(want) {
		t.Fatalf("minimums the leader was asked for: %v, want %v", p.leader.reapMins, want)
	}
}

func TestBootEndpoint(t *testing.T) {
	p := newPair(t, nil)
	if code, _, body := do(t, "POST", p.followerTS.URL+"/boot", "application/octet-stream", "not a database"); code != 400 ||
		!strings.Contains(body, "invalid SQLite data") {
		t.Fatalf("boot with text: %d %s", code, body)
	}
	file := string(sqliteHeader) + "pages"
	if code, _, body := do(t, "POST", p.followerTS.URL+"/boot", "application/octet-stream", file); code != 200 || body != "" {
		t.Fatalf("boot: %d %q", code, body)
	}
	if string(p.follower.booted) != file || p.leader.booted != nil {
		t.Fatalf("booted %q on the follower, %q on the leader: boot is local", p.follower.booted, p.leader.booted)
	}
	p.follower.members = []api.Member{{ID: "1"}, {ID: "2"}}
	if code, _, body := do(t, "POST", p.followerTS.URL+"/boot", "application/octet-stream", file); code != 400 ||
		!strings.Contains(body, "not single-node") {
		t.Fatalf("boot of a node in a larger cluster: %d %s", code, body)
	}
}

// Each operation needs rqlite's permission: snapshot, remove (reap), load
// (boot).
func TestOperationsPermissions(t *testing.T) {
	creds := `[{"username":"snap","password":"p","perms":["snapshot"]},
		{"username":"rm","password":"p","perms":["remove"]},
		{"username":"ld","password":"p","perms":["load"]}]`
	p := newPair(t, func(c *Config) {
		a, err := ParseAuth(strings.NewReader(creds))
		if err != nil {
			t.Fatal(err)
		}
		c.Auth = a
	})
	file := string(sqliteHeader)
	for path, user := range map[string]string{"/snapshot": "snap", "/reap": "rm", "/boot": "ld"} {
		for _, u := range []string{"snap", "rm", "ld"} {
			code, _, body := do(t, "POST", p.leaderTS.URL+path, "", file, "Authorization", basicAuth(u, "p"))
			if (u == user) != (code != 401) {
				t.Errorf("POST %s as %s: %d %s", path, u, code, body)
			}
		}
	}
}
