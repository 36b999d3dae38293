package fsm

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// detEntry is an execute entry with a fixed timestamp and seed.
func detEntry(t testing.TB, index uint64, ts int64, seed uint64, stmts ...api.Statement) *raft.Log {
	t.Helper()
	return commandLog(t, index, &Command{Type: CmdExecute, Timestamp: ts, Seed: seed, Request: &api.Request{Statements: stmts}})
}

func checksumMarker(t testing.TB, index uint64) *raft.Log {
	t.Helper()
	return commandLog(t, index, &Command{Type: CmdChecksum, Timestamp: time.Now().UnixNano(), Seed: 7})
}

// determinismEntries exercise every function that reads the clock or
// chance, in statements, DEFAULT clauses and a trigger.
func determinismEntries(t testing.TB, ts int64) []*raft.Log {
	t.Helper()
	return []*raft.Log{
		detEntry(t, 1, ts, 11,
			stmt(`CREATE TABLE t (id INTEGER PRIMARY KEY, created TEXT DEFAULT CURRENT_TIMESTAMP,
				d TEXT DEFAULT CURRENT_DATE, tm TEXT DEFAULT CURRENT_TIME, r INTEGER DEFAULT (random()), v TEXT)`),
			stmt(`CREATE TABLE audit (id INTEGER PRIMARY KEY, t_id INTEGER, at TEXT, tag BLOB)`),
			stmt(`CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN
				INSERT INTO audit (t_id, at, tag) VALUES (new.id, datetime('now'), randomblob(8));
			END`),
			stmt(`CREATE TABLE f (k TEXT PRIMARY KEY, val) WITHOUT ROWID`),
		),
		detEntry(t, 2, ts, 22,
			stmt(`INSERT INTO t (v) VALUES ('a'), ('b'), ('c'), ('d')`),
			stmt(`INSERT INTO t (v) SELECT v || '2' FROM t ORDER BY RANDOM()`),
		),
		detEntry(t, 3, ts+int64(1500*time.Millisecond), 33,
			stmt(`INSERT INTO f VALUES
				('random', random()), ('randomblob', randomblob(16)),
				('current_timestamp', CURRENT_TIMESTAMP), ('current_date', CURRENT_DATE), ('current_time', CURRENT_TIME),
				('date', date('now')), ('date0', date()), ('time', time('now')), ('time0', time()),
				('datetime', datetime('now')), ('datetime0', datetime()), ('datetime_NOW', datetime('NOW', '+1 day')),
				('julianday', julianday('now')), ('julianday0', julianday()),
				('unixepoch', unixepoch('now')), ('unixepoch0', unixepoch()), ('unixepoch_subsec', unixepoch('now', 'subsec')),
				('strftime', strftime('%Y-%m-%d %H:%M:%f', 'now')), ('strftime0', strftime('%s')),
				('subsec', datetime('subsec')), ('timediff', timediff('now', '2000-01-01')),
				('concat', CURRENT_DATE || ' ' || CURRENT_TIME)`),
		),
	}
}

func applyAll(t *testing.T, f *FSM, logs []*raft.Log) {
	t.Helper()
	for _, r := range f.ApplyBatch(logs) {
		if resp, ok := r.(*api.Response); ok {
			noErrors(t, resp.Results)
		} else if r != nil {
			t.Fatalf("apply: %v", r)
		}
	}
}

