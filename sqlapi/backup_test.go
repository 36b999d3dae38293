package sqlapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/fsm"
)

// backupStore adds Backup and Load to fakeStore.
type backupStore struct {
	*fakeStore
	loaded  []byte
	opt     fsm.BackupOptions
	fail    error // returned by Backup after writing failAt bytes
	failAt  int
	loadErr error
}

func (s *backupStore) Backup(_ context.Context, w io.Writer, opt fsm.BackupOptions) error {
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
	store.loadErr = fmt.Errorf("load: %w", ErrBadRequest)
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/octet-stream", string(big[:500])); code != 400 || len(store.loaded) != 500 {
		t.Fatalf("invalid load: %d %s (%d bytes loaded)", code, body, len(store.loaded))
	}
}

func TestBackupAndLoad(t *testing.T) {
	_, plain := newTestServer(t, leaderStore(), nil)
	if code, _, _ := do(t, "GET", plain.URL+"/db/backup", "", ""); code != 501 {
		t.Fatalf("backup without Backuper: %d", code)
	}

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

	// An SQLite file goes to Load; anything else runs as SQL.
	file := append(append([]byte(nil), sqliteHeader...), 1, 2, 3)
	if code, _, body := do(t, "POST", ts.URL+"/db/load", "application/octet-stream", string(file)); code != 200 || !bytes.Equal(store.loaded, file) {
		t.Fatalf("load file: %d %s", code, body)
	}
	code, _, body = do(t, "POST", ts.URL+"/db/load", "text/plain", "CREATE TABLE t (x); INSERT INTO t VALUES(1);")
	if code != 200 || store.executedCount() != 1 || store.executed[0].Statements[0].SQL != "CREATE TABLE t (x); INSERT INTO t VALUES(1);" {
		t.Fatalf("load dump: %d %s", code, body)
	}
}
