package shell

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runBinary runs "raftlite shell args..." with stdin and returns its
// output and exit status.
func runBinary(t *testing.T, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, raftliteBinary(t), append([]string{"shell"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatalf("running the shell: %v", err)
	}
	return out.String(), errOut.String(), code
}

// TestNonInteractive checks scripted use: results only, and the exit status.
func TestNonInteractive(t *testing.T) {
	c := sharedNode(t)
	resetDatabase(t, c)
	h := c.nodes[0].httpAddr
	dead, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	deadHost := "127.0.0.1:" + strconv.Itoa(dead[0]) // nothing listens there

	tests := []struct {
		name       string
		stdin      string
		args       []string
		wantOut    string
		wantErr    string // a substring of stderr ("" means empty)
		wantStatus int
	}{
		{
			name:    "-c runs statements and prints only results",
			args:    []string{"-H", h, "-c", "CREATE TABLE ni (x); INSERT INTO ni VALUES (1); SELECT x FROM ni"},
			wantOut: "+---+\n| x |\n+---+\n| 1 |\n+---+\n",
		},
		{
			name:    "-c with a dot-command and a mode",
			args:    []string{"-H", h, "-mode", "csv", "-c", ".tables ni"},
			wantOut: "ni\n",
		},
		{
			name:       "-c with an error exits 1; the line's other statements ran",
			args:       []string{"-H", h, "-mode", "csv", "-c", "SELECT * FROM nope; SELECT 1 AS one;"},
			wantOut:    "one\n1\n",
			wantErr:    "Error: no such table: nope\n",
			wantStatus: 1,
		},
		{
			name:    "a transaction without COMMIT at the end of input is rolled back",
			stdin:   "BEGIN;\nINSERT INTO ni VALUES (99);\n",
			args:    []string{"-H", h},
			wantErr: "note: no COMMIT before the end of the input: the transaction was rolled back (1 statement not sent)\n",
		},
		{
			name:    "stdin script, last statement without ;",
			stdin:   "INSERT INTO ni VALUES (2);\n-- a comment\nSELECT count(*)\n  FROM ni",
			args:    []string{"-H", h, "-mode", "csv"},
			wantOut: "count(*)\n2\n",
		},
		{
			name:       "stdin stops at the first error",
			stdin:      "INSERT INTO ni VALUES (3);\nSELECT 'ok';\n\nINSERT INTO nope VALUES (1);\nINSERT INTO ni VALUES (4);\n",
			args:       []string{"-H", h, "-mode", "csv"},
			wantOut:    "'ok'\nok\n",
			wantErr:    "Error: line 4: no such table: nope\n",
			wantStatus: 1,
		},
		{
			name:    "nothing after the error ran",
			args:    []string{"-H", h, "-mode", "csv", "-c", "SELECT group_concat(x) AS xs FROM ni"},
			wantOut: "xs\n\"1,2,3\"\n",
		},
		{
			name:       "unclosed quote at the end of input",
			stdin:      "SELECT 'abc;\n",
			args:       []string{"-H", h},
			wantErr:    "Error: line 1: incomplete statement at end of input",
			wantStatus: 1,
		},
		{
			name:       ".exit with a status stops the script",
			stdin:      "SELECT 1 AS a;\n.exit 3\nSELECT 2;\n",
			args:       []string{"-H", h, "-mode", "csv"},
			wantOut:    "a\n1\n",
			wantStatus: 3,
		},
		{
			name:       "unknown dot-command",
			args:       []string{"-H", h, "-c", ".frobnicate"},
			wantErr:    "Error: unknown command \".frobnicate\" (try .help)\n",
			wantStatus: 1,
		},
		{
			name:    "a dead first host: the next one answers",
			args:    []string{"-H", deadHost + "," + h, "-mode", "csv", "-c", "SELECT 7 AS n"},
			wantOut: "n\n7\n",
			wantErr: "note: now connected to http://" + h + " (http://" + deadHost + " failed: connection refused)\n",
		},
		{
			name:       "no host answers",
			args:       []string{"-H", deadHost, "-timeout", "1s", "-c", "SELECT 1"},
			wantErr:    "Error: no node answered: dial tcp " + deadHost + ": connect: connection refused\n",
			wantStatus: 1,
		},
		{
			name:       "bad flag",
			args:       []string{"-consistency", "sometimes"},
			wantErr:    "-consistency: unknown level \"sometimes\"",
			wantStatus: 2,
		},
		{
			name:       "stray argument",
			args:       []string{"SELECT 1"},
			wantErr:    "unexpected argument",
			wantStatus: 2,
		},
		{
			name:       ".quit stops the script",
			args:       []string{"-H", h, "-c", ".quit\nSELECT * FROM nope"},
			wantStatus: 0,
		},
		{
			name:    "consistency flag",
			args:    []string{"-H", h, "-consistency", "linearizable", "-c", ".consistency"},
			wantOut: "linearizable\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, code := runBinary(t, tt.stdin, tt.args...)
			if code != tt.wantStatus {
				t.Errorf("exit status %d, want %d (stderr %q)", code, tt.wantStatus, errOut)
			}
			if out != tt.wantOut {
				t.Errorf("stdout:\n%s\nwant:\n%s", out, tt.wantOut)
			}
			if tt.wantErr == "" && errOut != "" || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("stderr %q, want %q", errOut, tt.wantErr)
			}
		})
	}
}

