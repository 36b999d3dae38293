package fsm

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/internal/sqltest"
)

// schemaRows is every object of a database but raftlite's own.
const schemaRows = "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '_raftlite%' AND name NOT LIKE 'sqlite_autoindex__raftlite%' ORDER BY name"

func TestBuildFromDumpRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := newFSM(t)
	var s seq
	fillTyped(t, src, &s)
	var dump bytes.Buffer
	if err := src.Backup(ctx, &dump, api.BackupOptions{SQL: true}); err != nil {
		t.Fatal(err)
	}
	live := openPlain(t, src.path)
	path := filepath.Join(t.TempDir(), "built.db")
	// One byte at a time: the splitter must not depend on read sizes.
	if err := BuildFromDump(ctx, iotest.OneByteReader(bytes.NewReader(dump.Bytes())), path); err != nil {
		t.Fatalf("build: %v\n%s", err, dump.String())
	}
	built := openPlain(t, path)
	for _, q := range []string{quotedRows, "SELECT * FROM other", schemaRows, "SELECT * FROM sqlite_sequence"} {
		if got, want := sqltest.Rows(t, built, q), sqltest.Rows(t, live, q); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", q, got, want)
		}
	}
	// And it loads like an uploaded file.
	dst := newFSM(t)
	if err := dst.PrepareLoad(ctx, path); err != nil {
		t.Fatal(err)
	}
}

func TestBuildFromDumpSqlite3Style(t *testing.T) {
	// What sqlite3's .dump writes, with comments, quotes holding ';' and
	// "--", a trigger whose body holds ';' and CASE ... END, and a last
	// statement without its ';'.
	dump := `PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
INSERT INTO parent VALUES(1,'a;b -- not a comment');
INSERT INTO parent VALUES(2,'it''s /* not */ a comment');
-- a comment; with a semicolon
CREATE TABLE child (id INTEGER PRIMARY KEY, p REFERENCES parent(id), "odd;name" TEXT);
INSERT INTO child VALUES(1,3,'x'); /* dangling reference: FKs are off */
CREATE TABLE log (msg);
CREATE TRIGGER child_ins AFTER INSERT ON child BEGIN
  INSERT INTO log VALUES (CASE WHEN new.p > 2 THEN 'big;' ELSE 'small' END);
  INSERT INTO log VALUES ('end');
END;
INSERT INTO child VALUES(2,1,'y');
CREATE INDEX [child;p] ON child (p);
COMMIT;
SELECT 1`
	path := filepath.Join(t.TempDir(), "built.db")
	if err := BuildFromDump(context.Background(), strings.NewReader(dump), path); err != nil {
		t.Fatal(err)
	}
	db := openPlain(t, path)
	for q, want := range map[string][][]string{
		"SELECT name FROM parent ORDER BY id":                 {{"a;b -- not a comment"}, {"it's /* not */ a comment"}},
		`SELECT id, p, "odd;name" FROM child ORDER BY id`:     {{"1", "3", "x"}, {"2", "1", "y"}},
		"SELECT msg FROM log ORDER BY rowid":                  {{"small"}, {"end"}},
		"SELECT name FROM sqlite_master WHERE type = 'index'": {{"child;p"}},
	} {
		if got := sqltest.Rows(t, db, q); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", q, got, want)
		}
	}
}

func TestBuildFromDumpErrors(t *testing.T) {
	for name, tt := range map[string]struct {
		dump string
		line int
		msg  string
	}{
		"syntax":     {"CREATE TABLE t (x);\nINSERT INTO t VALUES (1);\n\nNOT SQL AT ALL;\n", 4, "syntax error"},
		"missing":    {"BEGIN TRANSACTION;\nINSERT INTO nope VALUES (1);\nCOMMIT;\n", 2, "no such table"},
		"attach":     {"CREATE TABLE t (x);\nATTACH DATABASE '/tmp/x.db' AS x;\n", 2, "ATTACH"},
		"pragma":     {"PRAGMA journal_mode=OFF;\n", 1, "PRAGMA"},
		"extension":  {"SELECT load_extension('x');\n", 1, "load_extension"},
		"internal":   {"CREATE TABLE _raftlite_meta (k, v);\n", 1, "reserved"},
		"temp":       {"CREATE TEMP TABLE t (x);\n", 1, "temporary"},
		"rollback":   {"BEGIN;\nCREATE TABLE t (x);\nROLLBACK; -- due to errors\n", 3, "transaction"},
		"quote":      {"CREATE TABLE t (x);\nINSERT INTO t VALUES ('open\n", 2, "unterminated"},
		"comment":    {"CREATE TABLE t (x); /* open\n", 1, "unterminated"},
		"trigger":    {"CREATE TABLE t (x);\nCREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1;\n", 2, "incomplete"},
		"empty":      {" \n-- nothing\n", 0, "no SQL statements"},
		"binary":     {"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR;", 3, "NUL"},
		"nul":        {"SELECT 1;\x00", 1, "NUL"},
		"vacuum":     {"VACUUM;", 1, ""},
		"constraint": {"CREATE TABLE t (x UNIQUE);\nINSERT INTO t VALUES (1);\nINSERT INTO t VALUES (1);\n", 3, "UNIQUE"},
	} {
		path := filepath.Join(t.TempDir(), "built.db")
		err := BuildFromDump(context.Background(), strings.NewReader(tt.dump), path)
		var de *DumpError
		if !errors.As(err, &de) || !errors.Is(err, api.ErrInvalidLoad) {
			t.Errorf("%s: %v, want a DumpError", name, err)
			continue
		}
		if de.Line != tt.line || !strings.Contains(de.Msg, tt.msg) {
			t.Errorf("%s: %v, want line %d and %q", name, err, tt.line, tt.msg)
		}
	}
}

func TestBuildFromDumpOfEmptyDatabase(t *testing.T) {
	ctx := context.Background()
	src := newFSM(t)
	var dump bytes.Buffer
	if err := src.Backup(ctx, &dump, api.BackupOptions{SQL: true}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "built.db")
	if err := BuildFromDump(ctx, &dump, path); err != nil {
		t.Fatalf("build: %v\n%s", err, dump.String())
	}
	if err := newFSM(t).PrepareLoad(ctx, path); err != nil {
		t.Fatalf("an empty database's dump does not load: %v", err)
	}
}
