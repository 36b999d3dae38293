package shell

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/raftlite/raftlite/client"
)

// .watch prints a table's committed changes, history from an index
// included, as they come, until its context ends (Ctrl-C).
func TestWatchCommand(t *testing.T) {
	c := sharedNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := client.New(client.Config{Nodes: c.urls()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	exec := func(sql string) uint64 {
		r, err := cl.Execute(ctx, client.SQL(sql))
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return r.RaftIndex
	}
	exec("DROP TABLE IF EXISTS watched")
	exec("CREATE TABLE watched (id INTEGER PRIMARY KEY, v TEXT)")
	first := exec("INSERT INTO watched VALUES (1, 'one')")

	out := &syncBuffer{}
	sh, err := newShell(Config{Hosts: c.urls(), Version: "test", Timeout: 5 * time.Second}, out, out)
	if err != nil {
		t.Fatal(err)
	}
	defer sh.close()
	watchCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- sh.runDot(watchCtx, ".watch watched from "+strconv.FormatUint(first, 10)) }()
	exec("UPDATE watched SET v = 'uno' WHERE id = 1")
	exec("DELETE FROM watched")

	want := []*regexp.Regexp{
		regexp.MustCompile(`^\d+ insert watched pk=\{"id":1\} \{"id":1,"v":"one"\}$`),
		regexp.MustCompile(`^\d+ update watched pk=\{"id":1\} \{"id":1,"v":"uno"\} \(was \{"id":1,"v":"one"\}\)$`),
		regexp.MustCompile(`^\d+ delete watched pk=\{"id":1\} \(was \{"id":1,"v":"uno"\}\)$`),
	}
	var lines []string
	deadline := time.Now().Add(20 * time.Second)
	for len(lines) < len(want) && time.Now().Before(deadline) {
		if s := out.take(); s != "" {
			lines = append(lines, strings.Split(strings.TrimRight(s, "\n"), "\n")...)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf(".watch ended with %v", err)
	}
	if len(lines) != len(want) {
		t.Fatalf(".watch printed %q", lines)
	}
	for i, re := range want {
		if !re.MatchString(lines[i]) {
			t.Errorf("line %d: %q does not match %s", i, lines[i], re)
		}
	}
	if err := sh.runDot(ctx, ".watch watched since 1"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf(".watch with a bad argument: %v", err)
	}
}
