package e2e

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"crypto/rand"
	"database/sql"
	"fmt"
	"github.com/raftlite/raftlite/internal/sqltest"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// backupTo downloads GET path from n into a file in dir.
func backupTo(t *testing.T, n *node, path, dir, name string) string {
	t.Helper()
	code, body, err := n.call("GET", path, nil, "")
	if err != nil || code != 200 {
		t.Fatalf("%s GET %s: %d %v %.200s", n.name, path, code, err, body)
	}
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// openFile opens an SQLite file (or replays an SQL dump into a new one).
func openFile(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// typedRows is the content of table typed, every value rendered exactly.
const typedRows = "SELECT quote(id), quote(s), quote(r), quote(b), quote(n) FROM typed ORDER BY id"

// TestBackupLive backs up a cluster while it is being written to, then
// quiesced, in both formats, and checks what the backups restore to.
func TestBackupLive(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	follower := c.others(leader)[0]
	createTable(t, leader)
	leader.mustExecute(t,
		"CREATE TABLE typed (id INTEGER PRIMARY KEY, s TEXT, r REAL, b BLOB, n)",
		[]any{"INSERT INTO typed VALUES (1, ?, 0.1, x'00ff27', NULL)", "it's \"quoted\"\nnext line"},
		"INSERT INTO typed VALUES (2, '', 1e300, x'', 9223372036854775807)",
		"INSERT INTO typed VALUES (3, 'ü€😀', -2.5e-310, NULL, 1.0)",
		"INSERT INTO typed VALUES (4, NULL, 3.0, NULL, 'x')",
		"CREATE INDEX typed_s ON typed (s)",
		"CREATE VIEW typed_v AS SELECT id FROM typed",
		"CREATE TRIGGER typed_tr AFTER DELETE ON typed BEGIN SELECT 1; END",
	)
	w := startWriter(c.nodes, 0)
	w.waitAcked(t, 30, "before the backup")
	dir := t.TempDir()

	// A backup of a database being written to holds rows 1..k for some k
	// between the writes acknowledged before it and those after it.
	before := int(w.last.Load())
	live := backupTo(t, follower, "/db/backup", dir, "live.db") // forwarded to the leader
	after := int(w.last.Load())
	w.waitAcked(t, 10, "after the backup")
	ids := sqltest.Rows(t, openFile(t, live), "SELECT id FROM t ORDER BY id")
	if len(ids) < before || len(ids) > after+1 {
		t.Errorf("live backup holds %d rows; %d were acknowledged before it, %d after", len(ids), before, after)
	}
	for i, r := range ids {
		if r[0] != strconv.Itoa(i+1) {
			t.Fatalf("live backup row %d has id %s: not a consistent state", i, r[0])
		}
	}
	last := w.finish(t)

	// Quiesced: binary and SQL backups equal the table exactly.
	strong, err := leader.rows("strong", "SELECT COUNT(*) FROM t")
	if err != nil || fmt.Sprint(strong[0][0]) != strconv.Itoa(last) {
		t.Fatalf("strong count %v %v, want %d", strong, err, last)
	}
	want := sqltest.Rows(t, openFile(t, live), typedRows)
	bin := openFile(t, backupTo(t, follower, "/db/backup?fmt=binary&level=none", dir, "quiet.db"))
	waitFor(t, waitTimeout, "follower caught up", func() error {
		n, err := follower.count("none")
		if err == nil && n != last {
			err = fmt.Errorf("follower has %d rows", n)
		}
		return err
	})
	bin = openFile(t, backupTo(t, follower, "/db/backup?fmt=binary&level=none", dir, "quiet.db"))
	if got := sqltest.Rows(t, bin, "SELECT COUNT(*), MIN(id), MAX(id) FROM t"); !reflect.DeepEqual(got, [][]string{{strconv.Itoa(last), "1", strconv.Itoa(last)}}) {
		t.Errorf("quiesced backup: %v, want %d rows", got, last)
	}
	if got := sqltest.Rows(t, bin, typedRows); !reflect.DeepEqual(got, want) {
		t.Errorf("typed rows in binary backup:\n%v\nwant\n%v", got, want)
	}
	if got := sqltest.Rows(t, bin, "SELECT name FROM sqlite_master WHERE name LIKE '\\_raftlite%' ESCAPE '\\'"); len(got) > 0 {
		t.Errorf("internal objects in the backup: %v", got)
	}
	if got := sqltest.Rows(t, bin, "PRAGMA journal_mode"); got[0][0] != "delete" {
		t.Errorf("backup journal mode %v, want a plain (delete) database", got)
	}

	// The SQL dump replays into a fresh database with the same content.
	code, dump, err := leader.call("GET", "/db/backup?fmt=sql", nil, "")
	if err != nil || code != 200 {
		t.Fatalf("sql backup: %d %v", code, err)
	}
	if bytes.Contains(dump, []byte("_raftlite")) {
		t.Errorf("the dump mentions internal tables")
	}
	replay := openFile(t, filepath.Join(dir, "replay.db"))
	if _, err := replay.Exec(string(dump)); err != nil {
		t.Fatalf("replaying the dump: %v", err)
	}
	if got := sqltest.Rows(t, replay, typedRows); !reflect.DeepEqual(got, want) {
		t.Errorf("typed rows after replaying the dump:\n%v\nwant\n%v", got, want)
	}
	if got := sqltest.Rows(t, replay, "SELECT COUNT(*) FROM t"); got[0][0] != strconv.Itoa(last) {
		t.Errorf("replayed dump has %v rows in t, want %d", got, last)
	}
	if got := sqltest.Rows(t, replay, "SELECT type, name FROM sqlite_master ORDER BY name"); len(got) != 5 {
		t.Errorf("replayed schema: %v", got)
	}
	if cli, err := exec.LookPath("sqlite3"); err == nil {
		cmd := exec.Command(cli, "-bail", filepath.Join(dir, "cli.db"))
		cmd.Stdin = bytes.NewReader(dump)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("sqlite3 replaying the dump: %v: %s", err, out)
		}
		cmd = exec.Command(cli, filepath.Join(dir, "cli.db"), "SELECT COUNT(*) FROM t")
		if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != strconv.Itoa(last) {
			t.Errorf("sqlite3 count after replay: %q %v", out, err)
		}
	}

	// compress and tables=.
	code, gz, err := leader.call("GET", "/db/backup?fmt=sql&compress&tables=typed", nil, "")
	if err != nil || code != 200 {
		t.Fatalf("compressed backup: %d %v", code, err)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz))
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(zr)
	if !bytes.Contains(part, []byte("CREATE TABLE typed")) || bytes.Contains(part, []byte("CREATE TABLE t ")) ||
		!bytes.Contains(part, []byte("typed_s")) {
		t.Errorf("tables=typed dump:\n%s", part)
	}
}

