//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// dbFileSize is the size of a node's database file (its WAL not
// included: SQLite leaves that file at the size it reached until a
// checkpoint can truncate it, which the WAL size watcher sees to).
func dbFileSize(n *node) int64 {
	fi, err := os.Stat(filepath.Join(n.dataDir(), "db", "db.sqlite"))
	if err != nil {
		return 0
	}
	return fi.Size()
}

// TestVacuumEveryNode: after a 50 MB table is dropped, a VACUUM sent to a
// follower (POST /db/execute, forwarded to the leader, applied through the
// log) shrinks the database file on all three nodes, whose content stays
// identical (the same checksum at a marker after it). Before issue 17 the
// VACUUM failed with "cannot VACUUM from within a transaction".
func TestVacuumEveryNode(t *testing.T) {
	// Without the change history, which would keep the dropped rows'
	// changes (README, Watch).
	c := startProcfileCluster(t, "-watch-retention", "off")
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	// A table without INTEGER PRIMARY KEY, whose rowids VACUUM renumbers:
	// the replicas must still agree afterwards.
	leader.mustExecute(t, "CREATE TABLE keep (a)", "INSERT INTO keep VALUES (1), (2), (3), (4)", "DELETE FROM keep WHERE a = 2")
	padTable(t, leader, 50)
	leader.mustExecute(t, "DROP TABLE pad")
	waitSameAnswer(t, "SELECT count(*) FROM sqlite_master WHERE name = 'pad'", c.nodes...)
	for _, n := range c.nodes {
		size := dbFileSize(n)
		if size < 50<<20 {
			t.Fatalf("%s: database is %d bytes after 50 MB of inserts, before VACUUM", n.name, size)
		}
		t.Logf("%s: %d bytes before VACUUM", n.name, size)
	}

	follower := c.others(leader)[0]
	resp, err := follower.sql("/db/execute", "VACUUM")
	if err != nil || len(resp.Results) != 1 || resp.Results[0].Error != "" {
		t.Fatalf("VACUUM: %+v %v", resp, err)
	}
	leader.mustExecute(t, "INSERT INTO keep VALUES (5)")
	waitFor(t, waitTimeout, "every node's file to shrink", func() error {
		for _, n := range c.nodes {
			if size := dbFileSize(n); size > 1<<20 {
				return fmt.Errorf("%s: database is %d bytes after VACUUM", n.name, size)
			}
		}
		return nil
	})
	for _, n := range c.nodes {
		t.Logf("%s: %d bytes after VACUUM", n.name, dbFileSize(n))
	}
	marker := leader.checksum(t, "POST", "")
	for _, n := range c.nodes {
		r := n.checksum(t, "GET", fmt.Sprintf("?index=%d&timeout=20s", marker.Index))
		if r.Checksum != marker.Checksum {
			t.Errorf("%s: checksum %s at %d after VACUUM, leader %s", n.name, r.Checksum, marker.Index, marker.Checksum)
		}
	}
	if rc, out := runCheck(t, c.nodes...); rc != 0 {
		t.Errorf("raftlite check after VACUUM: exit %d\n%s", rc, out)
	}
	rows := waitSameAnswer(t, "SELECT group_concat(rowid || ':' || a) FROM keep", c.nodes...)
	if fmt.Sprint(rows) != "[[1:1,2:3,3:4,4:5]]" {
		t.Errorf("keep after VACUUM: %v, want rowids renumbered alike everywhere", rows)
	}
}

// TestAutoVacuum: with -auto-vacuum-int the leader proposes VACUUM through
// the log by itself, and every node's file shrinks after a table is
// dropped.
func TestAutoVacuum(t *testing.T) {
	c := startProcfileCluster(t, "-auto-vacuum-int", "1s", "-watch-retention", "off")
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	padTable(t, leader, 10)
	leader.mustExecute(t, "DROP TABLE pad")
	waitFor(t, waitTimeout, "every node's file to shrink", func() error {
		for _, n := range c.nodes {
			if size := dbFileSize(n); size > 1<<20 {
				return fmt.Errorf("%s: database is %d bytes", n.name, size)
			}
		}
		return nil
	})
	applied := regexp.MustCompile(`automatic VACUUM applied`)
	for _, n := range c.nodes {
		if m, _ := n.findInLog(0, applied); m != nil {
			return
		}
	}
	t.Errorf("no node logged an automatic VACUUM")
}

// TestInternalTablesInvisible: through the HTTP API of every node, at every
// consistency level, the schema a client reads holds only its own objects
// (the rqlite shell's .tables, .schema and .indexes queries included), and
// raftlite's tables cannot be read, written or dropped. Before issue 17,
// _raftlite_meta, _raftlite_nodes, _raftlite_sessions and their indexes
// showed in sqlite_master.
func TestInternalTablesInvisible(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE)", "CREATE INDEX users_name ON users (name)")
	waitSameAnswer(t, "SELECT count(*) FROM users", c.nodes...)
	for _, n := range c.nodes {
		for _, level := range []string{"none", "weak", "strong"} {
			for q, want := range map[string]string{
				"SELECT name FROM sqlite_master ORDER BY name":                           "[[sqlite_autoindex_users_1] [users] [users_name]]",
				`SELECT name FROM sqlite_master WHERE type="table"`:                      "[[users]]",
				"SELECT count(*) FROM sqlite_master WHERE sql IS NULL":                   "[[1]]",
				"SELECT count(*) FROM main.sqlite_schema WHERE type = 'index'":           "[[2]]",
				"SELECT group_concat(name) FROM pragma_table_list WHERE schema = 'main'": "[[users,sqlite_schema]]",
			} {
				got, err := n.rows(level, q)
				if err != nil || fmt.Sprint(got) != want {
					t.Errorf("%s level=%s %q: %v %v, want %s", n.name, level, q, got, err, want)
				}
			}
			for _, q := range []string{"SELECT * FROM _raftlite_meta", "PRAGMA table_info(_raftlite_sessions)"} {
				if got, err := n.rows(level, q); err == nil || !strings.Contains(err.Error(), "no such table") {
					t.Errorf("%s level=%s %q: %v %v, want no such table", n.name, level, q, got, err)
				}
			}
		}
	}
	for _, q := range []string{"DROP TABLE _raftlite_meta", "DELETE FROM _raftlite_sessions", "CREATE TABLE x AS SELECT * FROM sqlite_master"} {
		resp, err := c.others(leader)[1].sql("/db/execute", q)
		if err != nil || len(resp.Results) != 1 || resp.Results[0].Error == "" {
			t.Errorf("%q: %+v %v, want it refused", q, resp, err)
		}
	}
}
