//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/raftlite/raftlite/client"
)

// TestBcryptCredentials starts a node with an rqlite credentials file
// whose admin password is a bcrypt hash made here (at bcrypt's default
// cost), and logs in through the Go client and the shell: the right
// password works, a wrong one gets 401 with code unauthorized, the node
// logs the failure without the password, and repeated failures from the
// address end in 429 with Retry-After.
func TestBcryptCredentials(t *testing.T) {
	const password, wrong = "correct horse", "battery staple"
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	creds, err := json.Marshal([]map[string]any{
		{"username": "admin", "password": string(hash), "perms": []string{"all"}},
		{"username": "*", "perms": []string{"ready"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	authFile := filepath.Join(c.dir, "auth.json")
	if err := os.WriteFile(authFile, creds, 0o600); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2)
	n := c.add("node1", []string{"serve", "-node-id", "1",
		"-http-addr", fmt.Sprintf("127.0.0.1:%d", ports[0]), "-raft-addr", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"-auth", authFile, filepath.Join(c.dir, "data", "node1")})
	n.start(t)
	waitReady(t, n) // "*" holds ready: no credentials needed

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	admin, err := client.New(client.Config{Nodes: []string{n.httpAddr}, User: "admin", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Execute(ctx, client.SQL("CREATE TABLE t (v TEXT)"), client.SQL("INSERT INTO t VALUES (?)", "from the client")); err != nil {
		t.Fatalf("Go client with the bcrypt user's password: %v", err)
	}
	intruder, err := client.New(client.Config{Nodes: []string{n.httpAddr}, User: "admin", Password: wrong})
	if err != nil {
		t.Fatal(err)
	}
	defer intruder.Close()
	var apiErr *client.APIError
	if _, err := intruder.Query(ctx, client.SQL("SELECT * FROM t")); !errors.As(err, &apiErr) || apiErr.Status != http.StatusUnauthorized || apiErr.Code != "unauthorized" {
		t.Fatalf("Go client with a wrong password: %v, want 401 unauthorized", err)
	}

	shell := func(user string, sql string) (string, error) {
		cmd := exec.Command(binary, "shell", "-H", n.httpAddr, "-u", user, "-c", sql)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	out, err := shell("admin:"+password, "INSERT INTO t VALUES ('from the shell'); SELECT v FROM t ORDER BY v")
	if err != nil || !strings.Contains(out, "from the client") || !strings.Contains(out, "from the shell") {
		t.Fatalf("shell with the bcrypt user's password: %v\n%s", err, out)
	}
	out, err = shell("admin:"+wrong, "SELECT v FROM t")
	if err == nil || !strings.Contains(out, "401") || strings.Contains(out, "from the") {
		t.Fatalf("shell with a wrong password: %v, want a 401 failure without rows\n%s", err, out)
	}

	failed := regexp.MustCompile(`level=WARN msg="login failed" .*user=admin client=127\.0\.0\.1 .*reason="wrong password"`)
	_, next := n.waitLog(t, 0, waitTimeout, failed) // the Go client's
	n.waitLog(t, next, waitTimeout, failed)         // the shell's
	if lines, _ := n.findInLog(0, regexp.MustCompile(regexp.QuoteMeta(wrong))); len(lines) != 0 {
		t.Fatalf("the node logged the wrong password: %q", lines)
	}

	// More guesses from this address: throttled, the right password too.
	statusAs := func(pw string) (int, string) {
		req, err := http.NewRequest("GET", n.url("/status"), nil)
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("admin", pw)
		resp, err := n.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	status, retryAfter := http.StatusUnauthorized, ""
	for guesses := 0; status == http.StatusUnauthorized && guesses < 20; guesses++ {
		status, retryAfter = statusAs(wrong)
	}
	if secs, err := strconv.Atoi(retryAfter); status != http.StatusTooManyRequests || err != nil || secs < 1 || secs > 60 {
		t.Fatalf("repeated wrong passwords: %d Retry-After=%q, want 429 within a minute", status, retryAfter)
	}
	if status, _ := statusAs(password); status != http.StatusTooManyRequests {
		t.Fatalf("right password from the throttled address: %d, want 429", status)
	}
}
