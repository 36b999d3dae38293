package e2e

import (
	"cmp"
	"fmt"
	"github.com/raftlite/raftlite/internal/sqltest"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBigSnapshotBench is the large-size bench of snapshots (run by hand,
// several minutes):
//
//	RAFTLITE_BIG=1 RAFTLITE_BIG_MB=500 go test ./e2e/ -run BigSnapshot -v -timeout 30m
//
// It loads a generated database of RAFTLITE_BIG_MB (default 500) MB into a
// 3-node cluster whose nodes snapshot every RAFTLITE_BIG_SNAP (default 300)
// entries, then
//  1. runs a writer (one insert at a time through the leader) for
//     RAFTLITE_BIG_WRITE (default 45s: long enough to span at least one
//     snapshot of the whole database), and
//     reports its latency percentiles, its failures and the snapshots taken;
//  2. adds a fourth node and reports how long it takes to hold identical
//     data, next to the time a plain `cp` of the leader's database file
//     takes; RAFTLITE_BIG_JOINS (default 3) times, each new node removed
//     again before the next joins, and reports the median.
func TestBigSnapshotBench(t *testing.T) {
	if os.Getenv("RAFTLITE_BIG") == "" {
		t.Skip("set RAFTLITE_BIG=1 to run the large-size snapshot bench")
	}
	mb := 500
	if v := os.Getenv("RAFTLITE_BIG_MB"); v != "" {
		mb, _ = strconv.Atoi(v)
	}
	// Entries between snapshots: 300 keeps all three nodes snapshotting
	// nearly all the time; a few thousand gives one snapshot per node in
	// the writer's window.
	snapEvery := cmp.Or(os.Getenv("RAFTLITE_BIG_SNAP"), "300")
	dir := t.TempDir()
	file := filepath.Join(dir, "big.db")
	start := time.Now()
	makeDB(t, file, mb)
	st, _ := os.Stat(file)
	t.Logf("generated a %d MB database in %v", st.Size()>>20, time.Since(start).Round(time.Millisecond))
	want := sqltest.Rows(t, openFile(t, file), bigFingerprint)

	c := newCluster(t)
	c.hc.Timeout = 10 * time.Minute
	for _, e := range rewriteEntries(t, readProcfile(t), filepath.Join(c.dir, "data")) {
		args := withFlag(e.args, "raft-snap", snapEvery)
		args = withFlag(args, "raft-snap-int", "1s")
		args = withFlag(args, "raft-log-level", "info")
		c.add(e.name, args).start(t)
	}
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	code, body, err := leader.call("POST", "/db/load?timeout=10m", fh, "application/octet-stream")
	fh.Close()
	if err != nil || code != 200 {
		t.Fatalf("load: %d %v %s", code, err, body)
	}
	t.Logf("/db/load of %d MB: %v", st.Size()>>20, time.Since(start).Round(time.Millisecond))
	createTable(t, leader)

	// 1. A writer across whole-database snapshots.
	snapsBefore := countInLogs(c, "snapshot persisted")
	var lat []time.Duration
	var slow []string
	var failures int
	writeFor, err := time.ParseDuration(cmp.Or(os.Getenv("RAFTLITE_BIG_WRITE"), "45s"))
	if err != nil {
		t.Fatalf("RAFTLITE_BIG_WRITE: %v", err)
	}
	deadline := time.Now().Add(writeFor)
	for id := 1; time.Now().Before(deadline); id++ {
		t0 := time.Now()
		r, err := leader.sql("/db/execute?timeout=10s", []any{"INSERT INTO t(id, via) VALUES(?, 'bench')", id})
		d := time.Since(t0)
		if err != nil || r.Results[0].Error != "" {
			failures++
			continue
		}
		lat = append(lat, d)
		if d > 100*time.Millisecond {
			slow = append(slow, fmt.Sprintf("%s %v", t0.UTC().Format("15:04:05.000"), d.Round(time.Millisecond)))
		}
	}
	snaps := countInLogs(c, "snapshot persisted") - snapsBefore
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p)] }
	t.Logf("writer: %d writes, %d failed, p50 %v p99 %v p99.9 %v max %v; %d snapshots completed meanwhile (all nodes)",
		len(lat), failures, pct(0.5), pct(0.99), pct(0.999), lat[len(lat)-1], snaps)
	for _, line := range grepLogs(c, "snapshot persisted") {
		t.Log(line)
	}
	t.Logf("writes over 100ms (start, latency): %v", slow)
	t.Logf("elections started by a heartbeat timeout (all nodes, whole run): %d", countInLogs(c, "heartbeat timeout reached"))
	if failures > 0 || pct(0.99) > 100*time.Millisecond || snaps == 0 {
		t.Errorf("acceptance: want no failures, p99 < 100ms and at least one snapshot")
	}

	// 2. A new node joins; compare with copying the file. Both are timed on
	// a quiet cluster: no snapshot under way, and none started for longer
	// than the snapshot interval (1-2 s), so that each node has taken the
	// last snapshot the writer's entries called for. A snapshot of the
	// whole database compressing on the same two cores would slow the
	// join down by half or more.
	const quietFor = 3 * time.Second
	lastChange, lastStarted := time.Now(), -1
	waitFor(t, 5*time.Minute, "no snapshot for "+quietFor.String(), func() error {
		started, done := countInLogs(c, "snapshot started"), countInLogs(c, "snapshot persisted")
		if started != lastStarted || started != done {
			lastChange, lastStarted = time.Now(), started
		}
		if started != done {
			return fmt.Errorf("%d started, %d persisted", started, done)
		}
		if quiet := time.Since(lastChange); quiet < quietFor {
			return fmt.Errorf("quiet for %v", quiet.Round(time.Millisecond))
		}
		return nil
	})
	leader = c.waitLeader()
	dbFile := filepath.Join(leader.args[len(leader.args)-1], "db", "db.sqlite")
	joins := 3
	if v := os.Getenv("RAFTLITE_BIG_JOINS"); v != "" {
		joins, _ = strconv.Atoi(v)
	}
	// Each join is timed right after the copies it is compared with, so
	// that both meet the same state of the machine: on the development VM
	// writing into memory the guest has not used recently costs five times
	// as much as writing into memory just freed (a 500 MB dd into the page
	// cache: 0.2 s, then 1.1 s once a gigabyte of new cache is in use), and
	// a join writes 760 MB. A joined node is removed again, its files with
	// it, so that every join meets a 3-node cluster and the same memory.
	var joinTimes, cold, coldSync, warm, warmSync []time.Duration
	for j := range joins {
		c1, c2 := timeCopy(t, dbFile, filepath.Join(dir, "copy.db"), true)
		w1, w2 := timeCopy(t, dbFile, filepath.Join(dir, "copy.db"), false)
		cold, coldSync, warm, warmSync = append(cold, c1), append(coldSync, c2), append(warm, w1), append(warmSync, w2)
		id := strconv.Itoa(4 + j)
		joinTimes = append(joinTimes, timeJoin(t, c, leader, "node"+id, id, want[0]))
		if j < joins-1 {
			joiner := c.nodes[len(c.nodes)-1]
			joiner.kill(t)
			if code, body, err := leader.call("DELETE", "/remove", strings.NewReader(`{"id":"`+id+`"}`), "application/json"); err != nil || code != 200 {
				t.Fatalf("remove node %s: %d %v %s", id, code, err, body)
			}
			if err := os.RemoveAll(joiner.dataDir()); err != nil {
				t.Fatal(err)
			}
		}
	}
	median := func(ds []time.Duration) time.Duration {
		ds = slices.Clone(ds)
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	join := median(joinTimes)
	ratio := func(name string, ds []time.Duration) string {
		m := median(ds)
		return fmt.Sprintf("%s %v (ratio %.1f)", name, m.Round(time.Millisecond), join.Seconds()/m.Seconds())
	}
	t.Logf("join of the %d MB database, median of %d: new node at the leader's index after %v (each: %v); "+
		"cp of the file, medians: %s, %s; with the file first evicted from the page cache, %s, %s",
		st.Size()>>20, joins, join.Round(time.Millisecond), joinTimes,
		ratio("cp", warm), ratio("cp+fsync", warmSync), ratio("cp", cold), ratio("cp+fsync", coldSync))
}

