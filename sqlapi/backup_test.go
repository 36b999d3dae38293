package sqlapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// backupStore adds Backup and Load to fakeStore.
type backupStore struct {
	*fakeStore
	// mu orders Backup calls: when a backup aborts the connection before
	// any byte reached the client, net/http retries the GET while the first
	// handler may still be running.
	mu      sync.Mutex
	loaded  []byte
	opt     api.BackupOptions
	fail    error // returned by Backup after writing failAt bytes
	failAt  int
	loadErr error
}

func (s *backupStore) Backup(_ context.Context, w io.Writer, opt api.BackupOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opt = opt
	if s.fail != nil {
		w.Write(bytes.Repeat([]byte("x"), s.failAt))
		return s.fail
	}
	if opt.SQL {
		_, err := io.WriteString(w, "CREATE TABLE t (x);\n")
		return err
	}
	_, err := w.Write(append(append([]byte(nil), sqliteHeader...), "rest"...))
	return err
}

func (s *backupStore) Load(_ context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	s.loaded = b
	if err == nil {
		err = s.loadErr
	}
	return err
}

func TestBackupOptionsAndErrors(t *testing.T) {
	store := &backupStore{fakeStore: leaderStore()}
	_, ts := newTestServer(t, store, func(c *Config) { c.MaxLoadBytes = 1000 })
	if code, _, _ := do(t, "GET", ts.URL+"/db/backup?fmt=sql&tables=a,%20b,", "", ""); code != 200 ||
		!store.opt.SQL || strings.Join(store.opt.Tables, "|") != "a|b" {
		t.Fatalf("options: %d %+v", code, store.opt)
	}
	if code, _, body := do(t, "GET", ts.URL+"/db/backup?fmt=csv", "", ""); code != 400 {
		t.Fatalf("unknown format: %d %s", code, body)
	}
	// An error before the first byte is a 500; after it, the response is
	// cut short rather than ended cleanly.
	store.fail = errors.New("disk on fire")
	if code, _, body := do(t, "GET", ts.URL+"/db/backup", "", ""); code != 500 || !strings.Contains(body, "disk on fire") {
		t.Fatalf("failed backup: %d %s", code, body)
	}
	store.failAt = 100
	resp, err := http.Get(ts.URL + "/db/backup")
	if err == nil {
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
	}
	if err == nil {
		t.Fatal("a backup failing midway read as complete")
	}

	// Load: bounded by MaxLoadBytes, invalid files are 400.
	big := append(append([]byte(nil), sqliteHeader...), bytes.Repeat([]byte{1}, 2000)...)
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/octet-stream", string(big)); code != 413 {
		t.Fatalf("oversized load: %d %s", code, body)
	}
	store.loadErr = fmt.Errorf("load: %w", api.ErrBadRequest)
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/octet-stream", string(big[:500])); code != 400 || len(store.loaded) != 500 {
		t.Fatalf("invalid load: %d %s (%d bytes loaded)", code, body, len(store.loaded))
	}
}

func TestBackupAndLoad(t *testing.T) {

	store := &backupStore{fakeStore: leaderStore()}
	_, ts := newTestServer(t, store, nil)
	code, hdr, body := do(t, "GET", ts.URL+"/db/backup", "", "")
	if code != 200 || !strings.HasPrefix(body, string(sqliteHeader)) || hdr.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("binary backup: %d %q %q", code, hdr.Get("Content-Type"), body)
	}
	code, hdr, body = do(t, "GET", ts.URL+"/db/backup?fmt=sql", "", "")
	if code != 200 || body != "CREATE TABLE t (x);\n" || hdr.Get("Content-Type") != "application/sql" {
		t.Fatalf("sql backup: %d %q %q", code, hdr.Get("Content-Type"), body)
	}
	_, _, body = do(t, "GET", ts.URL+"/db/backup?fmt=sql&compress", "", "", "Accept-Encoding", "identity")
	zr, err := gzip.NewReader(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(zr); string(got) != "CREATE TABLE t (x);\n" {
		t.Fatalf("compressed backup: %q", got)
	}

	// An SQLite file goes to Load as it is, never through the log; SQL
	// text is executed, through the log, and Load is not called.
	file := append(append([]byte(nil), sqliteHeader...), 1, 2, 3)
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/octet-stream", string(file)); code != 200 || !bytes.Equal(store.loaded, file) || store.executedCount() != 0 {
		t.Fatalf("load file: %d %s", code, body)
	}
	code, _, body = do(t, "POST", ts.URL+"/db/load", "text/plain", "CREATE TABLE t (x); INSERT INTO t VALUES(1);")
	if code != 200 || store.executedCount() != 1 || !bytes.Equal(store.loaded, file) {
		t.Fatalf("load SQL text: %d %s (%d executed)", code, body, store.executedCount())
	}
}

