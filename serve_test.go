package main

import (
	"io"
	"testing"
	"time"
)

// The operations flags keep rqlited's names and defaults: a leader steps
// down on a graceful stop unless told not to; reaping and leaving are off.
func TestOperationsFlags(t *testing.T) {
	f, err := parseServeFlags([]string{"data"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (opsFlags{stepDownOnShutdown: true}); f.ops != want {
		t.Fatalf("defaults %+v, want %+v", f.ops, want)
	}
	f, err = parseServeFlags([]string{"-raft-reap-node-timeout", "48h", "-raft-reap-read-only-node-timeout=30m",
		"-raft-cluster-remove-shutdown", "-raft-shutdown-stepdown=false", "data"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if want := (opsFlags{48 * time.Hour, 30 * time.Minute, true, false}); f.ops != want {
		t.Fatalf("flags %+v, want %+v", f.ops, want)
	}
	if _, err := parseServeFlags([]string{"-raft-reap-node-timeout=-1s", "data"}, io.Discard, io.Discard); err == nil {
		t.Fatal("a negative reap timeout was accepted")
	}
}
