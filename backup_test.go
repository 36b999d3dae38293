package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupRestoreCommands runs `raftlite backup` and `raftlite restore`
// against a real node, with an unreachable host listed first: both must
// fail over to the next host, and the restored database must be the one
// backed up.
func TestBackupRestoreCommands(t *testing.T) {
	n := startAPICluster(t, 1, nil)[0]
	mustExecute(t, n.url, `["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", "INSERT INTO t(v) VALUES('one')", "INSERT INTO t(v) VALUES('two')"]`)
	gone := listenLocal(t)
	goneAddr := gone.Addr().String()
	gone.Close()
	hosts := goneAddr + "," + n.url

	for _, format := range []string{"sql", "binary"} {
		t.Run(format, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "db."+format)
			var stdout, stderr bytes.Buffer
			if rc := backup([]string{"-H", hosts, "-fmt", format, "-o", file}, &stdout, &stderr); rc != 0 {
				t.Fatalf("backup exited %d: %s", rc, stderr.String())
			}
			dump, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if format == "sql" && !strings.Contains(string(dump), "'two'") {
				t.Fatalf("dump lacks the rows written:\n%s", dump)
			}
			// A file replaces the database; a dump runs on top of it.
			if format == "sql" {
				mustExecute(t, n.url, `["DROP TABLE t"]`)
			} else {
				mustExecute(t, n.url, `["DELETE FROM t"]`)
			}
			if rc := restore([]string{"-H", hosts, file}, &stdout, &stderr); rc != 0 {
				t.Fatalf("restore exited %d: %s", rc, stderr.String())
			}
			if got := countRows(t, n); got != 2 {
				t.Fatalf("%v rows after restore, want 2", got)
			}
		})
	}
}

// TestRestoreReportsRefusal: a node's non-200 answer is the command's
// failure, with the status and the node's reason, not a retry elsewhere.
func TestRestoreReportsRefusal(t *testing.T) {
	n := startAPICluster(t, 1, nil)[0]
	file := filepath.Join(t.TempDir(), "broken.db")
	if err := os.WriteFile(file, append([]byte("SQLite format 3\x00"), make([]byte, 100)...), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if rc := restore([]string{"-H", n.url, file}, &stdout, &stderr); rc != 1 {
		t.Fatalf("restore of a broken database exited %d, want 1; stdout %q", rc, stdout.String())
	}
	if !strings.Contains(stderr.String(), "HTTP 4") {
		t.Fatalf("stderr %q does not report the node's 4xx answer", stderr.String())
	}
}