// sqlite3Dump is what sqlite3's .dump writes, give or take.
const sqlite3Dump = `PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE users (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT, pic BLOB);
INSERT INTO users VALUES(1,'ann; -- not a comment',X'00ff');
INSERT INTO users VALUES(2,'bob''s',NULL);
CREATE TABLE audit (who TEXT);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('users',2);
CREATE INDEX users_name ON users (name);
CREATE TRIGGER users_del AFTER DELETE ON users BEGIN
  INSERT INTO audit VALUES (old.name);
END;
CREATE VIEW names AS SELECT name FROM users;
COMMIT;
`

// TestLoadSQLText: SQL text posted to /db/load is executed on top of the
// database, as rqlite does, and answered with one result (rqlite's shell
// .restore of a dump expects exactly one); a failing text changes nothing.
func TestLoadSQLText(t *testing.T) {
	f, err := fsm.Open(fsm.Config{Dir: t.TempDir(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var entryLimit int
	_, ts := newTestServer(t, &fsmStore{f: f}, func(c *Config) { c.MaxEntryBytes = 4096; entryLimit = c.MaxEntryBytes })
	if code, _, body := do(t, "POST", ts.URL+"/db/execute", "application/json", `["CREATE TABLE keep (k)", "INSERT INTO keep VALUES ('kept')"]`); code != 200 {
		t.Fatal(code, body)
	}
	query := func(q string) string {
		t.Helper()
		_, _, body := do(t, "GET", ts.URL+"/db/query?q="+url.QueryEscape(q), "", "")
		return body
	}

	// rqlite answers the dump with the result of the string's last write:
	// the INSERT INTO sqlite_sequence.
	code, _, body := do(t, "POST", ts.URL+"/db/load", "application/sql", sqlite3Dump)
	if code != 200 || body != `{"results":[{"last_insert_id":1,"rows_affected":1}]}` {
		t.Fatalf("load dump: %d %s", code, body)
	}
	if got := query("SELECT id, name, hex(pic) FROM users ORDER BY id"); !strings.Contains(got, `"values":[[1,"ann; -- not a comment","00FF"],[2,"bob's",""]]`) {
		t.Errorf("users after the load: %s", got)
	}
	if got := query("SELECT k FROM keep"); !strings.Contains(got, `[["kept"]]`) {
		t.Errorf("the load replaced the database: keep holds %s", got)
	}
	if got := query("SELECT group_concat(name) FROM (SELECT name FROM sqlite_master ORDER BY name)"); !strings.Contains(got, `"audit,keep,names,sqlite_sequence,users,users_del,users_name"`) {
		t.Errorf("schema after the load: %s", got)
	}

	// A failing statement fails the text, in the result, and nothing of it
	// is applied.
	for name, tt := range map[string]struct{ text, want string }{
		"syntax":   {"CREATE TABLE t (x);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUE (2);\n", "syntax error"},
		"attach":   {"BEGIN TRANSACTION;\nCREATE TABLE t (x);\nATTACH DATABASE 'x.db' AS x;\nCOMMIT;\n", "ATTACH and DETACH are not supported"},
		"pragma":   {"CREATE TABLE t (x); PRAGMA journal_mode=OFF;", "PRAGMA journal_mode cannot be set"},
		"unclosed": {"CREATE TABLE t (x); INSERT INTO t VALUES ('open", "unrecognized token"},
	} {
		code, _, body := do(t, "POST", ts.URL+"/db/load", "application/sql", tt.text)
		if code != 200 || !strings.Contains(body, tt.want) || strings.Count(body, "{") != 2 {
			t.Errorf("%s: %d %s, want one result with %q", name, code, body, tt.want)
		}
		if got := query("SELECT count(*) FROM t"); !strings.Contains(got, "no such table") {
			t.Errorf("%s: table t exists after the failed load: %s", name, got)
		}
	}
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/sql", "  \n-- nothing\n"); code != 200 || body != `{"results":[]}` {
		t.Errorf("empty text: %d %s", code, body)
	}

	// Text larger than one log entry goes in several.
	var big strings.Builder
	big.WriteString("CREATE TABLE many (n, pad);\n")
	for i := range 200 {
		fmt.Fprintf(&big, "INSERT INTO many VALUES (%d, '%s');\n", i, strings.Repeat("x", 100))
	}
	if big.Len() < 4*entryLimit {
		t.Fatalf("text of %d bytes does not need several entries", big.Len())
	}
	before := f.AppliedIndex()
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/sql", big.String()); code != 200 || body != `{"results":[{"last_insert_id":200,"rows_affected":1}]}` {
		t.Fatalf("large text: %d %s", code, body)
	}
	if entries := f.AppliedIndex() - before; entries < 4 {
		t.Errorf("large text applied in %d entries", entries)
	}
	if got := query("SELECT count(*), sum(n) FROM many"); !strings.Contains(got, "[[200,19900]]") {
		t.Errorf("many after the load: %s", got)
	}
}
