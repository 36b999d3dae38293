//go:build linux

package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// snapOften makes every node take a snapshot once 50 entries have been
// applied since the last one, checked every 100-200 ms (raft randomises the
// interval): under a steady writer each node persists a snapshot several
// times a second.
var snapOften = []string{"raft-snap", "50", "raft-snap-int", "100ms"}

// snapStarted and snapPersisted match the FSM's log lines at the start and
// the end of writing a snapshot (fsm/snapshot.go); the first submatch is the
// snapshot's applied index.
var (
	snapStarted   = regexp.MustCompile(`msg="snapshot started" .*\bindex=(\d+)`)
	snapPersisted = regexp.MustCompile(`msg="snapshot persisted" .*\bindex=(\d+)`)
)

// maxKillAttempts bounds how often a test tries to land a SIGKILL inside a
// snapshot persist; one attempt nearly always does (copying and compressing
// the padded database takes tens of milliseconds, the kill follows the log
// line within a few).
const maxKillAttempts = 5

// snapshotScratch lists the files of n's data directory that only exist
// while a snapshot is being written: raft's temporary snapshot directory,
// and the FSM's scratch copy of the database if it makes one.
func snapshotScratch(t *testing.T, n *node) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{
		filepath.Join(n.dataDir(), "db", "db.sqlite.snapshot-*"),
		filepath.Join(n.dataDir(), "raft", "snapshots", "*.tmp"),
	} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	return out
}

// killMidPersist waits until victim logs that it has started persisting a
// snapshot and SIGKILLs it at once. It reports whether the kill landed
// before the persist ended (no "snapshot persisted" line for that index),
// and returns the scratch files the persist left behind.
func killMidPersist(t *testing.T, victim *node) (landed bool, index string, scratch []string) {
	t.Helper()
	from := victim.logSize()
	m, _ := victim.waitLog(t, from, waitTimeout, snapStarted)
	victim.kill(t)
	done := regexp.MustCompile(`msg="snapshot persisted" .*\bindex=` + m[1] + `\b`)
	if d, _ := victim.findInLog(from, done); d != nil {
		return false, m[1], nil
	}
	return true, m[1], snapshotScratch(t, victim)
}

// TestKillDuringSnapshotPersist SIGKILLs a node while it is writing a
// snapshot (between the FSM's "snapshot started" and "snapshot persisted"
// log lines), first a follower and then the leader, while a client keeps
// writing. It proves that a crash in the middle of a snapshot costs
// nothing: the node restarts (a half-written snapshot must not stop raft
// or the FSM from opening), takes snapshots again, the scratch files of the
// interrupted snapshot do not stay behind, every node ends up with
// identical, intact content, and no acknowledged write is lost.
//
// A bug shows as: the restarted node not becoming ready (waitReady times
// out), a later snapshot failing (no "snapshot persisted" after the
// restart), a temporary snapshot or scratch file left on disk, or nodes that
// differ or miss an acknowledged id (waitIdentical, waitSameAnswer,
// requireIntact).
func TestKillDuringSnapshotPersist(t *testing.T) {
	c, _ := startSnapshottingCluster(t, 12)
	w := startWriter(c.nodes, 10)

	for _, role := range []string{"follower", "leader"} {
		var victim *node
		for attempt := 1; ; attempt++ {
			w.waitAcked(t, 20, "before the kill")
			leader := c.waitLeader()
			victim = leader
			if role == "follower" {
				victim = c.others(leader)[0]
			}
			landed, index, scratch := killMidPersist(t, victim)
			restartedAt := victim.logSize()
			victim.start(t)
			waitReady(t, c.nodes...)
			if !landed {
				if attempt == maxKillAttempts {
					t.Fatalf("%s %s: %d kills all landed after the snapshot was persisted", role, victim.name, attempt)
				}
				t.Logf("%s %s: snapshot %s was persisted before the kill landed; again", role, victim.name, index)
				continue
			}
			t.Logf("%s %s: killed while persisting snapshot %s (attempt %d); left behind: %v",
				role, victim.name, index, attempt, scratch)
			// The restarted node completes snapshots again...
			victim.waitLog(t, restartedAt, waitTimeout, snapPersisted)
			// ...and has removed what the interrupted one left behind.
			for _, f := range scratch {
				if _, err := os.Stat(f); err == nil {
					t.Errorf("%s: %s, left by the snapshot interrupted by the kill, is still there after the restart", victim.name, f)
				}
			}
			break
		}
		w.waitAcked(t, 20, "after the restart of the "+role)
	}

	last := w.finish(t)
	waitIdentical(t, last, c.nodes...)
	pad := waitSameAnswer(t, padFingerprint, c.nodes...)
	if got := fmt.Sprint(pad[0][0]); got != strconv.Itoa(12*256) {
		t.Errorf("table pad holds %s rows, want %d", got, 12*256)
	}
	requireIntact(t, c.nodes...)
	requireAlive(t, c.nodes...)
}

