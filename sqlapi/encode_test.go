package sqlapi

import (
	"bytes"
	"encoding/json"
	"math"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// stdString is how encoding/json writes s with HTML escaping off.
func stdString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return string(bytes.TrimRight(buf.Bytes(), "\n"))
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " backslash \ slash /`, "<html>&amp;", "\x00\x01\x08\x0c\n\r\t\x1f\x7f",
		"héllo wörld ✓ 😀", "\u2028\u2029", "bad \xff utf8 \xc3", "\xed\xa0\x80",
	} {
		if got, want := string(appendString(nil, s)), stdString(s); got != want {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("a\"b\\c\x00\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(appendString(nil, s)), stdString(s); got != want {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, 2.0, -2.5, 0.1, 1e-6, 1e-7, 123456789.125, 1e20, 1e21, 1.5e300, -1e-300,
		math.MaxFloat64, math.SmallestNonzeroFloat64, 3.14159} {
		want, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendFloat(nil, f)); got != string(want) {
			t.Errorf("appendFloat(%v) = %s, want %s", f, got, want)
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got := string(appendFloat(nil, f)); got != "null" {
			t.Errorf("appendFloat(%v) = %s, want null", f, got)
		}
	}
}

func TestAppendResponseShapes(t *testing.T) {
	query := api.Result{
		Columns: []string{"id", "name", "data", "score", "none"},
		Types:   []string{"integer", "text", "blob", "real", ""},
		Rows: [][]api.Value{
			{int64(1), "fiona", []byte("hi"), 2.0, nil},
			{int64(2), "<b>", []byte{}, 1.5, nil},
		},
	}
	tests := []struct {
		name string
		resp apiResponse
		o    encodeOpts
		want string
	}{
		{"empty", apiResponse{}, encodeOpts{}, `{"results":[]}`},
		{"exec", apiResponse{results: []api.Result{{LastInsertID: 1, RowsAffected: 1}, {}, {RowsAffected: 3}}},
			encodeOpts{}, `{"results":[{"last_insert_id":1,"rows_affected":1},{},{"rows_affected":3}]}`},
		{"query", apiResponse{results: []api.Result{query}}, encodeOpts{},
			`{"results":[{"columns":["id","name","data","score","none"],"types":["integer","text","blob","real",""],"values":[[1,"fiona","aGk=",2,null],[2,"<b>","",1.5,null]]}]}`},
		{"query blob_array", apiResponse{results: []api.Result{{Columns: []string{"b"}, Types: []string{"blob"}, Rows: [][]api.Value{{[]byte{1, 255}}}}}},
			encodeOpts{blobArray: true}, `{"results":[{"columns":["b"],"types":["blob"],"values":[[[1,255]]]}]}`},
		{"empty query", apiResponse{results: []api.Result{{Columns: []string{"id"}, Types: []string{"integer"}}}}, encodeOpts{},
			`{"results":[{"columns":["id"],"types":["integer"]}]}`},
		{"error", apiResponse{results: []api.Result{{Error: "no such table: bar"}}}, encodeOpts{},
			`{"results":[{"error":"no such table: bar"}]}`},
		{"associative", apiResponse{results: []api.Result{{Columns: []string{"name", "id", "name"}, Types: []string{"text", "integer", "real"},
			Rows: [][]api.Value{{"a", int64(1), 1.5}}}}}, encodeOpts{associative: true},
			`{"results":[{"types":{"id":"integer","name":"real"},"rows":[{"id":1,"name":1.5}]}]}`},
		{"associative empty", apiResponse{results: []api.Result{{Columns: []string{"id"}, Types: []string{"integer"}}}},
			encodeOpts{associative: true}, `{"results":[{"types":{"id":"integer"},"rows":[]}]}`},
		{"associative request exec", apiResponse{results: []api.Result{{LastInsertID: 5, RowsAffected: 1}, {}}},
			encodeOpts{associative: true, execRows: true}, `{"results":[{"last_insert_id":5,"rows_affected":1,"rows":null},{"rows":null}]}`},
		{"timings", apiResponse{results: []api.Result{{RowsAffected: 1, Seconds: 0.5}}, time: 1.25},
			encodeOpts{timings: true}, `{"results":[{"rows_affected":1,"time":0.5}],"time":1.25}`},
		{"no timings", apiResponse{results: []api.Result{{RowsAffected: 1, Seconds: 0.5}}, time: 1.25},
			encodeOpts{}, `{"results":[{"rows_affected":1}]}`},
		{"top level", apiResponse{err: "stale read", code: "stale_read", raftIndex: 9, seqNum: 77, dedup: true}, encodeOpts{},
			`{"results":[],"error":"stale read","code":"stale_read","raft_index":9,"sequence_number":77,"deduplicated":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendResponse(nil, &tt.resp, tt.o)
			if string(got) != tt.want {
				t.Fatalf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
		})
	}
}

func TestIndentIsRqlitePretty(t *testing.T) {
	got := string(indent([]byte(`{"results":[{"rows_affected":1}]}`)))
	want := "{\n    \"results\": [\n        {\n            \"rows_affected\": 1\n        }\n    ]\n}"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func BenchmarkAppendQueryResponse(b *testing.B) {
	rows := make([][]api.Value, 100)
	for i := range rows {
		rows[i] = []api.Value{int64(i), "some text value", 3.25, nil, []byte("blob")}
	}
	resp := &apiResponse{results: []api.Result{{Columns: []string{"a", "b", "c", "d", "e"},
		Types: []string{"integer", "text", "real", "", "blob"}, Rows: rows}}}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		buf = appendResponse(buf[:0], resp, encodeOpts{})
	}
}
