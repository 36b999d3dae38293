package selftest

import (
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

func read(client, key, value, count int, call, ret int64, node string) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: kvInput{Kind: opRead, Key: key},
		Output: kvOutput{Value: value, Count: count}, Call: call, Return: ret, Metadata: opMeta{Node: node, Level: "linearizable"}}
}

func write(client, key, value int, unknown bool, call, ret int64) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: kvInput{Kind: opWrite, Key: key, Value: value},
		Output: kvOutput{Unknown: unknown}, Call: call, Return: ret, Metadata: opMeta{Node: "n1", Level: "write"}}
}

// TestModel: the register model rejects the histories a broken database
// produces and accepts the tricky ones a correct one may.
func TestModel(t *testing.T) {
	const end = 1000 // an unknown outcome's return: the end of the history
	cases := []struct {
		name string
		ops  []porcupine.Operation
		want porcupine.CheckResult
	}{
		{"stale read after an acknowledged write", []porcupine.Operation{
			write(0, 1, 5, false, 0, 10),
			read(1, 1, 0, 0, 20, 30, "n2"),
		}, porcupine.Illegal},
		{"a read concurrent with a write sees either", []porcupine.Operation{
			write(0, 1, 5, false, 0, 10),
			read(1, 1, 0, 0, 5, 30, "n2"),
			read(2, 1, 5, 1, 6, 7, "n3"),
		}, porcupine.Ok},
		{"a read on one node, then an older one on another", []porcupine.Operation{
			write(0, 1, 5, false, 0, 100),
			read(1, 1, 5, 1, 10, 20, "n1"),
			read(1, 1, 0, 0, 21, 40, "n2"),
		}, porcupine.Illegal},
		{"a write applied twice", []porcupine.Operation{
			write(0, 1, 5, false, 0, 10),
			read(1, 1, 5, 2, 20, 30, "n1"),
		}, porcupine.Illegal},
		{"an acknowledged write lost", []porcupine.Operation{
			write(0, 1, 5, false, 0, 10),
			write(0, 1, 6, false, 20, 30),
			read(1, 1, 6, 1, 40, 50, "n1"),
		}, porcupine.Illegal},
		{"an unknown write may be seen late", []porcupine.Operation{
			write(0, 1, 7, true, 0, end),
			read(1, 1, 0, 0, 10, 20, "n1"),
			read(1, 1, 7, 1, 30, 40, "n2"),
		}, porcupine.Ok},
		{"an unknown write may never be seen", []porcupine.Operation{
			write(0, 1, 7, true, 0, end),
			read(1, 1, 0, 0, 10, 20, "n1"),
		}, porcupine.Ok},
		{"an unknown write seen cannot be unseen", []porcupine.Operation{
			write(0, 1, 7, true, 0, end),
			read(1, 1, 7, 1, 10, 20, "n1"),
			read(1, 1, 0, 0, 30, 40, "n2"),
		}, porcupine.Illegal},
		{"keys are independent", []porcupine.Operation{
			write(0, 1, 5, false, 0, 10),
			read(1, 2, 0, 0, 20, 30, "n1"),
			read(1, 1, 5, 1, 40, 50, "n1"),
		}, porcupine.Ok},
	}
	for _, tc := range cases {
		if got := porcupine.CheckOperationsTimeout(kvModel, tc.ops, 10*time.Second); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, verdict(got), verdict(tc.want))
		}
	}
}

// TestHistoryUnknownReturnsAtEnd: the recorder moves an unknown outcome's
// return past every other event, so a write that timed out may still take
// effect later.
func TestHistoryUnknownReturnsAtEnd(t *testing.T) {
	h := newHistory()
	h.add(0, kvInput{Kind: opWrite, Key: 1, Value: 7}, kvOutput{Unknown: true}, 0, 5, opMeta{})
	h.add(1, kvInput{Kind: opRead, Key: 1}, kvOutput{Value: 0}, 10, 20, opMeta{})
	h.add(1, kvInput{Kind: opRead, Key: 1}, kvOutput{Value: 7, Count: 1}, 30, 40, opMeta{})
	ops := h.operations()
	if ops[0].Return != 41 {
		t.Fatalf("unknown outcome returns at %d, want 41 (after the last event)", ops[0].Return)
	}
	if !porcupine.CheckOperations(kvModel, ops) {
		t.Fatalf("a late-seen unknown write judged not linearizable")
	}
}

// TestStaleReads: the explanation lists a read that returned an older count
// than a read that had returned before it began, and nothing else.
func TestStaleReads(t *testing.T) {
	ops := []porcupine.Operation{
		write(0, 8, 1036, false, 0, 10),
		read(1, 8, 1036, 1, 20, 30, "n1"),
		read(1, 8, 989, 0, 30+7, 50, "n2"), // begins 7 ns after the first returned
		read(2, 8, 989, 0, 25, 60, "n3"),   // concurrent with the first: fine
	}
	faults := []porcupine.Annotation{{Start: 0, End: 5, Description: "kill -9 n3"}}
	n, examples := staleReads(ops, faults, 5)
	if n != 1 || len(examples) != 1 {
		t.Fatalf("%d stale reads %q, want exactly the one on n2", n, examples)
	}
	if !strings.Contains(examples[0], "read on n2") || !strings.Contains(examples[0], "after a read on n1") ||
		!strings.HasSuffix(examples[0], "; no fault active") {
		t.Fatalf("explanation %q does not name the stale read on n2, the read on n1 and that no fault was active", examples[0])
	}
}
