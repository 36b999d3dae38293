//go:build linux

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// The linearizability tests model the database as a set of independent
// integer registers: table kv(k INTEGER PRIMARY KEY, v INTEGER), one row per
// key, every key present from the start with v = 0. Porcupine checks each
// key's history on its own (the model's Partition), which keeps the search
// small.

// kvOp is the kind of a register operation.
type kvOp int

const (
	opRead  kvOp = iota // SELECT v FROM kv WHERE k=?
	opWrite             // INSERT OR REPLACE INTO kv(k, v) VALUES(?, ?)
	opCAS               // UPDATE kv SET v=? WHERE k=? AND v=?
)

// kvInput is an operation's input.
type kvInput struct {
	Op     kvOp
	Key    int
	Value  int // write: the value; cas: the new value
	Expect int // cas: the value it expects
}

// kvOutput is an operation's outcome. Unknown marks a write or a
// compare-and-set whose outcome the client could not learn (a timeout, a
// lost connection): it may or may not have taken effect, and its Return is
// the end of the history. Reads that fail are left out of the history.
type kvOutput struct {
	Value   int  // read: the value read
	OK      bool // cas: whether it swapped (rows_affected = 1)
	Unknown bool
}

// kvMeta is an operation's metadata, shown in the visualisation.
type kvMeta struct {
	Node  string
	Level string
}

// kvModel is the register model, partitioned by key.
var kvModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[int][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(kvInput).Key
			byKey[k] = append(byKey[k], op)
		}
		keys := make([]int, 0, len(byKey))
		for k := range byKey {
			keys = append(keys, k)
		}
		sort.Ints(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() interface{} { return 0 },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		v := state.(int)
		in, out := input.(kvInput), output.(kvOutput)
		switch in.Op {
		case opRead:
			return out.Value == v, v
		case opWrite:
			return true, in.Value
		case opCAS:
			switch {
			case out.Unknown:
				// Linearized here it took effect, and so swapped exactly
				// when the register held the expected value. (That it never
				// took effect is covered by linearizing it at the end of the
				// history, where nothing observes it.)
				if v == in.Expect {
					return true, in.Value
				}
				return true, v
			case out.OK:
				return v == in.Expect, in.Value
			default:
				return v != in.Expect, v
			}
		}
		return false, v
	},
	DescribeOperation: func(input, output interface{}) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch in.Op {
		case opRead:
			return fmt.Sprintf("get(k%d) -> %d", in.Key, out.Value)
		case opWrite:
			if out.Unknown {
				return fmt.Sprintf("put(k%d, %d) -> ?", in.Key, in.Value)
			}
			return fmt.Sprintf("put(k%d, %d)", in.Key, in.Value)
		default:
			res := fmt.Sprint(out.OK)
			if out.Unknown {
				res = "?"
			}
			return fmt.Sprintf("cas(k%d, %d -> %d) -> %s", in.Key, in.Expect, in.Value, res)
		}
	},
	DescribeState: func(state interface{}) string { return fmt.Sprint(state.(int)) },
	DescribeOperationMetadata: func(info interface{}) string {
		if m, ok := info.(kvMeta); ok {
			return fmt.Sprintf("%s (%s)", m.Node, m.Level)
		}
		return ""
	},
}

// history records operations from concurrent clients against one clock.
type history struct {
	t0 time.Time

	mu      sync.Mutex
	ops     []porcupine.Operation
	pending []int // positions of operations with an unknown outcome
}

func newHistory() *history { return &history{t0: time.Now()} }

// now is the history's clock (monotonic nanoseconds since its start).
func (h *history) now() int64 { return int64(time.Since(h.t0)) }

// add records a completed operation.
func (h *history) add(client int, in kvInput, out kvOutput, call, ret int64, meta kvMeta) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if out.Unknown {
		h.pending = append(h.pending, len(h.ops))
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: meta})
}

// operations returns the history with every unknown outcome's return time
// moved to the end of the history (after every other event), porcupine's
// convention for an operation that may take effect at any time after its
// call, or never.
func (h *history) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	var end int64
	for _, op := range ops {
		end = max(end, op.Call, op.Return)
	}
	for _, i := range h.pending {
		ops[i].Return = end + 1
	}
	return ops
}

// artifactDir is where tests write artifacts: $RAFTLITE_ARTIFACTS, or a
// temporary directory of the test.
func artifactDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("RAFTLITE_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("create artifact directory: %v", err)
		}
		return d
	}
	return t.TempDir()
}

var unsafeFileChars = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// checkHistory checks ops against kvModel, bounded by timeout, writes
// porcupine's HTML visualisation to the artifact directory and returns the
// verdict and the visualisation's path.
func checkHistory(t *testing.T, ops []porcupine.Operation, timeout time.Duration) (porcupine.CheckResult, string) {
	t.Helper()
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, timeout)
	t.Logf("porcupine: %s for %d operations in %v", resultName(res), len(ops), time.Since(start).Round(time.Millisecond))
	path := filepath.Join(artifactDir(t), unsafeFileChars.ReplaceAllString(t.Name(), "_")+".html")
	if err := porcupine.VisualizePath(kvModel, info, path); err != nil {
		t.Errorf("write porcupine visualisation: %v", err)
	} else {
		t.Logf("porcupine visualisation: %s", path)
	}
	return res, path
}

func resultName(r porcupine.CheckResult) string {
	switch r {
	case porcupine.Ok:
		return "linearizable"
	case porcupine.Illegal:
		return "NOT linearizable"
	default:
		return "unknown (the check timed out)"
	}
}