// TestTornSnapshotFile damages a stopped follower's snapshots on disk, the
// newest one's state.bin cut in half (a torn write) and the older one's
// overwritten in the middle, then restarts the node while the cluster keeps
// taking writes. The node's database file is up to date on its own (the
// applied index is stored inside it), so the node must not need its
// snapshots to start: it comes up at once serving at least the rows it had
// when it stopped, without restoring a snapshot, catches up from the
// leader's log, writes good snapshots again, and ends up identical to the
// others.
//
// A bug shows as: the node failing to start ("failed to load any existing
// snapshots" from raft when it tries to restore them, waitReady times out),
// the node going back to an older state or to no data, a restore attempt in
// its log, or nodes that differ afterwards.
func TestTornSnapshotFile(t *testing.T) {
	c, leader := startSnapshottingCluster(t, 4)
	victim := c.others(leader)[0]
	w := startWriter(c.others(victim), 10)

	// Let the victim complete two snapshots (raft keeps two), so that it
	// has two to damage.
	waitFor(t, waitTimeout, victim.name+" to hold two snapshots", func() error {
		snaps, err := snapshotDirs(victim)
		if err == nil && len(snaps) < 2 {
			err = fmt.Errorf("%d snapshots", len(snaps))
		}
		return err
	})
	had := victim.contiguousRows(t)
	victim.kill(t)
	snaps, err := snapshotDirs(victim)
	if err != nil {
		t.Fatal(err)
	}
	newest := filepath.Join(snaps[len(snaps)-1], "state.bin")
	fi, err := os.Stat(newest)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(newest, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	for _, dir := range snaps[:len(snaps)-1] {
		overwriteMiddle(t, filepath.Join(dir, "state.bin"))
	}
	t.Logf("%s stopped with %d rows; tore %s (%d of %d bytes kept), garbled %d older snapshot(s)",
		victim.name, had, newest, fi.Size()/2, fi.Size(), len(snaps)-1)

	w.waitAcked(t, 20, "while the node is down")
	restartedAt := victim.logSize()
	victim.start(t)
	waitReady(t, victim)
	if got := victim.contiguousRows(t); got < had {
		t.Fatalf("%s came back with %d rows, it had %d", victim.name, got, had)
	}
	// It snapshots again, and its new snapshots replace the damaged ones
	// (raft keeps the newest two).
	waitFor(t, waitTimeout, "the damaged snapshots replaced", func() error {
		for _, dir := range snaps {
			if _, err := os.Stat(dir); err == nil {
				return fmt.Errorf("%s is still there", dir)
			}
		}
		return nil
	})
	last := w.finish(t)
	waitIdentical(t, last, c.nodes...)
	waitSameAnswer(t, padFingerprint, c.nodes...)
	requireIntact(t, c.nodes...)
	if m, _ := victim.findInLog(restartedAt, restoreLine); m != nil {
		t.Errorf("%s restored a snapshot at start although its database was up to date: %q", victim.name, m[0])
	}
}

// TestCrashBeforeRestoredDatabaseSynced: a node restores a snapshot into
// its database and syncs the file afterwards, in the background, marking
// it unsynced meanwhile; a crash in between can leave a torn database. The
// test makes that state on a stopped follower (the marker beside a
// database garbled in the middle) and restarts it while the cluster keeps
// taking writes: the node must discard the database, restore its newest
// snapshot, catch up and end up identical to the others, with no
// acknowledged write lost.
//
// A bug shows as: the node serving the torn database (integrity check or
// checksum differences), failing to start, or no restore in its log.
func TestCrashBeforeRestoredDatabaseSynced(t *testing.T) {
	c, leader := startSnapshottingCluster(t, 4)
	victim := c.others(leader)[0]
	w := startWriter(c.others(victim), 10)
	waitFor(t, waitTimeout, victim.name+" to hold a snapshot", func() error {
		snaps, err := snapshotDirs(victim)
		if err == nil && len(snaps) == 0 {
			err = errors.New("no snapshot yet")
		}
		return err
	})
	victim.kill(t)
	db := filepath.Join(victim.dataDir(), "db", "db.sqlite")
	overwriteMiddle(t, db)
	if err := os.WriteFile(db+".unsynced", nil, 0o644); err != nil {
		t.Fatal(err)
	}

	w.waitAcked(t, 20, "while the node is down")
	restartedAt := victim.logSize()
	victim.start(t)
	waitReady(t, victim)
	// It starts from its snapshot, older than what it had applied, and
	// catches up from the leader.
	last := w.finish(t)
	waitIdentical(t, last, c.nodes...)
	waitSameAnswer(t, padFingerprint, c.nodes...)
	requireIntact(t, c.nodes...)
	if m, _ := victim.findInLog(restartedAt, restoreLine); m == nil {
		t.Errorf("%s did not restore a snapshot after discarding its unsynced database", victim.name)
	}
	if _, err := os.Stat(db + ".unsynced"); !os.IsNotExist(err) {
		t.Errorf("unsynced marker still there: %v", err)
	}
}

// TestLeaderDamagedSnapshot garbles the leader's newest snapshot on disk
// (the one a load installed) while the cluster is quiet, then adds a node
// that can only catch up from a snapshot (the log does not reach back past
// the load). The new node refuses the damaged stream; the leader must take
// a new snapshot and send that instead, and the node must end up with the
// data.
//
// A bug shows as: the new node never catching up (the leader resending the
// damaged snapshot until some unrelated snapshot replaces it), or a node
// that differs from the others.
func TestLeaderDamagedSnapshot(t *testing.T) {
	file := filepath.Join(t.TempDir(), "upload.db")
	makeDB(t, file, 2)
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	data, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := leader.call("POST", "/db/load", data, "application/octet-stream")
	data.Close()
	if err != nil || code != 200 {
		t.Fatalf("load: %d %v %s", code, err, body)
	}
	waitSameAnswer(t, bigFingerprint, c.nodes...)
	snaps, err := snapshotDirs(leader)
	if err != nil || len(snaps) == 0 {
		t.Fatalf("%s's snapshots: %v, %v", leader.name, snaps, err)
	}
	overwriteMiddle(t, filepath.Join(snaps[len(snaps)-1], "state.bin"))

	at := leader.logSize()
	joiner := c.addJoiner("node4", "4", leader)
	joiner.start(t)
	waitReady(t, joiner)
	waitSameAnswer(t, bigFingerprint, c.nodes...)
	requireIntact(t, c.nodes...)
	if m, _ := leader.findInLog(at, regexp.MustCompile(`refused a snapshot as corrupt`)); m == nil {
		t.Errorf("%s did not report the damaged snapshot: was it sent?", leader.name)
	}
}

// restoreLine matches the log lines of a snapshot restore: the cluster's
// warning that the database is older than the latest snapshot, and the
// FSM's line after restoring one.
var restoreLine = regexp.MustCompile(`restoring the snapshot|msg="restored snapshot"`)

// snapshotDirs returns n's complete snapshot directories (raft's
// FileSnapshotStore: <data>/raft/snapshots/<term>-<index>-<ms>), oldest
// first.
func snapshotDirs(n *node) ([]string, error) {
	root := filepath.Join(n.dataDir(), "raft", "snapshots")
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	type snap struct {
		dir  string
		rank [3]uint64
	}
	var snaps []snap
	for _, e := range entries {
		parts := strings.Split(e.Name(), "-")
		if !e.IsDir() || len(parts) != 3 || strings.HasSuffix(e.Name(), ".tmp") {
			continue // *.tmp: an unfinished snapshot
		}
		var s snap
		s.dir = filepath.Join(root, e.Name())
		for i, p := range parts {
			if s.rank[i], err = strconv.ParseUint(p, 10, 64); err != nil {
				return nil, fmt.Errorf("snapshot directory %s: %w", s.dir, err)
			}
		}
		snaps = append(snaps, s)
	}
	sort.Slice(snaps, func(i, j int) bool {
		a, b := snaps[i].rank, snaps[j].rank
		return a[0] < b[0] || a[0] == b[0] && (a[1] < b[1] || a[1] == b[1] && a[2] < b[2])
	})
	out := make([]string, len(snaps))
	for i, s := range snaps {
		out[i] = s.dir
	}
	return out, nil
}

// overwriteMiddle replaces 4 KiB in the middle of file with 0xFF bytes.
func overwriteMiddle(t *testing.T, file string) {
	t.Helper()
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("\xff", 4096)), fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// contiguousRows returns how many rows of table t n holds (level none),
// failing the test unless they are exactly ids 1..count: the writers insert
// ids in order, one acknowledged before the next, so any state a node
// applied is such a prefix.
func (n *node) contiguousRows(t *testing.T) int {
	t.Helper()
	got, err := n.rows("none", "SELECT COUNT(*), COALESCE(MIN(id), 1), COALESCE(MAX(id), 0) FROM t")
	if err != nil {
		t.Fatalf("%s: %v", n.name, err)
	}
	count, lo, hi := fmt.Sprint(got[0][0]), fmt.Sprint(got[0][1]), fmt.Sprint(got[0][2])
	if lo != "1" || hi != count {
		t.Fatalf("%s holds %s rows with ids %s..%s, not ids 1..%[2]s", n.name, count, lo, hi)
	}
	v, _ := strconv.Atoi(count)
	return v
}

// startSnapshottingCluster starts the Procfile cluster snapshotting often
// (snapOften), with 10 seeded rows and padMB MB of padding, and returns it
// with its leader.
func startSnapshottingCluster(t *testing.T, padMB int) (*cluster, *node) {
	c := startProcfileCluster(t, snapOften...)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	seedRows(t, c, leader, 10)
	padTable(t, leader, padMB)
	return c, leader
}
