//go:build linux

package e2e

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/internal/sqltest"
)

// TestLargeWriteKeepsLeadership: 50 MB statements, through the leader and
// through a follower, commit on every node, each exactly once. They go in
// parts of -raft-max-entry-bytes (fsm.CmdChunk): one 50 MB log entry used to
// make the leader step down every time (go-msgpack's decoding on the
// followers), and was refused with 413 before parts existed.
//
// Without an election too (issue 18) is asserted only with
// RAFTLITE_BIG_STRICT=1 on an otherwise idle machine: applying 50 MB on
// three nodes sharing two loaded cores (the test suite runs packages in
// parallel) still delays heartbeats past the election timeout at times
// (3 of 6 runs at load 10). Otherwise a write that met an election is
// retried under its client session and must still apply once.
func TestLargeWriteKeepsLeadership(t *testing.T) {
	strict := os.Getenv("RAFTLITE_BIG_STRICT") == "1"
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, b TEXT)")
	term, err := leader.statusUint("store.raft.term")
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range []*node{leader, c.others(leader)[0]} {
		body, session := randomTextInsert(t, 50<<20), fmt.Sprintf("?client_id=big-%d&seq=1", i)
		waitFor(t, waitTimeout, fmt.Sprintf("50 MB insert %d through %s", i, n.name), func() error {
			code, out := postExecute(n, body, session)
			switch {
			case code == 200 && strings.Contains(string(out), `"rows_affected":1`):
				return nil
			case code == 503 && !strict:
				return fmt.Errorf("%d %.300s", code, out) // an election: retry
			}
			t.Fatalf("50 MB insert %d through %s: %d %.300s", i, n.name, code, out)
			return nil
		})
	}
	rows := waitSameAnswer(t, "SELECT count(*), sum(length(b)) FROM blobs", c.nodes...)
	if got := fmt.Sprint(rows[0][0]); got != "2" {
		t.Errorf("%v rows, want 2", got)
	}
	for _, n := range c.nodes {
		now, err := n.statusUint("store.raft.term")
		if err != nil {
			t.Fatal(err)
		}
		if now != term {
			msg := fmt.Sprintf("%s is in term %d, the cluster started the writes in term %d: an election happened", n.name, now, term)
			if strict {
				t.Error(msg)
			} else {
				t.Log(msg)
			}
		}
	}
}

// randomTextInsert is the body of a request that inserts size bytes of
// incompressible text (so that no layer can make it small) into blobs.
func randomTextInsert(t *testing.T, size int) []byte {
	t.Helper()
	raw := make([]byte, size*3/4)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal([][]any{{"INSERT INTO blobs(b) VALUES(?)", base64.StdEncoding.EncodeToString(raw)}})
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// postExecute sends body to n's /db/execute (with query, e.g. a client
// session) and returns the answer; a failed call is status 0.
func postExecute(n *node, body []byte, query string) (int, []byte) {
	code, out, err := n.call("POST", "/db/execute"+query, bytes.NewReader(body), "application/json")
	if err != nil {
		return 0, []byte(err.Error())
	}
	return code, out
}

// TestLeaderKilledMidLargeWrite: the leader is killed (SIGKILL) while a
// 40 MB write is being replicated in parts. The write is then applied
// whole or not at all, alike on every node; a retry under the same client
// session applies it exactly once; and the killed node, restarted, catches
// up to the same database.
func TestLeaderKilledMidLargeWrite(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, b TEXT)")
	start, err := leader.statusUint("store.raft.last_log_index")
	if err != nil {
		t.Fatal(err)
	}
	const session = "?client_id=big-writer&seq=1"
	body := randomTextInsert(t, 40<<20)
	done := make(chan int, 1)
	go func() {
		code, _ := postExecute(leader, body, session)
		done <- code
	}()
	// Kill once a few parts (1 MiB each) are in the leader's log.
	waitFor(t, waitTimeout, "parts of the write in the leader's log", func() error {
		last, err := leader.statusUint("store.raft.last_log_index")
		if err != nil {
			return err
		}
		if last < start+5 {
			return fmt.Errorf("last index %d", last)
		}
		return nil
	})
	leader.kill(t)
	if code := <-done; code == 200 {
		t.Logf("the write was acknowledged before the kill")
	}
	survivors := c.others(leader)
	c.waitLeader()
	before := waitSameAnswer(t, "SELECT count(*), coalesce(sum(length(b)), 0) FROM blobs", survivors...)
	if n := fmt.Sprint(before[0][0]); n != "0" && n != "1" {
		t.Fatalf("%s rows after the kill, want 0 or 1 (whole or nothing)", n)
	}
	if n := fmt.Sprint(before[0][0]); n == "1" && fmt.Sprint(before[0][1]) != fmt.Sprint(40<<20) {
		t.Fatalf("the write is there in part: %v bytes", before[0][1])
	}
	var code int
	var out []byte
	waitFor(t, waitTimeout, "the retry to be answered", func() error {
		code, out = postExecute(survivors[0], body, session)
		if code != 200 {
			return fmt.Errorf("%d %.200s", code, out)
		}
		return nil
	})
	leader.start(t)
	rows := waitSameAnswer(t, "SELECT count(*), sum(length(b)) FROM blobs", c.nodes...)
	if fmt.Sprint(rows[0][0]) != "1" || fmt.Sprint(rows[0][1]) != fmt.Sprint(40<<20) {
		t.Fatalf("after the retry: %v rows of %v bytes, want exactly one of %d", rows[0][0], rows[0][1], 40<<20)
	}
	requireIntact(t, c.nodes...)
	// Clients cannot read raftlite's own tables: look in the files.
	for _, n := range c.nodes {
		n.shutdown()
		db, err := sql.Open("sqlite", filepath.Join(n.dataDir(), "db", "db.sqlite"))
		if err != nil {
			t.Fatal(err)
		}
		if left := sqltest.Rows(t, db, "SELECT count(*) FROM _raftlite_chunks"); left[0][0] != "0" {
			t.Errorf("%s: %s parts left in _raftlite_chunks", n.name, left[0][0])
		}
		db.Close()
	}
}
