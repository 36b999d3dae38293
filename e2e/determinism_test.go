package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// checksumReply is the body of GET /db/checksum.
type checksumReply struct {
	Index    uint64 `json:"index"`
	Checksum string `json:"checksum"`
	NodeID   string `json:"node_id"`
	Error    string `json:"error"`
}

func (n *node) checksum(t testing.TB, method, query string) checksumReply {
	t.Helper()
	code, body, err := n.call(method, "/db/checksum"+query, nil, "")
	if err != nil {
		t.Fatalf("%s: %s /db/checksum%s: %v", n.name, method, query, err)
	}
	var r checksumReply
	if err := json.Unmarshal(body, &r); err != nil || code != 200 {
		t.Fatalf("%s: %s /db/checksum%s: HTTP %d: %s", n.name, method, query, code, body)
	}
	return r
}

// runCheck runs `raftlite check` against the nodes and returns its exit
// status and output.
func runCheck(t testing.TB, nodes ...*node) (int, string) {
	t.Helper()
	var hosts []string
	for _, n := range nodes {
		hosts = append(hosts, n.httpAddr)
	}
	cmd := exec.Command(binary, "check", "-H", strings.Join(hosts, ","), "-timeout", "30s")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatalf("raftlite check: %v", err)
	}
	return 0, string(out)
}

// determinismWorkload writes, through the leader, a table with
// DEFAULT CURRENT_TIMESTAMP and DEFAULT (random()) columns, a trigger
// writing datetime('now') and randomblob(8), and statements using every
// time and random function.
func determinismWorkload(t *testing.T, leader *node) {
	leader.mustExecute(t,
		`CREATE TABLE d (id INTEGER PRIMARY KEY, created TEXT DEFAULT CURRENT_TIMESTAMP,
			r INTEGER DEFAULT (random()), v TEXT)`,
		`CREATE TABLE audit (id INTEGER PRIMARY KEY, d_id INTEGER, at TEXT, tag BLOB)`,
		`CREATE TRIGGER d_ins AFTER INSERT ON d BEGIN
			INSERT INTO audit (d_id, at, tag) VALUES (new.id, datetime('now'), randomblob(8));
		END`,
		`CREATE TABLE f (k TEXT, val)`,
	)
	for i := 0; i < 5; i++ {
		leader.mustExecute(t, fmt.Sprintf(`INSERT INTO d (v) VALUES ('a%d'), ('b%d'), ('c%d')`, i, i, i))
	}
	leader.mustExecute(t,
		`INSERT INTO d (v) SELECT v || '-copy' FROM d ORDER BY RANDOM()`,
		`INSERT INTO f VALUES ('random', random()), ('randomblob', randomblob(16)),
			('ts', CURRENT_TIMESTAMP), ('date', CURRENT_DATE), ('time', CURRENT_TIME),
			('date()', date('now')), ('time()', time()), ('datetime()', datetime('now', '+1 hour')),
			('julianday', julianday('now')), ('unixepoch', unixepoch()), ('strftime', strftime('%Y-%m-%d %H:%M:%f', 'now')),
			('concat', CURRENT_DATE || ' ' || CURRENT_TIME)`,
		`UPDATE d SET v = v || ':' || abs(random() % 1000) WHERE id % 2 = 0`,
	)
}

func TestDeterminismAcrossReplicas(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	start := time.Now().UTC()
	determinismWorkload(t, leader)

	// Every node's checksum at the same marker index is the same.
	marker := leader.checksum(t, "POST", "")
	if marker.Index == 0 || len(marker.Checksum) != 64 {
		t.Fatalf("marker: %+v", marker)
	}
	for _, n := range c.nodes {
		r := n.checksum(t, "GET", fmt.Sprintf("?index=%d&timeout=20s", marker.Index))
		if r.Checksum != marker.Checksum || r.Index != marker.Index || r.NodeID != n.id {
			t.Errorf("%s: %+v, leader %+v", n.name, r, marker)
		}
	}
	// /status shows the newest marker checksum, once computed.
	waitFor(t, waitTimeout, "the checksum in /status", func() error {
		st, err := leader.status()
		if err != nil {
			return err
		}
		if got := statusString(st, "store.sqlite3.checksum.checksum"); got != marker.Checksum {
			return fmt.Errorf("store.sqlite3.checksum.checksum = %q", got)
		}
		return nil
	})
	// A follower triggers through the leader too.
	follower := c.others(leader)[0]
	if r := follower.checksum(t, "POST", ""); r.Index <= marker.Index || r.Checksum != marker.Checksum {
		t.Errorf("marker through a follower: %+v (first %+v)", r, marker)
	}

	// Values are plausible: the leader's clock, random values per row.
	rows, err := follower.rows("none", "SELECT created, r FROM d")
	if err != nil {
		t.Fatal(err)
	}
	distinct := map[string]bool{}
	for _, r := range rows {
		ts, err := time.Parse("2006-01-02 15:04:05", r[0].(string))
		if err != nil {
			t.Fatalf("created %v: %v", r[0], err)
		}
		if ts.Before(start.Add(-2*time.Second)) || ts.After(time.Now().Add(2*time.Second)) {
			t.Errorf("created %v, test started at %v", ts, start)
		}
		distinct[fmt.Sprint(r[1])] = true
	}
	if len(rows) != 30 || len(distinct) != 30 {
		t.Fatalf("%d rows, %d distinct random values", len(rows), len(distinct))
	}
	tags, err := follower.rows("none", "SELECT COUNT(DISTINCT tag), COUNT(*), MIN(at) >= datetime('now', '-1 minute') FROM audit")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(tags[0]) != "[30 30 1]" {
		t.Errorf("audit: distinct tags, rows, recent: %v", tags[0])
	}
	concat, err := follower.rows("none", "SELECT val FROM f WHERE k = 'concat'")
	if err != nil {
		t.Fatal(err)
	}
	if s := concat[0][0].(string); !strings.HasPrefix(s, start.Format("2006-01-")) || len(s) != 19 {
		t.Errorf("CURRENT_DATE || ' ' || CURRENT_TIME = %q", s)
	}

	code, out := runCheck(t, c.nodes...)
	t.Logf("raftlite check:\n%s", out)
	if code != 0 {
		t.Fatalf("raftlite check exited %d", code)
	}
	for _, n := range c.nodes {
		if !strings.Contains(out, n.id) {
			t.Errorf("check output does not list node %s", n.id)
		}
	}
}

func TestCheckReportsCorruptReplica(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	determinismWorkload(t, leader)
	marker := leader.checksum(t, "POST", "")
	victim := c.others(leader)[0]
	victim.checksum(t, "GET", fmt.Sprintf("?index=%d&timeout=20s", marker.Index)) // caught up

	victim.kill(t)
	path := filepath.Join(victim.args[len(victim.args)-1], "db", "db.sqlite")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec("UPDATE d SET v = 'changed behind the cluster' WHERE id = 1")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampering changed %d rows", n)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	victim.start(t)
	waitReady(t, victim)

	code, out := runCheck(t, c.nodes...)
	t.Logf("raftlite check:\n%s", out)
	if code != 1 {
		t.Fatalf("raftlite check exited %d, want 1", code)
	}
	var victimLine string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, victim.id+" ") {
			victimLine = line
		}
	}
	if !strings.Contains(victimLine, "DIFFERS") || !strings.Contains(out, "differ or did not answer") {
		t.Fatalf("check output does not name %s as differing", victim.id)
	}
	if strings.Count(out, "DIFFERS") != 1 {
		t.Fatalf("check names more than the tampered node")
	}
}
