package sqlapi

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/api"
)

func TestStatus(t *testing.T) {
	api, ts := newTestServer(t, leaderStore(), nil)
	code, hdr, body := do(t, "GET", ts.URL+"/status", "", "")
	if code != 200 || hdr.Get("Content-Type") != contentTypeJSON {
		t.Fatalf("%d %s", code, hdr.Get("Content-Type"))
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"store.raft.state", "store.raft.term", "store.node_id", "store.fsm_index",
		"store.sqlite3.fk_constraints", "store.leader.node_id", "http.bind_addr", "node.start_time", "node.uptime", "build.version"} {
		if v := subKey(st, key); v == nil {
			t.Errorf("/status lacks %s", key)
		} else if m, ok := v.(map[string]any); ok && len(m) == 0 {
			t.Errorf("/status lacks %s", key)
		}
	}
	if subKey(st, "http.bind_addr") != api.cfg.Addr || subKey(st, "build.version") != "v-test" {
		t.Fatalf("bind_addr/version: %v %v", subKey(st, "http.bind_addr"), subKey(st, "build.version"))
	}
	code, _, body = do(t, "GET", ts.URL+"/status?key=store.raft", "", "")
	if code != 200 || !strings.Contains(body, `"state":"Leader"`) || strings.Contains(body, "http") {
		t.Fatalf("?key=store.raft: %d %s", code, body)
	}
	if _, _, body = do(t, "GET", ts.URL+"/status?key=store.nope.deeper", "", ""); body != "{}" {
		t.Fatalf("missing key: %s", body)
	}
	if _, _, body = do(t, "GET", ts.URL+"/status?key=build.version.x", "", ""); body != `"v-test"` {
		t.Fatalf("key through a leaf: %s", body)
	}
	if _, _, body = do(t, "GET", ts.URL+"/status?key=store.raft&pretty", "", ""); !strings.Contains(body, "\n    \"") {
		t.Fatalf("pretty: %s", body)
	}
}

func TestReadyz(t *testing.T) {
	store := &fakeStore{}
	_, ts := newTestServer(t, store, nil)
	if code, _, body := do(t, "GET", ts.URL+"/readyz", "", ""); code != 503 || body != "[+]node ok\n[+]leader does not exist\n" {
		t.Fatalf("no leader: %d %q", code, body)
	}
	store.set(func(f *fakeStore) {
		f.ready = errors.New("not part of a cluster: refusing to join the cluster of the node at 127.0.0.1:4002")
	})
	if code, _, body := do(t, "GET", ts.URL+"/readyz", "", ""); code != 503 ||
		body != "[+]node ok\n[+]leader does not exist\n[+]store not ready: not part of a cluster: refusing to join the cluster of the node at 127.0.0.1:4002\n" {
		t.Fatalf("no leader, not formed: %d %q", code, body)
	}
	store.set(func(f *fakeStore) { f.ready = api.ErrNoLeader })
	if code, _, body := do(t, "GET", ts.URL+"/readyz", "", ""); code != 503 || body != "[+]node ok\n[+]leader does not exist\n" {
		t.Fatalf("no leader, no other reason: %d %q", code, body)
	}
	store.set(func(f *fakeStore) { f.ready = nil })
	if code, hdr, body := do(t, "GET", ts.URL+"/readyz?noleader", "", ""); code != 200 || body != "[+]node ok\n" ||
		!strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("noleader: %d %q", code, body)
	}
	store.set(func(f *fakeStore) { f.leaderID = "1" })
	if code, _, body := do(t, "GET", ts.URL+"/readyz", "", ""); code != 503 || !strings.Contains(body, "[+]leader not contactable") {
		t.Fatalf("leader API unknown: %d %q", code, body)
	}
	store.set(func(f *fakeStore) { f.leaderAPI = "127.0.0.1:4001"; f.ready = api.ErrNoLeader })
	if code, _, body := do(t, "GET", ts.URL+"/readyz", "", ""); code != 503 || !strings.Contains(body, "[+]store not ready") {
		t.Fatalf("not ready: %d %q", code, body)
	}
	store.set(func(f *fakeStore) { f.ready = nil })
	if code, _, body := do(t, "GET", ts.URL+"/readyz", "", ""); code != 200 || body != "[+]node ok\n[+]leader ok\n[+]store ok\n[+]db ok\n" {
		t.Fatalf("ready: %d %q", code, body)
	}
}

