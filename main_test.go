package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestHelpGoesToStdout: -h of every subcommand prints its usage to stdout
// and exits 0, so that `raftlite serve -h | less` works; a bad flag still
// goes to stderr with status 2.
func TestHelpGoesToStdout(t *testing.T) {
	for _, sub := range []string{"serve", "shell", "bench", "check", "backup", "restore", "selftest", "completion", "members", "promote", "healthcheck"} {
		var stdout, stderr bytes.Buffer
		if rc := run([]string{sub, "-h"}, &stdout, &stderr); rc != 0 {
			t.Errorf("%s -h exited %d", sub, rc)
		}
		if !strings.Contains(stdout.String(), "Usage: raftlite "+sub) || stderr.Len() > 0 {
			t.Errorf("%s -h: stdout %q, stderr %q", sub, firstLine(stdout.String()), stderr.String())
		}
		stdout.Reset()
		stderr.Reset()
		if rc := run([]string{sub, "-no-such-flag"}, &stdout, &stderr); rc != 2 || stdout.Len() > 0 ||
			!strings.Contains(stderr.String(), "flag provided but not defined") {
			t.Errorf("%s -no-such-flag: status %d, stdout %q, stderr %q", sub, rc, firstLine(stdout.String()), firstLine(stderr.String()))
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
