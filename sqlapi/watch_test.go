package sqlapi

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

func newWatchServer(t *testing.T) (*fsmStore, string) {
	t.Helper()
	f, err := fsm.Open(fsm.Config{Dir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	st := &fsmStore{f: f}
	_, ts := newTestServer(t, st, nil)
	return st, ts.URL
}

func mustExec(t *testing.T, st *fsmStore, sql string) uint64 {
	t.Helper()
	r, err := st.Execute(context.Background(), &api.Request{Statements: []api.Statement{{SQL: sql}}})
	if err != nil || r.Results[0].Error != "" {
		t.Fatalf("%s: %v %+v", sql, err, r)
	}
	return r.Index
}

func TestWatchLongPollAndCompacted(t *testing.T) {
	st, base := newWatchServer(t)
	mustExec(t, st, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
	first := mustExec(t, st, "INSERT INTO t VALUES (1, 'a')")
	mustExec(t, st, "UPDATE t SET v = 'b'")

	code, _, body := do(t, "GET", base+"/db/watch?wait=0&from=1&prev", "", "")
	want := `"changes":[{"table":"t","op":"update","rowid":1,"pk":{"id":1},"new":{"id":1,"v":"b"},"old":{"id":1,"v":"a"}}]}],"next":4}`
	if code != http.StatusOK || !strings.Contains(body, want) {
		t.Fatalf("long poll: %d %s", code, body)
	}
	// A long poll waits for the next change.
	done := make(chan string, 1)
	go func() {
		_, _, body := do(t, "GET", base+"/db/watch?wait=30s&from=4&ops=delete", "", "")
		done <- body
	}()
	mustExec(t, st, "INSERT INTO t VALUES (2, 'c')")
	mustExec(t, st, "DELETE FROM t WHERE id = 2")
	select {
	case body := <-done:
		if !strings.Contains(body, `"op":"delete"`) || strings.Contains(body, `"op":"insert"`) {
			t.Fatalf("long poll for deletes: %s", body)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll not answered")
	}

	code, _, body = do(t, "POST", base+"/db/compact?index="+url.QueryEscape("3"), "", "")
	if code != http.StatusOK {
		t.Fatalf("compact: %d %s", code, body)
	}
	code, _, body = do(t, "GET", base+"/db/watch?wait=0&from=2", "", "")
	var e struct {
		Code   string `json:"code"`
		Oldest uint64 `json:"oldest_index"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil || code != http.StatusGone || e.Code != "compacted" || e.Oldest != 4 {
		t.Fatalf("watch from %d after compact: %d %s", first, code, body)
	}
	for _, bad := range []string{"from=x", "ops=upsert", "limit=0", "wait=forever", "where=nosuch_column%3D1&from=4&wait=0"} {
		if code, _, body := do(t, "GET", base+"/db/watch?"+bad, "", ""); code != http.StatusBadRequest || !strings.Contains(body, `"code":"bad_request"`) {
			t.Errorf("%s: %d %s", bad, code, body)
		}
	}
}

func TestWatchServerSentEvents(t *testing.T) {
	st, base := newWatchServer(t)
	mustExec(t, st, "CREATE TABLE t (v)")
	i1 := mustExec(t, st, "INSERT INTO t VALUES (1)")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/db/watch?tables=t&from=1", nil)
	req.Header.Set("Last-Event-ID", "1") // resume after index 1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	i2 := mustExec(t, st, "INSERT INTO t VALUES (2)")
	sc := bufio.NewScanner(resp.Body)
	var ids []string
	for sc.Scan() && len(ids) < 2 {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, id)
		}
	}
	if want := []string{itoa(i1), itoa(i2)}; strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("event ids %v, want %v", ids, want)
	}
}

func itoa(i uint64) string { return strconv.FormatUint(i, 10) }

// Shutdown ends open watch streams instead of waiting for them: a stream
// never ends by itself.
func TestShutdownEndsWatchStreams(t *testing.T) {
	f, err := fsm.Open(fsm.Config{Dir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := New(Config{Addr: ln.Addr().String(), AdvAddr: "http://" + ln.Addr().String(), Logger: quietLogger()}, &fsmStore{f: f})
	go func() { _ = srv.Serve(ln) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/db/watch")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("watch: %d", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a watcher connected: %v (after %v)", err, time.Since(start))
	}
}