func TestNodesAndLeader(t *testing.T) {
	p := newPair(t, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := ln.Addr().String()
	ln.Close()
	members := []api.Member{
		{ID: "1", RaftAddr: "127.0.0.1:4002", APIAddr: p.leaderTS.URL, Voter: true, Leader: true},
		{ID: "2", RaftAddr: "127.0.0.1:4012", APIAddr: p.followerTS.URL, Voter: true},
		{ID: "3", RaftAddr: "127.0.0.1:4022", APIAddr: "http://" + dead, Voter: true},
		{ID: "4", RaftAddr: "127.0.0.1:4032", APIAddr: "", Voter: false},
	}
	p.leader.set(func(f *fakeStore) { f.progress = api.Progress{AppliedIndex: 40, CommittedIndex: 42} })
	p.follower.set(func(f *fakeStore) {
		f.members = members
		f.progress = api.Progress{AppliedIndex: 30, CommittedIndex: 41}
	})
	code, hdr, body := do(t, "GET", p.followerTS.URL+"/nodes", "", "")
	if code != 200 || hdr.Get("Content-Type") != contentTypeJSON {
		t.Fatalf("%d %s", code, body)
	}
	var legacy map[string]map[string]any
	if err := json.Unmarshal([]byte(body), &legacy); err != nil {
		t.Fatal(err)
	}
	if len(legacy) != 3 || legacy["4"] != nil {
		t.Fatalf("voters only by default: %s", body)
	}
	n1 := legacy["1"]
	if n1["id"] != "1" || n1["api_addr"] != p.leaderTS.URL || n1["addr"] != "127.0.0.1:4002" || n1["version"] != "v-test" ||
		n1["voter"] != true || n1["reachable"] != true || n1["leader"] != true || n1["time"] == nil || n1["time_s"] == nil {
		t.Fatalf("node 1: %v", n1)
	}
	if legacy["2"]["reachable"] != true || legacy["2"]["leader"] != false {
		t.Fatalf("node 2 (self): %v", legacy["2"])
	}
	if legacy["3"]["reachable"] != false || legacy["3"]["error"] == nil || legacy["3"]["leader"] != false {
		t.Fatalf("node 3 (down): %v", legacy["3"])
	}
	// Field order follows rqlite's.
	if !strings.Contains(body, `{"id":"1","api_addr":"`+p.leaderTS.URL+`","addr":"127.0.0.1:4002","version":"v-test","voter":true,"reachable":true,"leader":true,"time":`) {
		t.Fatalf("field order: %s", body)
	}

	code, _, body = do(t, "GET", p.followerTS.URL+"/nodes?ver=2&nonvoters", "", "")
	var v2 struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(body), &v2); code != 200 || err != nil || len(v2.Nodes) != 4 {
		t.Fatalf("ver=2: %d %s", code, body)
	}
	for i, id := range []string{"1", "2", "3", "4"} {
		if v2.Nodes[i]["id"] != id {
			t.Fatalf("ver=2 not sorted by id: %s", body)
		}
	}
	if v2.Nodes[3]["error"] != "API address unknown" {
		t.Fatalf("node without API address: %v", v2.Nodes[3])
	}
	// Each reachable member's applied index (from its /readyz headers, or
	// its own store), and its lag behind the leader's committed index.
	for i, want := range []struct{ applied, lag any }{{40.0, 2.0}, {30.0, 12.0}, {nil, nil}, {nil, nil}} {
		if v2.Nodes[i]["applied_index"] != want.applied || v2.Nodes[i]["lag"] != want.lag {
			t.Errorf("node %s: applied_index %v, lag %v; want %v, %v", v2.Nodes[i]["id"], v2.Nodes[i]["applied_index"], v2.Nodes[i]["lag"], want.applied, want.lag)
		}
	}

	// GET /leader: the leader's node object.
	code, _, body = do(t, "GET", p.followerTS.URL+"/leader", "", "")
	var ld map[string]any
	if err := json.Unmarshal([]byte(body), &ld); code != 200 || err != nil || ld["id"] != "1" || ld["leader"] != true || ld["reachable"] != true {
		t.Fatalf("GET /leader: %d %s", code, body)
	}
	// No leader: 503.
	p.follower.set(func(f *fakeStore) { f.members = members[1:]; f.leaderID = "" })
	if code, _, body := do(t, "GET", p.followerTS.URL+"/leader", "", ""); code != 503 || body != `{"results":[],"error":"leader not found","code":"no_leader"}` {
		t.Fatalf("GET /leader without leader: %d %q", code, body)
	}
}

