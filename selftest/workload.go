package selftest

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// requestTimeout is the server-side timeout of every operation (its
// ?timeout); the HTTP client gives up a second later.
const requestTimeout = 2 * time.Second

// writeStmt sets a key's value and counts the write in the same statement.
const writeStmt = "UPDATE kv SET v=?, n=n+1 WHERE k=?"

// readStmt reads a key's register.
const readStmt = "SELECT v, n FROM kv WHERE k=?"

// workload runs the clients and keeps their history and tallies.
type workload struct {
	c     *cluster
	h     *history
	keys  int
	level string

	nextValue atomic.Int64 // the last value handed to a write

	mu      sync.Mutex
	acked   []int          // per key: writes acknowledged
	unknown []int          // per key: writes whose outcome stayed unknown
	counts  map[string]int // "n1.read_ok", "write_retry", ...
	errs    []string       // answers no correct server gives
}

func newWorkload(c *cluster, h *history, keys int, level string) *workload {
	return &workload{c: c, h: h, keys: keys, level: level,
		acked: make([]int, keys), unknown: make([]int, keys), counts: map[string]int{}}
}

func (w *workload) count(what string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.counts[what]++
}

// anomaly records an answer that no correct server gives.
func (w *workload) anomaly(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.errs) < 20 {
		w.errs = append(w.errs, fmt.Sprintf(format, args...))
	}
	w.counts["anomalies"]++
}

// apiResult is one statement's result.
type apiResult struct {
	Values       [][]json.Number `json:"values"`
	RowsAffected int64           `json:"rows_affected"`
	Error        string          `json:"error"`
}

// apiResponse is the body of /db/execute and /db/query.
type apiResponse struct {
	Results      []apiResult `json:"results"`
	Error        string      `json:"error"`
	Code         string      `json:"code"`
	Deduplicated bool        `json:"deduplicated"`
}

// post sends one statement to path on n within the request timeout.
func (w *workload) post(n *node, path string, stmt []any) (int, *apiResponse, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout+time.Second)
	defer cancel()
	status, raw, err := w.c.do(ctx, http.MethodPost, n.url(path), []any{stmt})
	if err != nil {
		return 0, nil, "", err
	}
	text := string(bytes.TrimSpace(raw))
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var r apiResponse
	if dec.Decode(&r) != nil {
		return status, nil, text, nil
	}
	return status, &r, text, nil
}

// writeOutcome is what one attempt of a write tells the client.
type writeOutcome int

const (
	writeApplied    writeOutcome = iota
	writeNotApplied              // certainly had no effect: nothing was proposed
	writeAmbiguous               // may or may not have been applied
	writeNoSession               // the server does not know the session
)

// attemptWrite sends one attempt of write (key, value) in session (id, seq)
// to n and classifies the answer.
func (w *workload) attemptWrite(n *node, key, value int, id string, seq uint64) (writeOutcome, string) {
	q := url.Values{"timeout": {requestTimeout.String()}, "client_id": {id}, "seq": {strconv.FormatUint(seq, 10)}}
	status, r, text, err := w.post(n, "/db/execute?"+q.Encode(), []any{writeStmt, value, key})
	switch {
	case err != nil && errors.Is(err, syscall.ECONNREFUSED):
		return writeNotApplied, err.Error()
	case err != nil:
		return writeAmbiguous, err.Error()
	case r == nil:
		// Plain-text answers: "leader not found", "not leader" (503) say
		// nothing was proposed; anything else is not known.
		if status == http.StatusServiceUnavailable && (text == "leader not found" || text == "not leader") {
			return writeNotApplied, text
		}
		return writeAmbiguous, fmt.Sprintf("HTTP %d: %s", status, text)
	case r.Code == "unavailable":
		return writeNotApplied, text
	case r.Code == "session_expired" || r.Error == "unknown or expired session":
		return writeNoSession, text
	case status != http.StatusOK || r.Error != "" || len(r.Results) != 1:
		return writeAmbiguous, fmt.Sprintf("HTTP %d: %s", status, text)
	case r.Results[0].Error != "" || r.Results[0].RowsAffected != 1:
		w.anomaly("%s: write k%d=%d answered %s", n.name(), key, value, text)
		return writeAmbiguous, text
	}
	if r.Deduplicated {
		w.count("write_deduplicated")
	}
	return writeApplied, ""
}

// session is a writer's exactly-once session.
type session struct {
	id    string
	seq   uint64 // the last seq used
	acked bool   // the server has acknowledged a write of the session
}

func newSession() *session {
	var b [16]byte
	_, _ = crand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return &session{id: "selftest-" + hex.EncodeToString(b[:])}
}

