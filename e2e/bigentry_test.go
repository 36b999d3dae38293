//go:build linux

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestLargeEntryKeepsLeadership: a write just under the entry limit
// (-raft-max-entry-bytes, 8 MiB) commits on every node without an election,
// and a 50 MB write, which used to make the leader step down every time, is
// refused with 413 entry_too_large before it is proposed: nothing is
// applied, the log does not grow, and the term stays the same.
func TestLargeEntryKeepsLeadership(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	leader.mustExecute(t, "CREATE TABLE blobs (id INTEGER PRIMARY KEY, b TEXT)")
	term, err := leader.statusUint("store.raft.term")
	if err != nil {
		t.Fatal(err)
	}

	// Incompressible text, so that no layer can make it small.
	insert := func(n *node, size int) (int, []byte) {
		raw := make([]byte, size*3/4)
		if _, err := rand.Read(raw); err != nil {
			t.Fatal(err)
		}
		body, err := json.Marshal([][]any{{"INSERT INTO blobs(b) VALUES(?)", base64.StdEncoding.EncodeToString(raw)}})
		if err != nil {
			t.Fatal(err)
		}
		code, out, err := n.call("POST", "/db/execute", bytes.NewReader(body), "application/json")
		if err != nil {
			t.Fatalf("POST %d bytes to %s: %v", len(body), n.name, err)
		}
		return code, out
	}

	for i := range 3 {
		if code, out := insert(leader, 7<<20); code != 200 || !strings.Contains(string(out), `"rows_affected":1`) {
			t.Fatalf("7 MiB insert %d: %d %s", i, code, out)
		}
	}
	waitSameAnswer(t, "SELECT count(*), sum(length(b)) FROM blobs", c.nodes...)

	before, err := leader.statusUint("store.raft.last_log_index")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*node{leader, c.others(leader)[0]} {
		code, out := insert(n, 50<<20)
		if code != 413 || !strings.Contains(string(out), `"code":"entry_too_large"`) {
			t.Fatalf("50 MB insert through %s: %d %s, want 413 entry_too_large", n.name, code, out)
		}
	}
	after, err := leader.statusUint("store.raft.last_log_index")
	if err != nil {
		t.Fatal(err)
	}
	if after != before {
		t.Errorf("the refused writes moved the log from index %d to %d", before, after)
	}
	rows := waitSameAnswer(t, "SELECT count(*) FROM blobs", c.nodes...)
	if got := fmt.Sprint(rows[0][0]); got != "3" {
		t.Errorf("%v rows, want the 3 accepted ones", got)
	}
	for _, n := range c.nodes {
		now, err := n.statusUint("store.raft.term")
		if err != nil {
			t.Fatal(err)
		}
		if now != term {
			t.Errorf("%s is in term %d, the cluster started the writes in term %d: an election happened", n.name, now, term)
		}
	}
}
