package selftest

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// The database is modelled as independent registers: table kv(k INTEGER
// PRIMARY KEY, v INTEGER, n INTEGER), one row per key, present from the
// start with v = 0 and n = 0. A write sets v and increments n in the same
// statement, so n counts the writes applied to the key: a write applied
// twice, or an acknowledged write that vanished, shows in every later read.

// opKind is the kind of a register operation.
type opKind int

const (
	opRead  opKind = iota // SELECT v, n FROM kv WHERE k=?
	opWrite               // UPDATE kv SET v=?, n=n+1 WHERE k=?
)

// kvInput is an operation's input.
type kvInput struct {
	Kind  opKind
	Key   int
	Value int // write: the value written (unique over the run)
}

// kvOutput is an operation's outcome. A read returns the register; Unknown
// marks a write whose outcome the client never learnt.
type kvOutput struct {
	Value   int
	Count   int
	Unknown bool
}

// register is one key's state: its value and how many writes it has had.
type register struct {
	Value int
	Count int
}

// opMeta is what the visualisation shows about an operation.
type opMeta struct {
	Node     string // where it was answered (a write: the node of its last attempt)
	Level    string // a read's consistency level, or "write"
	Attempts int    // a write's attempts (retries keep the session's seq)
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
	Init: func() any { return register{} },
	Step: func(state, input, output any) (bool, any) {
		r := state.(register)
		in, out := input.(kvInput), output.(kvOutput)
		if in.Kind == opRead {
			return out.Value == r.Value && out.Count == r.Count, r
		}
		// A write always can take effect; an unknown one that never did is
		// linearized at the end of the history, where nothing observes it.
		return true, register{Value: in.Value, Count: r.Count + 1}
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(kvInput), output.(kvOutput)
		switch {
		case in.Kind == opRead:
			return fmt.Sprintf("get(k%d) -> %d (#%d)", in.Key, out.Value, out.Count)
		case out.Unknown:
			return fmt.Sprintf("put(k%d, %d) -> ?", in.Key, in.Value)
		default:
			return fmt.Sprintf("put(k%d, %d)", in.Key, in.Value)
		}
	},
	DescribeState: func(state any) string {
		r := state.(register)
		return fmt.Sprintf("%d (#%d)", r.Value, r.Count)
	},
	DescribeOperationMetadata: func(info any) string {
		m, ok := info.(opMeta)
		if !ok {
			return ""
		}
		if m.Attempts > 1 {
			return fmt.Sprintf("%s (%s, %d attempts)", m.Node, m.Level, m.Attempts)
		}
		return fmt.Sprintf("%s (%s)", m.Node, m.Level)
	},
}

// history records operations from concurrent clients, and the nemesis's
// steps, against one clock.
type history struct {
	t0 time.Time

	mu          sync.Mutex
	ops         []porcupine.Operation
	unknown     []int // positions of writes with an unknown outcome
	annotations []porcupine.Annotation
}

func newHistory() *history { return &history{t0: time.Now()} }

// now is the history's clock: monotonic nanoseconds since its start.
func (h *history) now() int64 { return int64(time.Since(h.t0)) }

// add records an operation.
func (h *history) add(client int, in kvInput, out kvOutput, call, ret int64, meta opMeta) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if out.Unknown {
		h.unknown = append(h.unknown, len(h.ops))
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret, Metadata: meta})
}

// annotate records a nemesis step from start to end (end 0: a moment).
func (h *history) annotate(start, end int64, what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.annotations = append(h.annotations, porcupine.Annotation{
		Tag: "nemesis", Start: start, End: end, Description: what, BackgroundColor: "#ffd9b3",
	})
}

// operations returns the history with every unknown outcome's return moved
// past every other event: porcupine's way of saying that the write may take
// effect at any time after its call, or never.
func (h *history) operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	ops := append([]porcupine.Operation(nil), h.ops...)
	var end int64
	for _, op := range ops {
		end = max(end, op.Call, op.Return)
	}
	for _, i := range h.unknown {
		ops[i].Return = end + 1
	}
	return ops
}

// nemesisAnnotations returns the recorded nemesis steps.
func (h *history) nemesisAnnotations() []porcupine.Annotation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]porcupine.Annotation(nil), h.annotations...)
}
