package sqlapi

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/raftlite/raftlite/fsm"
)

// checksumStore adds the checksum methods to fakeStore.
type checksumStore struct {
	*fakeStore
	triggered int
}

func (s *checksumStore) ID() string { return "n1" }

func (s *checksumStore) Checksum(context.Context) (uint64, string, error) {
	return 7, "cafe", nil
}

func (s *checksumStore) ChecksumAt(_ context.Context, index uint64) (string, error) {
	if index != 9 {
		return "", fmt.Errorf("index %d: %w", index, fsm.ErrNoChecksum)
	}
	return "beef", nil
}

func (s *checksumStore) TriggerChecksum(context.Context) (uint64, error) {
	s.triggered++
	return 9, nil
}

func TestChecksumEndpoint(t *testing.T) {
	_, plain := newTestServer(t, leaderStore(), nil)
	if code, _, _ := do(t, "GET", plain.URL+"/db/checksum", "", ""); code != 501 {
		t.Fatalf("checksum without Checksummer: %d", code)
	}

	store := &checksumStore{fakeStore: leaderStore()}
	_, ts := newTestServer(t, store, nil)
	for _, tc := range []struct {
		method, query string
		status        int
		want          checksumReply
	}{
		{"GET", "", 200, checksumReply{Index: 7, Checksum: "cafe", NodeID: "n1"}},
		{"GET", "?index=9", 200, checksumReply{Index: 9, Checksum: "beef", NodeID: "n1"}},
		{"POST", "", 200, checksumReply{Index: 9, Checksum: "beef", NodeID: "n1"}},
		{"GET", "?index=8", 404, checksumReply{Index: 8, NodeID: "n1", Error: "index 8: " + fsm.ErrNoChecksum.Error()}},
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
