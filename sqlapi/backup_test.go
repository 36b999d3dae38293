package sqlapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/sqltest"
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

	// An SQLite file goes to Load as it is; an SQL dump goes to Load as
	// the SQLite file it builds, never through the log.
	file := append(append([]byte(nil), sqliteHeader...), 1, 2, 3)
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/octet-stream", string(file)); code != 200 || !bytes.Equal(store.loaded, file) {
		t.Fatalf("load file: %d %s", code, body)
	}
	code, _, body = do(t, "POST", ts.URL+"/db/load", "text/plain", "CREATE TABLE t (x); INSERT INTO t VALUES(1);")
	if code != 200 || store.executedCount() != 0 || !bytes.HasPrefix(store.loaded, sqliteHeader) {
		t.Fatalf("load dump: %d %s (%d executed)", code, body, store.executedCount())
	}
	if got := loadedRows(t, store.loaded, "SELECT x FROM t"); got != "1" {
		t.Fatalf("loaded dump holds %q", got)
	}
}

// loadedRows opens the SQLite file image b and returns the rows query
// yields, one line each, columns separated by '|'.
func loadedRows(t *testing.T, b []byte, query string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "loaded.db")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var lines []string
	for _, row := range sqltest.Rows(t, db, query) {
		lines = append(lines, strings.Join(row, "|"))
	}
	return strings.Join(lines, "\n")
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

func TestLoadDump(t *testing.T) {
	store := &backupStore{fakeStore: leaderStore()}
	_, ts := newTestServer(t, store, nil)

	// The dump builds the same database sqlite3 makes of it.
	code, _, body := do(t, "POST", ts.URL+"/db/load", "application/sql", sqlite3Dump)
	if code != 200 || !bytes.HasPrefix(store.loaded, sqliteHeader) || store.executedCount() != 0 {
		t.Fatalf("load dump: %d %s", code, body)
	}
	direct := filepath.Join(t.TempDir(), "direct.db")
	db, err := sql.Open("sqlite", direct)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(sqlite3Dump); err != nil {
		t.Fatal(err)
	}
	db.Close()
	want, err := os.ReadFile(direct)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		"SELECT id, name, hex(pic) FROM users ORDER BY id",
		"SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name",
		"SELECT * FROM sqlite_sequence",
		"SELECT * FROM names",
	} {
		if got, w := loadedRows(t, store.loaded, q), loadedRows(t, want, q); got != w || got == "" {
			t.Errorf("%s: got %q, want %q", q, got, w)
		}
	}

	// A dump that fails is a 400 naming the line, and Load is not called.
	for name, tt := range map[string]struct{ dump, want string }{
		"syntax":  {"CREATE TABLE t (x);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUE (2);\n", "line 3:"},
		"attach":  {"BEGIN TRANSACTION;\nATTACH DATABASE 'x.db' AS x;\nCOMMIT;\n", "line 2: ATTACH and DETACH are not supported"},
		"pragma":  {"PRAGMA journal_mode=OFF;", "line 1: PRAGMA journal_mode cannot be set"},
		"garbage": {"\x00\x01binary junk\xff", "line 1:"},
		"empty":   {"  \n", "no SQL statements"},
	} {
		store.loaded = nil
		code, _, body := do(t, "POST", ts.URL+"/db/load", "application/sql", tt.dump)
		if code != 400 || !strings.Contains(body, tt.want) || store.loaded != nil {
			t.Errorf("%s: %d %s (loaded %d bytes), want 400 with %q", name, code, body, len(store.loaded), tt.want)
		}
	}

	// The Loader's own refusal of the built file is passed on.
	store.loadErr = fmt.Errorf("load: %w", api.ErrBadRequest)
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/sql", "CREATE TABLE t (x);"); code != 400 {
		t.Fatalf("refused load: %d %s", code, body)
	}
}