func TestStepDownAndRemove(t *testing.T) {
	p := newPair(t, nil)
	// On a follower both are forwarded to the leader.
	if code, _, body := do(t, "POST", p.followerTS.URL+"/leader", "", `{"id":"2"}`); code != 200 {
		t.Fatalf("POST /leader: %d %q", code, body)
	}
	if code, _, body := do(t, "POST", p.followerTS.URL+"/leader", "", ``); code != 200 {
		t.Fatalf("POST /leader without body: %d %q", code, body)
	}
	if len(p.leader.stepped) != 2 || p.leader.stepped[0] != "2" || p.leader.stepped[1] != "" {
		t.Fatalf("stepped %v", p.leader.stepped)
	}
	if code, _, body := do(t, "DELETE", p.followerTS.URL+"/remove", "", `{"id":"3"}`); code != 200 {
		t.Fatalf("DELETE /remove: %d %q", code, body)
	}
	if len(p.leader.removed) != 1 || p.leader.removed[0] != "3" {
		t.Fatalf("removed %v", p.leader.removed)
	}
	for _, body := range []string{``, `{}`, `{"id":""}`, `{"id":3}`, `{"id":"3","x":1}`, `nope`} {
		if code, _, resp := do(t, "DELETE", p.leaderTS.URL+"/remove", "", body); code != 400 {
			t.Errorf("DELETE /remove %q: %d %q", body, code, resp)
		}
	}
	// An unknown id is 404 not_found, as rqlite answers, also when forwarded.
	for _, ts := range []string{p.leaderTS.URL, p.followerTS.URL} {
		if code, _, resp := do(t, "DELETE", ts+"/remove", "", `{"id":"unknown"}`); code != 404 || !strings.Contains(resp, `"code":"not_found"`) {
			t.Errorf("DELETE /remove unknown: %d %q", code, resp)
		}
	}
	if code, hdr, _ := do(t, "DELETE", p.followerTS.URL+"/remove?redirect", "", `{"id":"3"}`); code != 301 || hdr.Get("Location") != p.leaderTS.URL+"/remove?redirect" {
		t.Fatalf("redirect: %d %q", code, hdr.Get("Location"))
	}
}

// POST /promote goes to the leader, which promotes a learner once (then
// answers that it is a voter already), refuses an unknown id with 404 and a
// learner that is not ready with 409.
func TestPromote(t *testing.T) {
	p := newPair(t, nil)
	p.leader.set(func(f *fakeStore) {
		f.members = []api.Member{{ID: "1", Voter: true, Leader: true}, {ID: "4"}, {ID: "5"}}
	})
	var reply promoteReply
	code, _, body := do(t, "POST", p.followerTS.URL+"/promote", "", `{"id":"4"}`)
	if err := json.Unmarshal([]byte(body), &reply); code != 200 || err != nil || reply != (promoteReply{"4", true, "promoted to voter"}) {
		t.Fatalf("promote through a follower: %d %s", code, body)
	}
	code, _, body = do(t, "POST", p.leaderTS.URL+"/promote", "", `{"id":"4"}`)
	if err := json.Unmarshal([]byte(body), &reply); code != 200 || err != nil || reply != (promoteReply{"4", false, "already a voter"}) {
		t.Fatalf("promote of a voter: %d %s", code, body)
	}
	p.leader.set(func(f *fakeStore) { f.promoteErr = api.ErrLearnerNotReady.New("its database is 5000 entries behind") })
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"id":"5"}`, 409, "learner_not_ready"},
		{`{"id":"9"}`, 404, "not_found"},
		{`{}`, 400, "bad_request"},
		{`{"id":4}`, 400, "bad_request"},
	} {
		code, _, body := do(t, "POST", p.followerTS.URL+"/promote", "", tc.body)
		if code != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) {
			t.Errorf("promote %s: %d %s, want %d %s", tc.body, code, body, tc.status, tc.code)
		}
	}
	if code, _, _ := do(t, "GET", p.leaderTS.URL+"/promote", "", ""); code != 405 {
		t.Errorf("GET /promote: %d, want 405", code)
	}
}