func queryRowsT(t *testing.T, f *FSM, q string) [][]api.Value {
	t.Helper()
	res, err := f.Query(context.Background(), &api.Request{Statements: []api.Statement{{SQL: q}}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Error != "" {
		t.Fatalf("%s: %s", q, res[0].Error)
	}
	return res[0].Rows
}

func TestDeterministicApply(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC).UnixNano()
	a, b := newFSM(t), newFSM(t)
	// One applies in one batch, the other entry by entry.
	applyAll(t, a, determinismEntries(t, ts))
	for _, l := range determinismEntries(t, ts) {
		applyAll(t, b, []*raft.Log{l})
	}
	ctx := context.Background()
	ia, sa, err := a.Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ib, sb, err := b.Checksum(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ia != 3 || ib != 3 || sa != sb {
		t.Fatalf("checksums differ: %d %s vs %d %s", ia, sa, ib, sb)
	}

	// Plausible values: the entry's time, and random values that vary.
	rows := queryRowsT(t, a, "SELECT created, d, tm, r FROM t ORDER BY id")
	if len(rows) != 8 {
		t.Fatalf("%d rows in t", len(rows))
	}
	seen := map[int64]bool{}
	for _, r := range rows {
		if r[0] != "2024-05-06 07:08:09" || r[1] != "2024-05-06" || r[2] != "07:08:09" {
			t.Fatalf("defaults %v, want the entry's timestamp", r)
		}
		seen[r[3].(int64)] = true
	}
	if len(seen) != 8 {
		t.Fatalf("DEFAULT (random()) gave %d distinct values for 8 rows", len(seen))
	}
	audit := queryRowsT(t, a, "SELECT at, tag FROM audit ORDER BY id")
	tags := map[string]bool{}
	for _, r := range audit {
		if r[0] != "2024-05-06 07:08:09" {
			t.Fatalf("trigger datetime('now') = %v", r[0])
		}
		tag := r[1].([]byte)
		if len(tag) != 8 {
			t.Fatalf("randomblob(8) gave %d bytes", len(tag))
		}
		tags[string(tag)] = true
	}
	if len(audit) != 8 || len(tags) != 8 {
		t.Fatalf("trigger rows %d, distinct tags %d", len(audit), len(tags))
	}

	got := map[string]api.Value{}
	for _, r := range queryRowsT(t, a, "SELECT k, val FROM f") {
		got[r[0].(string)] = r[1]
	}
	ts3 := time.Unix(0, ts).Add(1500 * time.Millisecond).UTC() // 07:08:10.623
	want := map[string]api.Value{
		"current_timestamp": "2024-05-06 07:08:10", "current_date": "2024-05-06", "current_time": "07:08:10",
		"date": "2024-05-06", "date0": "2024-05-06", "time": "07:08:10", "time0": "07:08:10",
		"datetime": "2024-05-06 07:08:10", "datetime0": "2024-05-06 07:08:10", "datetime_NOW": "2024-05-07 07:08:10",
		"unixepoch": ts3.Unix(), "unixepoch0": ts3.Unix(), "unixepoch_subsec": float64(ts3.UnixMilli()) / 1000,
		"strftime": "2024-05-06 07:08:10.623", "strftime0": "1714979290",
		"subsec": "2024-05-06 07:08:10.623", "concat": "2024-05-06 07:08:10",
		"timediff": "+0024-04-05 07:08:10.623",
	}
	for k, w := range want {
		if !reflect.DeepEqual(got[k], w) {
			t.Errorf("%s = %#v, want %#v", k, got[k], w)
		}
	}
	jd := got["julianday"].(float64)
	if wantJD := float64(ts3.UnixMilli())/86400000 + 2440587.5; jd-wantJD > 1e-8 || wantJD-jd > 1e-8 || got["julianday0"] != jd {
		t.Errorf("julianday = %v, %v, want %v", jd, got["julianday0"], wantJD)
	}
	if _, ok := got["random"].(int64); !ok {
		t.Errorf("random() = %#v", got["random"])
	}
	// An untyped BLOB answers as a string, as in rqlite (types_rqlite.go).
	if b, ok := got["randomblob"].(string); !ok || len(b) != 16 {
		t.Errorf("randomblob(16) = %#v", got["randomblob"])
	}

	// Another seed gives other random values and another checksum.
	c := newFSM(t)
	logs := determinismEntries(t, ts)
	cmd, _ := DecodeCommand(logs[1].Data)
	cmd.Seed++
	logs[1] = commandLog(t, 2, cmd)
	applyAll(t, c, logs)
	if _, sc, _ := c.Checksum(ctx); sc == sa {
		t.Fatal("a different seed gave the same checksum")
	}
}

// TestExplicitDatesMatchSQLite checks that the overrides return what
// SQLite's own functions return for arguments that do not read the clock.
func TestExplicitDatesMatchSQLite(t *testing.T) {
	exprs := []string{
		"date('2024-02-29')", "date('2024-02-29', '+1 year')", "time('12:34:56.789')",
		"datetime('2024-01-01 10:00', '+90 minutes', 'start of day')", "datetime(1700000000, 'unixepoch')",
		"datetime(2460000.5)", "datetime('2024-01-01', 'subsec')", "julianday('2000-01-01 12:00')",
		"unixepoch('2024-01-01')", "unixepoch('2024-01-01 00:00:00.25', 'subsec')", "strftime('%j %W %w %f', '2024-03-10 01:02:03.456')",
		"strftime('%Y', 0)", "date(NULL)", "date('garbage')", "datetime('2024-01-01', 'weekday 0')",
		"timediff('2024-03-01', '2024-02-01')", "date(2460000)", "strftime('%s', '2024-01-01T00:00:00Z')",
		"datetime('2024-01-01 00:00:00+02:00')", "julianday(X'00')", "strftime()", "date('2024-01-01', 'auto')",
	}
	plain, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	f := newFSM(t)
	var s seq
	for _, e := range exprs {
		var want any
		if err := plain.QueryRow("SELECT " + e).Scan(&want); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		res := s.exec(t, f, stmt("SELECT "+e))
		if res[0].Error != "" {
			t.Fatalf("%s: %s", e, res[0].Error)
		}
		if got := res[0].Rows[0][0]; !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, SQLite says %#v", e, got, want)
		}
	}
}

func TestReadsKeepRealTime(t *testing.T) {
	f := newFSM(t)
	var s seq
	// An entry from long ago must not leak into reads.
	applyAll(t, f, []*raft.Log{detEntry(t, s.idx(), 1e9, 1, stmt("CREATE TABLE x (a)"))})
	rows := queryRowsT(t, f, "SELECT unixepoch('now', 'subsec'), unixepoch(CURRENT_TIMESTAMP), random() = random()")
	now := float64(time.Now().UnixMilli()) / 1000
	if got := rows[0][0].(float64); got < now-5 || got > now+5 {
		t.Fatalf("read saw now = %v, want about %v", got, now)
	}
	if got := rows[0][1].(int64); float64(got) < now-5 {
		t.Fatalf("read saw CURRENT_TIMESTAMP = %v", got)
	}
}

func TestNondeterministicStatementsRefused(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (x)"), stmt("INSERT INTO foo VALUES (1)"))
	dir := t.TempDir()
	vacuumFile := filepath.Join(dir, "copy.db")
	for q, want := range map[string]string{
		"ATTACH 'other.db' AS o":                                 "ATTACH",
		"DETACH o":                                               "ATTACH and DETACH",
		"SELECT load_extension('x')":                             "load_extension",
		"INSERT INTO foo SELECT load_extension('x')":             "load_extension",
		"PRAGMA journal_mode = DELETE":                           "connection setting",
		"PRAGMA synchronous = FULL":                              "connection setting",
		"PRAGMA wal_checkpoint(TRUNCATE)":                        "connection setting",
		"PRAGMA wal_checkpoint":                                  "connection setting",
		"PRAGMA locking_mode = EXCLUSIVE":                        "connection setting",
		"PRAGMA temp_store = FILE":                               "connection setting",
		"PRAGMA writable_schema = ON":                            "connection setting",
		"PRAGMA cache_size = 10":                                 "connection setting",
		"INSERT INTO foo VALUES (total_changes())":               "total_changes",
		"INSERT INTO foo SELECT sqlite_offset(x) FROM foo":       "sqlite_offset",
		"INSERT INTO foo VALUES (datetime('now', 'localtime'))":  "time zone",
		"INSERT INTO foo VALUES (datetime('2024-01-01', 'UTC'))": "time zone",
		"UPDATE foo SET x = strftime('%H', 'now', 'localtime')":  "time zone",
		"VACUUM INTO '" + vacuumFile + "'":                       "VACUUM",
		"BEGIN":                                                  "transaction control",
		"CREATE TRIGGER tr AFTER INSERT ON foo BEGIN SELECT 1; END; INSERT INTO foo VALUES (total_changes())": "total_changes",
	} {
		before := dump(t, f)
		got := s.exec(t, f, stmt(q))
		if !strings.Contains(got[0].Error, want) {
			t.Errorf("%q: error %q, want it to mention %q", q, got[0].Error, want)
		}
		if after := dump(t, f); !reflect.DeepEqual(before, after) {
			t.Errorf("%q changed the database", q)
		}
	}
	if _, err := os.Stat(vacuumFile); err == nil {
		t.Error("VACUUM INTO wrote a file")
	}
	if _, err := os.Stat(filepath.Join(f.path, "..", "other.db")); err == nil {
		t.Error("ATTACH created a file")
	}
	// Reads may still use them.
	rows := queryRowsT(t, f, "SELECT total_changes() >= 0, datetime('now', 'localtime') IS NOT NULL")
	if rows[0][0] != int64(1) || rows[0][1] != int64(1) {
		t.Fatalf("reads: %v", rows)
	}
}

func TestChecksumMarkers(t *testing.T) {
	ts := time.Now().UnixNano()
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := openFSM(t, dirA), openFSM(t, dirB)
	logs := determinismEntries(t, ts)
	logs = append(logs, checksumMarker(t, 4),
		detEntry(t, 5, ts, 5, stmt("INSERT INTO t (v) VALUES ('later')")),
		checksumMarker(t, 6))
	// a applies in one batch, b in two that split elsewhere.
	applyAll(t, a, logs)
	applyAll(t, b, logs[:2])
	applyAll(t, b, logs[2:])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, idx := range []uint64{4, 6} {
		sa, err := a.ChecksumAt(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		sb, err := b.ChecksumAt(ctx, idx)
		if err != nil {
			t.Fatal(err)
		}
		if sa != sb || len(sa) != 64 {
			t.Fatalf("index %d: %q vs %q", idx, sa, sb)
		}
	}
	s4, _ := a.ChecksumAt(ctx, 4)
	s6, _ := a.ChecksumAt(ctx, 6)
	if s4 == s6 {
		t.Fatal("checksums before and after an insert are equal")
	}
	// The marker checksum equals the current one at the same index.
	if idx, cur, _ := a.Checksum(ctx); idx != 6 || cur != s6 {
		t.Fatalf("Checksum() = %d %s, marker %s", idx, cur, s6)
	}
	if _, err := a.ChecksumAt(ctx, 5); err == nil {
		t.Fatal("ChecksumAt a non-marker index succeeded")
	}
	if idx, sum, _ := a.LastChecksum(); idx != 6 || sum != s6 {
		t.Fatalf("LastChecksum = %d %s", idx, sum)
	}

	// A row changed behind the FSM's back changes the checksum.
	b.Close()
	db, err := sql.Open("sqlite", dsn(filepath.Join(dirB, DBFile)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("UPDATE t SET v = 'tampered' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	b = openFSM(t, dirB)
	applyAll(t, a, []*raft.Log{checksumMarker(t, 7)})
	applyAll(t, b, []*raft.Log{checksumMarker(t, 7)})
	sa, _ := a.ChecksumAt(ctx, 7)
	sb, _ := b.ChecksumAt(ctx, 7)
	if sa == sb {
		t.Fatal("tampered replica has the same checksum")
	}
	// Replayed markers are not pinned again.
	if _, err := b.ChecksumAt(ctx, 6); err == nil {
		t.Fatal("a restarted node has a checksum for an index it applied before")
	}
}

func TestChecksumSeesStorageClass(t *testing.T) {
	sums := map[string]bool{}
	for _, v := range []string{"1", "1.0", "'1'", "x'31'", "NULL"} {
		f := newFSM(t)
		var s seq
		noErrors(t, s.exec(t, f, stmt("CREATE TABLE x (a)"), stmt("INSERT INTO x VALUES ("+v+")")))
		_, sum, err := f.Checksum(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		sums[sum] = true
	}
	if len(sums) != 5 {
		t.Fatalf("%d distinct checksums for 5 storage classes", len(sums))
	}
}
