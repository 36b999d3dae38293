package fsm

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/sqltest"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/snapshot"
)

const quotedRows = "SELECT quote(id), quote(s), quote(r), quote(b), quote(n) FROM typed ORDER BY id"

func fillTyped(t *testing.T, f *FSM, s *seq) {
	t.Helper()
	noErrors(t, s.exec(t, f,
		stmt("CREATE TABLE typed (id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT, r REAL, b BLOB, n)"),
		stmt("INSERT INTO typed VALUES (1, ?, 0.1, x'00ff27', NULL)", "it's \"q\"\nline"),
		stmt("INSERT INTO typed VALUES (2, '', 1e300, x'', 9223372036854775807)"),
		stmt("INSERT INTO typed VALUES (3, 'ü😀', -2.5e-310, NULL, 1.0)"),
		stmt("INSERT INTO typed VALUES (7, NULL, 0.30000000000000004, NULL, 'x')"),
		stmt("CREATE TABLE other (x)"),
		stmt("INSERT INTO other VALUES (42)"),
		stmt("CREATE INDEX typed_s ON typed (s)"),
		stmt("CREATE VIEW typed_v AS SELECT id FROM typed"),
		stmt("CREATE TRIGGER typed_tr AFTER DELETE ON typed BEGIN DELETE FROM other; END"),
	))
}