// vmHWM returns the peak resident set size of n's process, in kB.
func vmHWM(t *testing.T, n *node) int {
	t.Helper()
	n.mu.Lock()
	pid := n.cmd.Process.Pid
	n.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

// makeDB writes an SQLite file of about mb megabytes: table big with
// incompressible payloads, and its content's fingerprint query answer.
func makeDB(t *testing.T, path string, mb int) {
	t.Helper()
	db := openFile(t, path)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("CREATE TABLE big (id INTEGER PRIMARY KEY, label TEXT, payload BLOB)"); err != nil {
		t.Fatal(err)
	}
	st, err := tx.Prepare("INSERT INTO big VALUES (?, ?, ?)")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1000) // four rows to a page
	for i := 1; i <= mb*1024; i++ {
		rand.Read(buf[:500]) // half random, half zeros: compressible 2:1
		if _, err := st.Exec(i, fmt.Sprintf("row %d", i), buf); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

const bigFingerprint = "SELECT COUNT(*), SUM(id), SUM(LENGTH(payload)), SUM(unicode(hex(payload))), MAX(hex(substr(payload, 1, 8))) FROM big"

// TestLoadFile loads a generated SQLite file (RAFTLITE_LOAD_MB, default 20)
// into the cluster through a follower: every node ends up with the same
// content, writes go on, a restarted node keeps it, memory stays bounded,
// and invalid uploads change nothing.
func TestLoadFile(t *testing.T) {
	mb := 20
	if v := os.Getenv("RAFTLITE_LOAD_MB"); v != "" {
		mb, _ = strconv.Atoi(v)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "upload.db")
	makeDB(t, file, mb)
	want := sqltest.Rows(t, openFile(t, file), bigFingerprint)

	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	seedRows(t, c, leader, 20)
	steady := map[string]int{}
	for _, n := range c.nodes {
		steady[n.name] = vmHWM(t, n)
	}

	follower := c.others(leader)[0]
	data, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Close()
	start := time.Now()
	code, body, err := follower.call("POST", "/db/load", data, "application/octet-stream")
	if err != nil || code != 200 || bytes.Contains(body, []byte(`"error"`)) {
		t.Fatalf("load: %d %v %s", code, err, body)
	}
	t.Logf("loaded %d MB in %v", mb, time.Since(start))

	waitSame := func(nodes ...*node) {
		t.Helper()
		waitFor(t, waitTimeout, "loaded data on every node", func() error {
			for _, n := range nodes {
				r, err := n.sql("/db/query?level=none", bigFingerprint)
				if err != nil {
					return fmt.Errorf("%s: %w", n.name, err)
				}
				if r.Results[0].Error != "" {
					return fmt.Errorf("%s: %s", n.name, r.Results[0].Error)
				}
				got := make([]string, len(r.Results[0].Values[0]))
				for i, v := range r.Results[0].Values[0] {
					got[i] = fmt.Sprint(v)
				}
				if !reflect.DeepEqual(got, want[0]) {
					return fmt.Errorf("%s: fingerprint %v, want %v", n.name, got, want[0])
				}
			}
			return nil
		})
	}
	waitSame(c.nodes...)
	for _, n := range c.nodes {
		peak := vmHWM(t, n)
		t.Logf("%s (leader %v): VmHWM %d kB before the load, %d kB after", n.name, n == leader, steady[n.name], peak)
		if peak >= 2*steady[n.name] {
			t.Errorf("%s: peak RSS %d kB during the load, steady state %d kB: not below 2x", n.name, peak, steady[n.name])
		}
	}
	// The load replaced the database: t is gone. Writes work afterwards.
	if _, err := leader.rows("strong", "SELECT COUNT(*) FROM t"); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("table t after the load: %v", err)
	}
	seedRows(t, c, leader, 5)
	if got, err := follower.statusUint("store.sqlite3.nodes"); err != nil || got != 3 {
		t.Errorf("member metadata after the load: %v %v", got, err)
	}

	// A restarted node keeps the loaded data.
	victim := c.others(c.waitLeader())[1]
	victim.kill(t)
	victim.start(t)
	waitReady(t, victim)
	waitSame(victim)
	waitIdentical(t, 5, c.nodes...)

	// Invalid uploads: 400, nothing changed.
	whole, _ := os.ReadFile(file)
	for name, body := range map[string][]byte{
		"truncated": whole[:len(whole)/2],
		"garbage":   append([]byte("SQLite format 3\x00"), bytes.Repeat([]byte{0xAB}, 8192)...),
	} {
		code, resp, err := follower.call("POST", "/db/load", bytes.NewReader(body), "application/octet-stream")
		if err != nil || code != 400 {
			t.Errorf("%s upload: %d %v %s, want 400", name, code, err, resp)
		}
	}
	waitSame(c.nodes...)
	waitIdentical(t, 5, c.nodes...)
}

// dumpOf returns n's own copy of the database as an SQL dump.
func dumpOf(n *node) (string, error) {
	code, body, err := n.call("GET", "/db/backup?fmt=sql&level=none", nil, "")
	if err != nil {
		return "", err
	}
	if code != 200 {
		return "", fmt.Errorf("%s: GET /db/backup: %d %.200s", n.name, code, body)
	}
	return string(body), nil
}

// waitSameDump waits until every node's dump is want, or, with want "",
// until they agree; it returns the dump.
func waitSameDump(t *testing.T, want string, nodes ...*node) string {
	t.Helper()
	var got string
	waitFor(t, waitTimeout, "the same database on every node", func() error {
		for i, n := range nodes {
			d, err := dumpOf(n)
			if err != nil {
				return err
			}
			if i == 0 && want == "" {
				got = d
				continue
			}
			if w := cmp.Or(want, got); d != w {
				return fmt.Errorf("%s: dump of %d bytes differs from the expected %d", n.name, len(d), len(w))
			}
			got = d
		}
		return nil
	})
	return got
}

// TestLoadDump loads SQL dumps through a follower (POST /db/load, the
// endpoint rqlite's shell .restore uses for a dump): the dump is executed on
// top of the database on every node (old tables kept) and answered with
// one result, a dump from /db/backup?fmt=sql loads back to the same
// database, and a dump that fails answers its error and changes nothing.
func TestLoadDump(t *testing.T) {
	// A dump in the style of sqlite3's .dump.
	var b strings.Builder
	b.WriteString("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n")
	b.WriteString("CREATE TABLE typed (id INTEGER PRIMARY KEY AUTOINCREMENT, s TEXT, r REAL, b BLOB, n);\n")
	for i := 1; i <= 3000; i++ {
		fmt.Fprintf(&b, "INSERT INTO typed VALUES(%d,'row %d; it''s -- not a comment',%d.25,X'%06x',NULL);\n", i, i, i, i)
	}
	b.WriteString("CREATE TABLE audit (who);\n")
	b.WriteString("DELETE FROM sqlite_sequence;\nINSERT INTO sqlite_sequence VALUES('typed',3000);\n")
	b.WriteString("CREATE INDEX typed_s ON typed (s);\n")
	b.WriteString("CREATE TRIGGER typed_del AFTER DELETE ON typed BEGIN\n  INSERT INTO audit VALUES (old.id);\nEND;\n")
	b.WriteString("CREATE VIEW typed_v AS SELECT id FROM typed;\nCOMMIT;\n")
	input := b.String()
	ref := openFile(t, filepath.Join(t.TempDir(), "ref.db"))
	if _, err := ref.Exec(input); err != nil {
		t.Fatal(err)
	}
	const schema = "SELECT type, name, sql FROM sqlite_master WHERE tbl_name <> 't' ORDER BY name"
	wantRows, wantSchema := sqltest.Rows(t, ref, typedRows), sqltest.Rows(t, ref, schema)

	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	seedRows(t, c, leader, 10)

	follower := c.others(leader)[0]
	code, body, err := follower.call("POST", "/db/load", strings.NewReader(input), "application/sql")
	if err != nil || code != 200 || !bytes.HasPrefix(body, []byte(`{"results":[{"last_insert_id":`)) || bytes.Count(body, []byte("{")) != 2 {
		t.Fatalf("load dump: %d %v %s, want one result", code, err, body)
	}
	loaded := waitSameDump(t, "", c.nodes...)
	got := openFile(t, filepath.Join(t.TempDir(), "got.db"))
	if _, err := got.Exec(loaded); err != nil {
		t.Fatal(err)
	}
	if rows := sqltest.Rows(t, got, typedRows); !reflect.DeepEqual(rows, wantRows) {
		t.Errorf("typed rows after the load differ: %d rows, want %d", len(rows), len(wantRows))
	}
	if s := sqltest.Rows(t, got, schema); !reflect.DeepEqual(s, wantSchema) {
		t.Errorf("schema after the load:\n%v\nwant\n%v", s, wantSchema)
	}
	for _, n := range c.nodes {
		if got, err := n.rows("none", "SELECT COUNT(*) FROM t"); err != nil || fmt.Sprint(got[0][0]) != "10" {
			t.Errorf("%s: table t after the load: %v %v, want its 10 rows kept", n.name, got, err)
		}
		if got, err := n.statusUint("store.sqlite3.nodes"); err != nil || got != 3 {
			t.Errorf("%s: member metadata after the load: %v %v", n.name, got, err)
		}
	}

	// Our own dump loads back to the same database.
	leader = c.waitLeader()
	leader.mustExecute(t, "DELETE FROM typed WHERE id > 2990")
	dump, err := dumpOf(leader)
	if err != nil {
		t.Fatal(err)
	}
	leader.mustExecute(t, "DROP VIEW typed_v", "DROP TABLE typed", "DROP TABLE audit", "DROP TABLE t")
	code, body, err = c.others(leader)[1].call("POST", "/db/load", strings.NewReader(dump), "application/sql")
	if err != nil || code != 200 {
		t.Fatalf("load /db/backup dump: %d %v %s", code, err, body)
	}
	waitSameDump(t, dump, c.nodes...)

	// Dumps that fail: their error as the one result, nothing changed.
	for name, tt := range map[string]struct{ dump, want string }{
		"invalid": {"BEGIN TRANSACTION;\nCREATE TABLE z (x);\nINSERT INTO nope VALUES (1);\nCOMMIT;\n", `{"results":[{"error":"no such table: nope"}]}`},
		"attach":  {"CREATE TABLE z (x);\nATTACH DATABASE 'other.db' AS o;\n", `{"results":[{"error":"ATTACH and DETACH are not supported"}]}`},
	} {
		code, resp, err := follower.call("POST", "/db/load", strings.NewReader(tt.dump), "application/sql")
		if err != nil || code != 200 || strings.TrimSpace(string(resp)) != tt.want {
			t.Errorf("%s dump: %d %v %s, want %s", name, code, err, resp, tt.want)
		}
	}
	waitSameDump(t, dump, c.nodes...)

	// Writes go on, on top of the rows the dump brought back.
	for i := 11; i <= 13; i++ {
		if err := insertRow(c.nodes, i, waitTimeout); err != nil {
			t.Fatal(err)
		}
	}
	waitIdentical(t, 13, c.nodes...)
}

// seedRows creates table t through leader and writes rows 1..n through every
// node in turn, then waits until all nodes hold them.
func seedRows(t *testing.T, c *cluster, leader *node, n int) {
	t.Helper()
	createTable(t, leader)
	for i := 1; i <= n; i++ {
		if err := insertRow(c.nodes, i, waitTimeout); err != nil {
			t.Fatal(err)
		}
	}
	waitIdentical(t, n, c.nodes...)
}

// TestLoadVisibleAfterAck restores backups of the cluster through a
// follower, with all three nodes up and then with the leader killed, and
// reads right after each 200: the leader at every level and the follower
// that relayed the load at linearizable and strong must already see the
// loaded rows. With one node down the relaying follower is the quorum the
// load waited for, so its level=none reads see it too; with all up the
// other follower may have been that quorum (as for any write a follower
// relays, level=none makes no promise there).
func TestLoadVisibleAfterAck(t *testing.T) {
	dir := t.TempDir()
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	seedRows(t, c, leader, 20)
	via := c.others(leader)[0]
	check := func(stage string, want int, viaNone bool) {
		t.Helper()
		type read struct {
			n     *node
			level string
		}
		reads := []read{{leader, "linearizable"}, {leader, "strong"}, {leader, "none"}, {via, "linearizable"}, {via, "strong"}}
		if viaNone {
			reads = append(reads, read{via, "none"})
		}
		for _, r := range reads {
			got, err := r.n.count(r.level)
			if err != nil || got != want {
				t.Errorf("%s: %s (leader %v) level=%s right after the load's 200: %d rows, %v; want %d",
					stage, r.n.name, r.n == leader, r.level, got, err, want)
			}
		}
	}
	next := 21
	for _, down := range []bool{false, true} {
		if down {
			// The leader dies: a new one, in a new term, serves the loads.
			dead := leader
			dead.kill(t)
			leader = c.waitLeader()
			waitReady(t, leader)
			via = c.others(leader, dead)[0]
		}
		for round := range 3 {
			stage := fmt.Sprintf("leader killed %v, round %d", down, round)
			want, err := leader.count("strong")
			if err != nil {
				t.Fatal(err)
			}
			backup, err := os.ReadFile(backupTo(t, leader, "/db/backup", dir, "backup.db"))
			if err != nil {
				t.Fatal(err)
			}
			// A row written after the backup, gone once it is loaded.
			if err := insertRow([]*node{leader}, next, waitTimeout); err != nil {
				t.Fatal(err)
			}
			next++
			code, body, err := via.call("POST", "/db/load", bytes.NewReader(backup), "application/octet-stream")
			if err != nil || code != 200 || bytes.Contains(body, []byte(`"error"`)) {
				t.Fatalf("%s: load: %d %v %s", stage, code, err, body)
			}
			check(stage, want, down)
		}
	}
}