// runWriter writes unique values to random keys through random nodes until
// stop closes, or abandon closes during a write.
func (w *workload) runWriter(client int, rng *rand.Rand, stop, abandon <-chan struct{}) {
	s := newSession()
	for {
		select {
		case <-stop:
			return
		default:
		}
		if !w.write(client, rng, s, abandon) {
			return
		}
	}
}

// write does one write, retried (same session and seq) through random nodes
// until its outcome is known; false when abandon closes first, and then it
// is recorded as unknown if any attempt may have been applied.
func (w *workload) write(client int, rng *rand.Rand, s *session, abandon <-chan struct{}) bool {
	key := rng.IntN(w.keys)
	value := int(w.nextValue.Add(1))
	s.seq++
	call := w.h.now()
	maybeApplied := false
	var n *node
	for attempt := 1; ; attempt++ {
		select {
		case <-abandon:
			if maybeApplied {
				w.record(client, key, value, call, true, n, attempt-1)
			}
			return false
		default:
		}
		n = w.c.nodes[rng.IntN(len(w.c.nodes))]
		outcome, detail := w.attemptWrite(n, key, value, s.id, s.seq)
		switch outcome {
		case writeApplied:
			s.acked = true
			w.record(client, key, value, call, false, n, attempt)
			return true
		case writeAmbiguous:
			maybeApplied = true
			w.count("write_ambiguous")
		case writeNoSession:
			if s.acked {
				w.anomaly("%s: session %s lost after an acknowledged write: %s", n.name(), s.id, detail)
			}
			*s = *newSession()
			if maybeApplied {
				// An earlier attempt may have been applied: a new
				// session cannot settle that.
				w.record(client, key, value, call, true, n, attempt)
				return true
			}
			s.seq = 1
		default:
			w.count("write_refused")
		}
		time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
	}
}

// record adds a write to the history and the tallies.
func (w *workload) record(client, key, value int, call int64, unknown bool, n *node, attempts int) {
	meta := opMeta{Level: "write", Attempts: attempts}
	if n != nil {
		meta.Node = n.name()
	}
	w.h.add(client, kvInput{Kind: opWrite, Key: key, Value: value}, kvOutput{Unknown: unknown}, call, w.h.now(), meta)
	w.mu.Lock()
	defer w.mu.Unlock()
	if unknown {
		w.unknown[key]++
		w.counts["write_unknown"]++
	} else {
		w.acked[key]++
		w.counts["write_ok"]++
	}
}

// read reads key on n at level; ok is false when the read failed (a failed
// read has no effect and is left out of the history).
func (w *workload) read(n *node, level string, key int) (register, bool) {
	q := url.Values{"level": {level}, "timeout": {requestTimeout.String()}}
	status, r, text, err := w.post(n, "/db/query?"+q.Encode(), []any{readStmt, key})
	if err != nil || status != http.StatusOK || r == nil || r.Error != "" {
		return register{}, false
	}
	if len(r.Results) != 1 || r.Results[0].Error != "" || len(r.Results[0].Values) != 1 || len(r.Results[0].Values[0]) != 2 {
		w.anomaly("%s: read k%d answered %s", n.name(), key, text)
		return register{}, false
	}
	v, err1 := r.Results[0].Values[0][0].Int64()
	c, err2 := r.Results[0].Values[0][1].Int64()
	if err1 != nil || err2 != nil {
		w.anomaly("%s: read k%d answered %s", n.name(), key, text)
		return register{}, false
	}
	return register{Value: int(v), Count: int(c)}, true
}

// runReader reads one key on every node in turn, each read starting the
// moment the previous one (on another node) returned, then moves to
// another key, until stop closes. A node that fails a read is skipped for
// the rest of the round.
func (w *workload) runReader(client int, rng *rand.Rand, stop <-chan struct{}) {
	order := make([]*node, len(w.c.nodes))
	copy(order, w.c.nodes)
	for {
		select {
		case <-stop:
			return
		default:
		}
		key := rng.IntN(w.keys)
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		failed := 0
		for _, n := range order {
			call := w.h.now()
			reg, ok := w.read(n, w.level, key)
			ret := w.h.now()
			if !ok {
				failed++
				w.count(n.name() + ".read_failed")
				continue
			}
			w.count(n.name() + ".read_ok")
			w.h.add(client, kvInput{Kind: opRead, Key: key}, kvOutput{Value: reg.Value, Count: reg.Count}, call, ret,
				opMeta{Node: n.name(), Level: w.level})
		}
		if failed == len(order) {
			time.Sleep(time.Duration(20+rng.IntN(80)) * time.Millisecond)
		}
	}
}