// timeJoin starts a new node that joins the cluster through leader, and
// returns how long it takes to reach the leader's applied index, once it
// holds the data that fingerprints as want.
func timeJoin(t *testing.T, c *cluster, leader *node, name, id string, want []string) time.Duration {
	t.Helper()
	target, err := leader.statusUint("store.sqlite3.applied_index")
	if err != nil {
		t.Fatal(err)
	}
	joiner := c.addJoiner(name, id, leader)
	start := time.Now()
	joiner.start(t)
	// Polled more often than waitFor does: the join takes about a second.
	for {
		idx, err := joiner.statusUint("store.sqlite3.applied_index")
		if err == nil && idx >= target {
			break
		}
		if time.Since(start) > 10*time.Minute {
			t.Fatalf("%s is not at the leader's index %d after 10 minutes: at %d, %v", name, target, idx, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	joinTime := time.Since(start)
	waitFor(t, 10*time.Minute, name+" to hold the data", func() error {
		r, err := joiner.sql("/db/query?level=none", bigFingerprint)
		if err != nil {
			return err
		}
		if r.Results[0].Error != "" {
			return fmt.Errorf("%s", r.Results[0].Error)
		}
		got := make([]string, len(r.Results[0].Values[0]))
		for i, v := range r.Results[0].Values[0] {
			got[i] = fmt.Sprint(v)
		}
		if !reflect.DeepEqual(got, want) {
			return fmt.Errorf("fingerprint %v", got)
		}
		return nil
	})
	for _, line := range grepLogs(c, "snapshot", "joined", "installing", "copied", "decoded as it arrived", "database opened", "raft started", "written to disk", "=== e2e: start") {
		if strings.HasPrefix(line, name+":") {
			t.Log(line)
		}
	}
	t.Logf("%s at the leader's index after %v", name, joinTime.Round(time.Millisecond))
	return joinTime
}

// grepLogs returns the lines of every node's log containing any of subs.
func grepLogs(c *cluster, subs ...string) []string {
	var out []string
	for _, n := range c.nodes {
		b, _ := os.ReadFile(n.logPath)
		for _, line := range strings.Split(string(b), "\n") {
			for _, s := range subs {
				if strings.Contains(line, s) {
					out = append(out, n.name+": "+line)
					break
				}
			}
		}
	}
	return out
}

func countInLogs(c *cluster, sub string) int { return len(grepLogs(c, sub)) }

// timeCopy times `cp src dst`, and cp followed by an fsync of dst (the
// snapshot path makes its copy durable; so does this one), then removes
// dst. With cold, src is first written out and evicted from the page
// cache, so that cp reads it from the disk.
func timeCopy(t *testing.T, src, dst string, cold bool) (cp, cpSync time.Duration) {
	t.Helper()
	if cold {
		evictFromPageCache(t, src)
	}
	defer os.Remove(dst)
	start := time.Now()
	if out, err := exec.Command("cp", src, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cp = time.Since(start)
	f, err := os.Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	return cp, time.Since(start)
}