func TestHelpFlag(t *testing.T) {
	out, errOut, code := runBinary(t, "", "-h")
	if code != 0 || !strings.Contains(out, "Usage: raftlite shell [flags]") || !strings.Contains(out, "-consistency") || errOut != "" {
		t.Errorf("status %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// TestBackupWhenSupported checks .backup and .dump against a server that
// implements /db/backup (skipped until it does; testdata/backup_unsupported.txt
// covers the other case).
func TestBackupWhenSupported(t *testing.T) {
	c := sharedNode(t)
	resp, err := http.Get(c.nodes[0].url() + "/db/backup")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotImplemented {
		t.Skip("the server does not implement /db/backup yet")
	}
	resetDatabase(t, c)
	dir := t.TempDir()
	db, dump := filepath.Join(dir, "b.db"), filepath.Join(dir, "b.sql")
	h := c.nodes[0].httpAddr
	out, errOut, code := runBinary(t, "", "-H", h, "-c",
		"CREATE TABLE bk (x); INSERT INTO bk VALUES (42);\n.backup "+db+"\n.dump "+dump+"\n.dump")
	if code != 0 {
		t.Fatalf("status %d: %s", code, errOut)
	}
	if !strings.Contains(out, "CREATE TABLE bk") {
		t.Errorf(".dump printed %q, want the table", out)
	}
	data, err := os.ReadFile(db)
	if err != nil || !bytes.HasPrefix(data, []byte("SQLite format 3\x00")) {
		t.Errorf(".backup wrote %d bytes (%v), want an SQLite file", len(data), err)
	}
	if text, err := os.ReadFile(dump); err != nil || !strings.Contains(string(text), "42") {
		t.Errorf(".dump FILE wrote %q (%v)", text, err)
	}
}

// TestCredentials checks -u against a node that requires authentication.
func TestCredentials(t *testing.T) {
	auth := filepath.Join(t.TempDir(), "auth.json")
	creds := `[{"username": "fiona", "password": "s3cret:x", "perms": ["all"]}]`
	if err := os.WriteFile(auth, []byte(creds), 0o600); err != nil {
		t.Fatal(err)
	}
	c := newCluster(t, 1, "-auth", auth)
	h := c.nodes[0].httpAddr
	out, errOut, code := runBinary(t, "", "-H", h, "-u", "fiona:s3cret:x", "-mode", "csv", "-c", "SELECT 'in' AS who")
	if code != 0 || out != "who\nin\n" {
		t.Errorf("with credentials: status %d, stdout %q, stderr %q", code, out, errOut)
	}
	for _, args := range [][]string{{"-u", "fiona:wrong"}, {}} {
		args = append([]string{"-H", h, "-c", "SELECT 1"}, args...)
		out, errOut, code = runBinary(t, "", args...)
		if code != 1 || out != "" || !strings.Contains(errOut, "(HTTP 401 from http://"+h+")") {
			t.Errorf("%q: status %d, stdout %q, stderr %q; want status 1 and an HTTP 401 error", args, code, out, errOut)
		}
	}
	if _, errOut, code := runBinary(t, "", "-u", "nocolon"); code != 2 || !strings.Contains(errOut, "-u: want user:password") {
		t.Errorf("-u nocolon: status %d, stderr %q", code, errOut)
	}
}
