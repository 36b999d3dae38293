package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"
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

// TestBackupRefusesToOverwrite: backup -o keeps an existing file unless -f
// is given.
func TestBackupRefusesToOverwrite(t *testing.T) {
	n := startAPICluster(t, 1, nil)[0]
	mustExecute(t, n.url, `["CREATE TABLE t (v TEXT)"]`)
	file := filepath.Join(t.TempDir(), "keep.db")
	if err := os.WriteFile(file, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if rc := backup([]string{"-H", n.url, "-o", file}, &stdout, &stderr); rc != 1 || !strings.Contains(stderr.String(), "use -f to overwrite") {
		t.Fatalf("backup over an existing file: status %d, stderr %q", rc, stderr.String())
	}
	if b, _ := os.ReadFile(file); string(b) != "precious" {
		t.Fatalf("the existing file was overwritten without -f: %q", b)
	}
	if rc := backup([]string{"-H", n.url, "-o", file, "-f"}, &stdout, &stderr); rc != 0 {
		t.Fatalf("backup -f exited %d: %s", rc, stderr.String())
	}
	if b, _ := os.ReadFile(file); !bytes.HasPrefix(b, []byte("SQLite format 3\x00")) {
		t.Fatalf("backup -f did not replace the file: %q", b[:min(len(b), 16)])
	}
}

// TestTransferProgress: on a terminal, backup and restore show the bytes
// moved and the rate on stderr; piped, they show nothing of it.
func TestTransferProgress(t *testing.T) {
	n := startAPICluster(t, 1, nil)[0]
	mustExecute(t, n.url, `["CREATE TABLE t (v TEXT)", "INSERT INTO t VALUES (randomblob(100000))"]`)
	file := filepath.Join(t.TempDir(), "db.sqlite")

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	var screen testLog // what the terminal shows
	go io.Copy(&screen, ptmx)
	var stdout bytes.Buffer
	if rc := backup([]string{"-H", n.url, "-o", file}, &stdout, tty); rc != 0 {
		t.Fatalf("backup exited %d: %s", rc, screen.String())
	}
	if rc := restore([]string{"-H", n.url, file}, &stdout, tty); rc != 0 {
		t.Fatalf("restore exited %d: %s", rc, screen.String())
	}
	tty.Close()
	// The size is known for a restore (the file), not for a backup (streamed).
	progress := regexp.MustCompile(`(backup|restore): [0-9.]+ KiB( of [0-9.]+ KiB \(100%\))?, [0-9.]+ [KMG]?i?B/s`)
	deadline := time.Now().Add(5 * time.Second)
	for len(progress.FindAllString(screen.String(), -1)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := progress.FindAllStringSubmatch(screen.String(), -1); len(got) < 2 || got[0][1] != "backup" || got[len(got)-1][1] != "restore" {
		t.Fatalf("no progress lines for backup and restore on the terminal:\n%q", screen.String())
	}

	var stderr bytes.Buffer
	if rc := backup([]string{"-H", n.url, "-o", file, "-f"}, &stdout, &stderr); rc != 0 {
		t.Fatalf("backup exited %d: %s", rc, stderr.String())
	}
	if rc := restore([]string{"-H", n.url, file}, &stdout, &stderr); rc != 0 {
		t.Fatalf("restore exited %d: %s", rc, stderr.String())
	}
	if strings.Contains(stderr.String(), "/s") || strings.Contains(stderr.String(), "\r") {
		t.Fatalf("progress written to a pipe: %q", stderr.String())
	}
}
