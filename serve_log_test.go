package main

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// TestLogFormat: -log-format json gives one JSON object a line with slog's
// keys, text stays the default, and anything else is refused.
func TestLogFormat(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want func(line string) bool
	}{
		{nil, func(line string) bool {
			return strings.HasPrefix(line, "time=") && strings.Contains(line, `msg="node started" peer=node2`)
		}},
		{[]string{"-log-format", "json"}, func(line string) bool {
			var rec map[string]any
			return json.Unmarshal([]byte(line), &rec) == nil && rec["level"] == "WARN" && rec["msg"] == "node started" && rec["peer"] == "node2"
		}},
	} {
		f, err := parseServeFlags(tt.args, io.Discard, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		logger, err := newLogger(f.logLevel, f.logFormat, &out)
		if err != nil {
			t.Fatal(err)
		}
		logger.Warn("node started", "peer", "node2")
		if line := strings.TrimSuffix(out.String(), "\n"); !tt.want(line) || strings.Count(out.String(), "\n") != 1 {
			t.Errorf("%v: logged %q", tt.args, out.String())
		}
	}
	if _, err := newLogger("info", "xml", io.Discard); err == nil || !strings.Contains(err.Error(), "-log-format") {
		t.Errorf("-log-format xml: %v, want an error naming the flag", err)
	}
}
