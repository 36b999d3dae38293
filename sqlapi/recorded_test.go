package sqlapi

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestRecordedRqlite sends the requests of testdata/rqlite/*.txt, whose
// answers are rqlite's own (recorded from its sources and measurements,
// named in each file), to raftlite over a real state machine, and compares
// raftlite's answer with rqlite's field by field (matchRecorded).
func TestRecordedRqlite(t *testing.T) {
	forEachScript(t, filepath.Join("testdata", "rqlite"), func(t *testing.T, file string, steps []goldenStep, ts *httptest.Server) {
		for _, st := range steps {
			code, _, body := do(t, st.method, ts.URL+st.path, st.contentType, st.body)
			if code != st.status {
				t.Errorf("%s:%d %s %s: status %d, rqlite's %d (body %s)", file, st.line, st.method, st.path, code, st.status, body)
				continue
			}
			if err := matchRecorded(st.want, body); err != nil {
				t.Errorf("%s:%d %s %s %s: %v\n raftlite: %s\n   rqlite: %s", file, st.line, st.method, st.path, st.body, err, strings.TrimSpace(body), st.want)
			}
		}
	})
}

// matchRecorded compares raftlite's answer with rqlite's recorded one:
//   - rqlite's plain-text error (its http.Error bodies) must be raftlite's
//     "error" field, alone or followed by ": " and more detail;
//   - in a JSON answer every field of rqlite's must be in raftlite's with an
//     equal value (recursively; "time" values are not compared, and the
//     string "*" stands for any non-empty string). raftlite may add only
//     "code", the machine-readable reason of its errors.
func matchRecorded(rqlite, raftlite string) error {
	var got any
	if err := json.Unmarshal([]byte(raftlite), &got); err != nil {
		return fmt.Errorf("raftlite's answer is not JSON: %v", err)
	}
	if !strings.HasPrefix(rqlite, "{") {
		obj, _ := got.(map[string]any)
		msg, _ := obj["error"].(string)
		if msg != rqlite && !strings.HasPrefix(msg, rqlite+": ") {
			return fmt.Errorf("error %q, rqlite's %q", msg, rqlite)
		}
		return nil
	}
	var want any
	if err := json.Unmarshal([]byte(rqlite), &want); err != nil {
		return fmt.Errorf("recorded answer is not JSON: %v", err)
	}
	return matchValue("", want, got)
}

func matchValue(path string, want, got any) error {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: %v, rqlite's object %v", path, got, want)
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				return fmt.Errorf("%s.%s: missing", path, k)
			}
			if k == "time" {
				continue
			}
			if err := matchValue(path+"."+k, wv, gv); err != nil {
				return err
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok && k != "code" {
				return fmt.Errorf("%s.%s: field rqlite does not send", path, k)
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: %v, rqlite's %v", path, got, want)
		}
		for i := range w {
			if err := matchValue(fmt.Sprintf("%s[%d]", path, i), w[i], g[i]); err != nil {
				return err
			}
		}
		return nil
	case string:
		if g, ok := got.(string); ok && w == "*" && g != "" {
			return nil
		}
	}
	if !reflect.DeepEqual(want, got) {
		return fmt.Errorf("%s: %v, rqlite's %v", path, got, want)
	}
	return nil
}
