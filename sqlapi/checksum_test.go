package sqlapi

import (
	"encoding/json"
	"testing"

	"github.com/raftlite/raftlite/api"
)

func TestChecksumEndpoint(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, nil)
	for _, tc := range []struct {
		method, query string
		status        int
		want          checksumReply
	}{
		{"GET", "", 200, checksumReply{Index: 7, Checksum: "cafe", NodeID: "n1"}},
		{"GET", "?index=9", 200, checksumReply{Index: 9, Checksum: "beef", NodeID: "n1"}},
		{"POST", "", 200, checksumReply{Index: 9, Checksum: "beef", NodeID: "n1"}},
		{"GET", "?index=8", 404, checksumReply{Index: 8, NodeID: "n1", Error: "index 8: " + api.ErrNoChecksum.Error()}},
	} {
		code, _, body := do(t, tc.method, ts.URL+"/db/checksum"+tc.query, "", "")
		var got checksumReply
		if err := json.Unmarshal([]byte(body), &got); err != nil || code != tc.status || got != tc.want {
			t.Errorf("%s %s: %d %s, want %d %+v", tc.method, tc.query, code, body, tc.status, tc.want)
		}
	}
	if code, _, _ := do(t, "GET", ts.URL+"/db/checksum?index=x", "", ""); code != 400 {
		t.Errorf("bad index: %d", code)
	}
	if store.triggered != 1 {
		t.Errorf("triggered %d times", store.triggered)
	}
}
