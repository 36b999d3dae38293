package e2e

import (
	"bytes"
	"fmt"
	"github.com/raftlite/raftlite/internal/sqltest"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestLoadCrash kills nodes with SIGKILL while a /db/load is being
// installed: first a follower (restoring the snapshot), then the leader
// (taking the upload in). Every node restarts into the same state, which
// holds every acknowledged write: the old data if the load did not
// succeed, the new if it did.
func TestLoadCrash(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "upload.db")
	makeDB(t, file, 30)
	upload, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	want := sqltest.Rows(t, openFile(t, file), bigFingerprint)

	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	seedRows(t, c, leader, 10)

	fingerprints := func() ([]string, error) {
		var first []string
		for i, n := range c.nodes {
			r, err := n.sql("/db/query?level=none", bigFingerprint)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n.name, err)
			}
			got := []string{r.Results[0].Error}
			if r.Results[0].Error == "" {
				got = nil
				for _, v := range r.Results[0].Values[0] {
					got = append(got, fmt.Sprint(v))
				}
			}
			if i == 0 {
				first = got
			} else if !reflect.DeepEqual(got, first) {
				return nil, fmt.Errorf("%s: %v, %s: %v", c.nodes[0].name, first, n.name, got)
			}
		}
		return first, nil
	}

	for round, pick := range []string{"follower", "leader"} {
		leader = c.waitLeader()
		if round > 0 {
			// Make the old state tell from the new: a load drops table t.
			if _, err := leader.rows("strong", "SELECT 1 FROM t"); err == nil {
				t.Fatalf("round %d: table t survived the previous load", round)
			}
			seedRows(t, c, leader, 10)
		}
		victim := leader
		if pick == "follower" {
			victim = c.others(leader)[0]
		}
		done := make(chan int, 1)
		go func() {
			code, _, _ := leader.call("POST", "/db/load", bytes.NewReader(upload), "application/octet-stream")
			done <- code
		}()
		time.Sleep(time.Duration(150+100*round) * time.Millisecond)
		victim.kill(t)
		code := <-done
		victim.start(t)
		waitReady(t, c.nodes...)

		var fp []string
		waitFor(t, waitTimeout, "identical nodes", func() (err error) {
			fp, err = fingerprints()
			return err
		})
		_, terr := c.nodes[0].rows("none", "SELECT 1 FROM t")
		loaded := terr != nil
		if loaded && !reflect.DeepEqual(fp, want[0]) {
			t.Fatalf("round %d: the nodes hold %v, neither the old data nor the upload", round, fp)
		}
		if code == 200 && !loaded {
			t.Fatalf("round %d: the load was acknowledged but the nodes hold %v", round, fp)
		}
		if !loaded {
			waitIdentical(t, 10, c.nodes...) // the old data, whole
		}
		t.Logf("round %d: killed the %s during the load; the load answered %d; loaded: %v", round, pick, code, loaded)
		// The cluster takes writes again.
		leader = c.waitLeader()
		leader.mustExecute(t, "CREATE TABLE IF NOT EXISTS after (x)", []any{"INSERT INTO after VALUES (?)", round})
	}
}