func openPlain(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestBackupBinaryAndDump(t *testing.T) {
	f := newFSM(t)
	var s seq
	fillTyped(t, f, &s)
	ctx := context.Background()
	live := openPlain(t, f.path)
	want := sqltest.Rows(t, live, quotedRows)

	dir := t.TempDir()
	var bin bytes.Buffer
	if err := f.Backup(ctx, &bin, api.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	binPath := filepath.Join(dir, "b.db")
	os.WriteFile(binPath, bin.Bytes(), 0o644)
	bdb := openPlain(t, binPath)
	if got := sqltest.Rows(t, bdb, quotedRows); !reflect.DeepEqual(got, want) {
		t.Errorf("binary backup rows %v, want %v", got, want)
	}
	if got := sqltest.Rows(t, bdb, "SELECT name FROM sqlite_master WHERE name LIKE '%raftlite%'"); len(got) != 0 {
		t.Errorf("internal objects in the backup: %v", got)
	}

	var dump bytes.Buffer
	if err := f.Backup(ctx, &dump, api.BackupOptions{SQL: true}); err != nil {
		t.Fatal(err)
	}
	text := dump.String()
	if !strings.HasPrefix(text, "PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\nCREATE TABLE typed") || !strings.HasSuffix(text, "COMMIT;\n") ||
		strings.Contains(text, "_raftlite") || !strings.Contains(text, "INSERT INTO sqlite_sequence VALUES('typed',7);") {
		t.Errorf("dump:\n%s", text)
	}
	if strings.Index(text, "CREATE INDEX") < strings.Index(text, "INSERT INTO \"other\"") {
		t.Errorf("indexes must follow the tables' rows:\n%s", text)
	}
	replay := openPlain(t, filepath.Join(dir, "replay.db"))
	if _, err := replay.Exec(text); err != nil {
		t.Fatalf("replay: %v\n%s", err, text)
	}
	if got := sqltest.Rows(t, replay, quotedRows); !reflect.DeepEqual(got, want) {
		t.Errorf("replayed rows %v, want %v", got, want)
	}
	if got, w := sqltest.Rows(t, replay, "SELECT type, name, sql FROM sqlite_master ORDER BY name"),
		sqltest.Rows(t, bdb, "SELECT type, name, sql FROM sqlite_master ORDER BY name"); !reflect.DeepEqual(got, w) {
		t.Errorf("replayed schema %v, want %v", got, w)
	}

	var part bytes.Buffer
	if err := f.Backup(ctx, &part, api.BackupOptions{SQL: true, Tables: []string{"OTHER"}}); err != nil {
		t.Fatal(err)
	}
	if p := part.String(); strings.Contains(p, "typed") || !strings.Contains(p, "INSERT INTO \"other\" VALUES(42);") {
		t.Errorf("tables=other dump:\n%s", p)
	}
}

func TestLoadReplacesDatabaseKeepingNodes(t *testing.T) {
	ctx := context.Background()
	src := newFSM(t)
	var s seq
	fillTyped(t, src, &s)
	var bin bytes.Buffer
	if err := src.Backup(ctx, &bin, api.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	want := sqltest.Rows(t, openPlain(t, src.path), quotedRows)

	dst := newFSM(t)
	dst.ApplyBatch([]*raft.Log{commandLog(t, 1, &Command{Type: CmdSetNode, Node: &NodeMeta{ID: "1", APIAddr: "http://a:4001"}})})
	noErrors(t, execAt(t, dst, 2, &api.Request{Statements: []api.Statement{stmt("CREATE TABLE old (x)")}}))
	res := response(t, dst.Apply(commandLog(t, 3, &Command{Type: CmdExecute, Request: &api.Request{
		Statements: []api.Statement{stmt("INSERT INTO old VALUES (1)")}, ClientID: "c1", Seq: 1}})))
	noErrors(t, res.Results)

	up := filepath.Join(t.TempDir(), "up.db")
	os.WriteFile(up, bin.Bytes(), 0o644)
	if err := dst.PrepareLoad(ctx, up); err != nil {
		t.Fatal(err)
	}
	if err := SetLoadIndex(ctx, up, 500); err != nil {
		t.Fatal(err)
	}
	var stream bytes.Buffer
	if err := snapshot.WriteFile(&stream, up, 500); err != nil {
		t.Fatal(err)
	}
	if err := dst.Restore(io.NopCloser(&stream)); err != nil {
		t.Fatal(err)
	}
	if got := dst.AppliedIndex(); got != 500 {
		t.Errorf("applied index %d, want 500", got)
	}
	if got := dst.Nodes(); !reflect.DeepEqual(got, map[string]NodeMeta{"1": {ID: "1", APIAddr: "http://a:4001"}}) {
		t.Errorf("nodes after load: %v", got)
	}
	live := openPlain(t, dst.path)
	if got := sqltest.Rows(t, live, quotedRows); !reflect.DeepEqual(got, want) {
		t.Errorf("rows after load %v, want %v", got, want)
	}
	if got := sqltest.Rows(t, live, "SELECT COUNT(*) FROM _raftlite_sessions"); got[0][0] != "0" {
		t.Errorf("sessions after load: %v", got)
	}
	if got := sqltest.Rows(t, live, "SELECT name FROM sqlite_master WHERE name = 'old'"); len(got) != 0 {
		t.Errorf("the old table survived the load")
	}
	noErrors(t, execAt(t, dst, 501, &api.Request{Statements: []api.Statement{stmt("INSERT INTO other VALUES (1)")}}))
}

func TestPrepareLoadRejectsBadFiles(t *testing.T) {
	ctx := context.Background()
	src := newFSM(t)
	var s seq
	fillTyped(t, src, &s)
	for i := 0; i < 50; i++ {
		noErrors(t, s.exec(t, src, stmt("INSERT INTO other SELECT randomblob(3000)")))
	}
	var bin bytes.Buffer
	if err := src.Backup(ctx, &bin, api.BackupOptions{}); err != nil {
		t.Fatal(err)
	}
	dst := newFSM(t)
	dir := t.TempDir()
	for name, body := range map[string][]byte{
		"truncated": bin.Bytes()[:bin.Len()/2],
		"text":      []byte("CREATE TABLE x (y);"),
		"garbage":   append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0x5a}, 8192)...),
	} {
		p := filepath.Join(dir, name)
		os.WriteFile(p, body, 0o644)
		if err := dst.PrepareLoad(ctx, p); !errors.Is(err, api.ErrInvalidLoad) {
			t.Errorf("%s: %v, want api.ErrInvalidLoad", name, err)
		}
	}
}
