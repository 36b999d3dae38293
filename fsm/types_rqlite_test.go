package fsm

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// TestRqliteTypes checks query answers against rqlite's, recorded in
// testdata/rqlite-types.json (its "about" names the rqlite sources), field
// by field: columns, types and values as JSON. Both the read path (Query)
// and reads through the log (ReadOnly execute) are checked.
func TestRqliteTypes(t *testing.T) {
	raw, err := os.ReadFile("testdata/rqlite-types.json")
	if err != nil {
		t.Fatal(err)
	}
	var rec struct {
		Setup []string
		Cases []struct {
			SQL  string
			Want struct {
				Columns json.RawMessage
				Types   json.RawMessage
				Values  json.RawMessage
			}
		}
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	f := newFSM(t)
	var s seq
	var setup []api.Statement
	for _, q := range rec.Setup {
		setup = append(setup, stmt(q))
	}
	noErrors(t, s.exec(t, f, setup...))

	for _, c := range rec.Cases {
		read, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{stmt(c.SQL)}})
		if err != nil {
			t.Fatal(err)
		}
		strong := execAt(t, f, s.idx(), &api.Request{ReadOnly: true, Statements: []api.Statement{stmt(c.SQL)}})
		for name, res := range map[string]api.Result{"query": read[0], "strong": strong[0]} {
			if res.Error != "" {
				t.Fatalf("%s %q: %s", name, c.SQL, res.Error)
			}
			sameJSON(t, name+" "+c.SQL+" columns", res.Columns, c.Want.Columns)
			sameJSON(t, name+" "+c.SQL+" types", res.Types, c.Want.Types)
			sameJSON(t, name+" "+c.SQL+" values", jsonRows(res.Rows), c.Want.Values)
		}
	}
}

// jsonRows renders rows as rqlite's JSON does: BLOBs as base64 strings.
func jsonRows(rows [][]api.Value) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = make([]any, len(r))
		for j, v := range r {
			if b, ok := v.([]byte); ok {
				out[i][j] = base64.StdEncoding.EncodeToString(b)
			} else {
				out[i][j] = v
			}
		}
	}
	return out
}

func sameJSON(t *testing.T, what string, got any, want json.RawMessage) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var w bytes.Buffer
	if err := json.Compact(&w, want); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w.Bytes()) {
		t.Errorf("%s:\n got %s\nwant %s", what, g, w.Bytes())
	}
}
