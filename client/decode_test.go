package client

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
)

func TestDecodeResponse(t *testing.T) {
	body := `{"results":[
		{"columns":["i","r","t","b","n","big","dec","num"],
		 "types":["integer","real","text","blob","","bigint","double precision","numeric"],
		 "values":[[1,2,"x",[1,2,255],null,9007199254740993,3,1.5]],"time":0.5},
		{"last_insert_id":7,"rows_affected":2},
		{},
		{"columns":["a"],"types":["text"]},
		{"error":"no such table: bar"}
	],"time":1.25,"raft_index":42,"deduplicated":true,"sequence_number":9}`
	w, err := decodeWire([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if msg, _ := w.requestError(); msg != "" {
		t.Fatalf("request error %q", msg)
	}
	stmts := []Statement{SQL("a"), SQL("b"), SQL("c"), SQL("d"), SQL("e")}
	r := w.response(stmts)
	if r.RaftIndex != 42 || !r.Deduplicated || r.SequenceNumber != 9 || r.Time != 1250*time.Millisecond {
		t.Errorf("top level %+v", r)
	}
	want := []any{int64(1), float64(2), "x", []byte{1, 2, 255}, nil, int64(9007199254740993), float64(3), 1.5}
	if got := r.Results[0].Values[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("values\n got %#v\nwant %#v", got, want)
	}
	if r.Results[0].Time != 500*time.Millisecond || !r.Results[0].IsQuery() {
		t.Errorf("result 0 %+v", r.Results[0])
	}
	if res := r.Results[1]; res.LastInsertID != 7 || res.RowsAffected != 2 || res.IsQuery() {
		t.Errorf("result 1 %+v", res)
	}
	if res := r.Results[3]; !res.IsQuery() || res.Values != nil {
		t.Errorf("result 3 (no rows) %+v", res)
	}
	se, ok := r.Err().(*StatementError)
	if !ok || se.Index != 4 || se.SQL != "e" || se.Message != "no such table: bar" {
		t.Errorf("Err() = %v", r.Err())
	}
}

func TestRequestErrorInBody(t *testing.T) {
	for body, want := range map[string]string{
		`{"results":[],"error":"leadership lost while committing log"}`: "leadership lost while committing log",
		`{"results":[{"error":"unknown or expired session"}]}`:          "unknown or expired session",
		`{"results":[{"error":"UNIQUE constraint failed: t.v"}]}`:       "",
	} {
		w, err := decodeWire([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if msg, _ := w.requestError(); msg != want {
			t.Errorf("%s: %q, want %q", body, msg, want)
		}
	}
}

func TestErrorFromBody(t *testing.T) {
	for body, want := range map[string][2]string{
		"leader not found\n":                         {"leader not found", ""},
		`{"error":"stale read","code":"stale_read"}`: {"stale read", "stale_read"},
		`{"something":"else"}`:                       {`{"something":"else"}`, ""},
		"":                                           {"", ""},
	} {
		msg, code := errorFromBody([]byte(body))
		if msg != want[0] || code != want[1] {
			t.Errorf("%q: %q %q", body, msg, code)
		}
	}
}

func TestDecodeNodes(t *testing.T) {
	legacy := `{"2":{"api_addr":"http://b","addr":"b:2","voter":false,"reachable":false,"error":"timeout"},
	            "1":{"id":"1","api_addr":"http://a","addr":"a:2","voter":true,"reachable":true,"leader":true,"time":0.002}}`
	v2 := `{"nodes":[{"id":"1","api_addr":"http://a","addr":"a:2","voter":true,"reachable":true,"leader":true,"time":0.002},
	                 {"id":"2","api_addr":"http://b","addr":"b:2","reachable":false,"error":"timeout"}]}`
	want := []Node{
		{ID: "1", APIAddr: "http://a", Addr: "a:2", Voter: true, Reachable: true, Leader: true, Time: 2 * time.Millisecond},
		{ID: "2", APIAddr: "http://b", Addr: "b:2", Error: "timeout"},
	}
	// raftlite's progress fields, where a node reports them.
	withProgress := `{"nodes":[{"id":"1","api_addr":"http://a","addr":"a:2","voter":true,"reachable":true,"leader":true,"time":0.002,"applied_index":42,"lag":0},
	                 {"id":"2","api_addr":"http://b","addr":"b:2","reachable":false,"error":"timeout"}]}`
	applied, lag := uint64(42), uint64(0)
	wantProgress := append([]Node(nil), want...)
	wantProgress[0].AppliedIndex, wantProgress[0].Lag = &applied, &lag
	for body, want := range map[string][]Node{legacy: want, v2: want, withProgress: wantProgress} {
		got, err := decodeNodes([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("got %+v\nwant %+v", got, want)
		}
	}
	n, err := decodeNode([]byte(`{"leader":{"id":"3","api_addr":"http://c"}}`))
	if err != nil || n.ID != "3" || n.APIAddr != "http://c" {
		t.Errorf("wrapped leader: %+v %v", n, err)
	}
	if _, err := decodeNode([]byte(`{}`)); err == nil {
		t.Error("empty leader accepted")
	}
}

func TestClassifyPhrases(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   outcome
	}{
		{503, "leader not found", outcomeAmbiguous},
		{502, "bad gateway", outcomeAmbiguous},
		{500, "leadership lost while committing log", outcomeAmbiguous},
		{500, "disk I/O error", outcomeFatal},
		{400, "timeout is not a duration", outcomeFatal},
		{401, "unauthorized", outcomeFatal},
		{409, `{"error":"timeout waiting for index 5","code":"index_timeout"}`, outcomeAmbiguous},
		{503, `{"error":"unknown or expired session"}`, outcomeFatal},
		{400, `{"results":[],"error":"gone","code":"session_expired"}`, outcomeFatal},
		{504, `{"results":[],"error":"waiting for index 9","code":"timeout"}`, outcomeAmbiguous},
		{500, `{"results":[],"error":"boom","code":"store_error"}`, outcomeFatal},
		{200, `{"results":[],"error":"not leader"}`, outcomeAmbiguous},
		{200, `{"results":[]}`, outcomeOK},
		{200, `<html>`, outcomeAmbiguous},
		{301, "", outcomeFatal},
	} {
		rep := &reply{status: tt.status, body: []byte(tt.body), header: map[string][]string{}}
		got, err := classify(&request{db: true}, rep)
		if got != tt.want {
			t.Errorf("%d %s: outcome %d (%v), want %d", tt.status, tt.body, got, err, tt.want)
		}
	}
}

func TestAPIErrorSentinels(t *testing.T) {
	for _, tt := range []struct {
		e    *APIError
		want error
	}{
		{&APIError{Status: 400, Message: "unknown or expired session", Code: "session_expired"}, api.ErrSessionExpired},
		{&APIError{Status: 400, Message: "", Code: "session_expired"}, api.ErrSessionExpired},
		{&APIError{Status: 400, Message: "sequence number already superseded", Code: "seq_superseded"}, api.ErrSeqSuperseded},
		{&APIError{Status: 409, Message: "sequence number already used by a different request", Code: "seq_reused"}, api.ErrSeqReused},
		{&APIError{Status: 409, Code: "seq_reused"}, api.ErrSeqReused},
		{&APIError{Status: 503, Message: "leader not found"}, nil},
	} {
		var err error = tt.e
		if got := tt.e.Unwrap(); got != tt.want {
			t.Errorf("%v: Unwrap = %v, want %v", tt.e, got, tt.want)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%v: errors.Is fails", err)
		}
	}
}
