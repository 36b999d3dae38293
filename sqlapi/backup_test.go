package sqlapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"strings"
	"testing"
)

// backupStore adds Backup and Load to fakeStore.
type backupStore struct {
	*fakeStore
	loaded []byte
}

func (s *backupStore) Backup(_ context.Context, w io.Writer, sqlDump bool) error {
	if sqlDump {
		_, err := io.WriteString(w, "CREATE TABLE t (x);\n")
		return err
	}
	_, err := w.Write(append(append([]byte(nil), sqliteHeader...), "rest"...))
	return err
}

func (s *backupStore) Load(_ context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	s.loaded = b
	return err
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
