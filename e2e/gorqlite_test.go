//go:build linux

package e2e

import (
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/rqlite/gorqlite"
)

// TestGorqlite drives a Procfile cluster with the unmodified gorqlite client:
// cluster discovery (Leader, Peers), writes, and reads at every consistency
// level gorqlite offers, checking that values round-trip.
func TestGorqlite(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	follower := c.others(leader)[0]

	// Open through a follower: discovery must find the leader.
	conn, err := gorqlite.Open("http://" + follower.httpAddr + "/")
	if err != nil {
		t.Fatalf("gorqlite.Open: %v", err)
	}
	defer conn.Close()

	gotLeader, err := conn.Leader()
	if err != nil {
		t.Fatalf("Leader(): %v", err)
	}
	if gotLeader != leader.httpAddr {
		t.Errorf("Leader() = %q, want %q", gotLeader, leader.httpAddr)
	}
	peers, err := conn.Peers()
	if err != nil {
		t.Fatalf("Peers(): %v", err)
	}
	var want []string
	for _, n := range c.nodes {
		want = append(want, n.httpAddr)
	}
	if len(peers) == 0 || peers[0] != leader.httpAddr {
		t.Errorf("Peers() = %v, want the leader %s first", peers, leader.httpAddr)
	}
	sort.Strings(want)
	sorted := append([]string(nil), peers...)
	sort.Strings(sorted)
	if !reflect.DeepEqual(sorted, want) {
		t.Errorf("Peers() = %v, want %v in any order", peers, want)
	}

	if _, err := conn.WriteOne("CREATE TABLE g (id INTEGER PRIMARY KEY, name TEXT, score REAL, n INTEGER, note TEXT)"); err != nil {
		t.Fatalf("WriteOne CREATE TABLE: %v", err)
	}
	wr, err := conn.WriteOneParameterized(gorqlite.ParameterizedStatement{
		Query:     "INSERT INTO g(name, score, n, note) VALUES(?, ?, ?, ?)",
		Arguments: []any{"fiona ✓ \"quoted\"", 3.25, int64(1) << 40, nil},
	})
	if err != nil {
		t.Fatalf("WriteOneParameterized: %v", err)
	}
	if wr.LastInsertID != 1 || wr.RowsAffected != 1 {
		t.Errorf("WriteOneParameterized = last_insert_id %d rows_affected %d, want 1 and 1", wr.LastInsertID, wr.RowsAffected)
	}
	wrs, err := conn.Write([]string{
		"INSERT INTO g(name, score, n, note) VALUES('declan', -0.5, -7, 'x')",
		"INSERT INTO g(name, score, n, note) VALUES('', 0, 0, '')",
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if len(wrs) != 2 || wrs[0].LastInsertID != 2 || wrs[1].LastInsertID != 3 || wrs[1].RowsAffected != 1 {
		t.Errorf("Write results = %+v, want last_insert_id 2 and 3", wrs)
	}
	if _, err := conn.WriteOne("INSERT INTO nosuchtable VALUES(1)"); err == nil || !strings.Contains(err.Error(), "no such table") {
		t.Errorf("WriteOne into a missing table: err = %v, want 'no such table'", err)
	}

	type row struct {
		id    int64
		name  string
		score float64
		n     int64
		note  gorqlite.NullString
	}
	wantRows := []row{
		{1, "fiona ✓ \"quoted\"", 3.25, 1 << 40, gorqlite.NullString{}},
		{2, "declan", -0.5, -7, gorqlite.NullString{String: "x", Valid: true}},
		{3, "", 0, 0, gorqlite.NullString{String: "", Valid: true}},
	}
	for _, level := range []string{"none", "weak", "linearizable", "strong"} {
		parsed, err := gorqlite.ParseConsistencyLevel(level)
		if err != nil {
			t.Fatalf("gorqlite does not know level %s: %v", level, err)
		}
		if err := conn.SetConsistencyLevel(parsed); err != nil {
			t.Fatalf("SetConsistencyLevel(%s): %v", level, err)
		}
		qr, err := conn.QueryOne("SELECT id, name, score, n, note FROM g ORDER BY id")
		if err != nil {
			t.Errorf("level %s: QueryOne: %v", level, err)
			continue
		}
		if got := qr.Types(); !reflect.DeepEqual(got, []string{"integer", "text", "real", "integer", "text"}) {
			t.Errorf("level %s: types %v", level, got)
		}
		var got []row
		for qr.Next() {
			var r row
			if err := qr.Scan(&r.id, &r.name, &r.score, &r.n, &r.note); err != nil {
				t.Fatalf("level %s: Scan: %v", level, err)
			}
			got = append(got, r)
		}
		if !reflect.DeepEqual(got, wantRows) {
			t.Errorf("level %s: rows\n got %+v\nwant %+v", level, got, wantRows)
		}
	}

	// Reads are refused writes, even through the query endpoint.
	if _, err := conn.QueryOne("DELETE FROM g"); err == nil {
		t.Error("QueryOne(DELETE) succeeded, want 'attempt to change database via query operation'")
	}
	rr, err := conn.Request([]string{"INSERT INTO g(name) VALUES('req')", "SELECT COUNT(*) FROM g"})
	if err != nil {
		t.Fatalf("Request: %v", err)
	}
	if len(rr) != 2 || rr[0].Write == nil || rr[0].Write.LastInsertID != 4 || rr[1].Query == nil {
		t.Fatalf("Request results = %+v, want a write then a query", rr)
	}
	var count int64
	if !rr[1].Query.Next() {
		t.Fatal("Request: the COUNT query returned no row")
	}
	if err := rr[1].Query.Scan(&count); err != nil || count != 4 {
		t.Errorf("Request: COUNT(*) = %d (%v), want 4", count, err)
	}
}
