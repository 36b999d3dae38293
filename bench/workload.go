package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// Tables the workloads use. Write workloads start each from an empty
// writeTable; read workloads share readTable, filled once per invocation.
const (
	writeTable = "bench_w"
	readTable  = "bench_r"
	// payload is the text column's value: short and fixed, never
	// containing "error" (see client.do).
	payload = "raftlite-bench-payload-0123456789"
)

type opKind int

const (
	opWrite opKind = iota // one single-row INSERT per request
	opBatch               // batch single-row INSERTs in one request
	opRead                // one point SELECT by primary key
	opMixed               // readPct% weak point SELECTs, the rest single-row INSERTs
)

// Workload describes one named load.
type Workload struct {
	Name    string
	Clients int
	kind    opKind
	level   string // read consistency level (reads and mixed)
	batch   int    // statements per request (opBatch)
	readPct int    // percentage of reads (opMixed)
	// throughLog: every request is a Raft log entry, so the append+fsync
	// rate is a meaningful floor to compare with.
	throughLog bool
}

func (w Workload) writes() bool { return w.kind == opWrite || w.kind == opBatch || w.kind == opMixed }
func (w Workload) reads() bool  { return w.kind == opRead || w.kind == opMixed }

// Workloads lists every workload, in the order they run by default.
var Workloads = []Workload{
	{Name: "write-c1", Clients: 1, kind: opWrite, throughLog: true},
	{Name: "write-c8", Clients: 8, kind: opWrite, throughLog: true},
	{Name: "write-c32", Clients: 32, kind: opWrite, throughLog: true},
	{Name: "batch-100-c8", Clients: 8, kind: opBatch, batch: 100, throughLog: true},
	{Name: "read-none-c8", Clients: 8, kind: opRead, level: "none"},
	{Name: "read-weak-c8", Clients: 8, kind: opRead, level: "weak"},
	{Name: "read-linearizable-c8", Clients: 8, kind: opRead, level: "linearizable"},
	{Name: "read-strong-c8", Clients: 8, kind: opRead, level: "strong", throughLog: true},
	{Name: "mixed-c16", Clients: 16, kind: opMixed, level: "weak", readPct: 90},
}

// lookupWorkloads resolves a comma-separated list of names ("" or "all":
// every workload).
func lookupWorkloads(list string) ([]Workload, error) {
	list = strings.TrimSpace(list)
	if list == "" || list == "all" {
		return Workloads, nil
	}
	var out []Workload
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		found := false
		for _, w := range Workloads {
			if w.Name == name {
				out = append(out, w)
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown workload %q (known: %s)", name, workloadNames())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no workload named")
	}
	return out, nil
}

func workloadNames() string {
	names := make([]string, len(Workloads))
	for i, w := range Workloads {
		names[i] = w.Name
	}
	return strings.Join(names, ", ")
}

// worker is one client's state during a run.
type worker struct {
	id   int
	c    *client
	rnd  *rand.Rand
	rows int // rows in readTable
	seq  int64
	body []byte
}

// nextKey is a value for the k column, unique across workers.
func (wk *worker) nextKey() int64 {
	wk.seq++
	return int64(wk.id)<<40 | wk.seq
}

// appendInsert appends one parameterized single-row INSERT statement.
func (wk *worker) appendInsert(b []byte) []byte {
	b = append(b, `["INSERT INTO `+writeTable+`(k, v) VALUES(?, ?)",`...)
	b = strconv.AppendInt(b, wk.nextKey(), 10)
	b = append(b, `,"`+payload+`"]`...)
	return b
}

// op performs one request of w and returns the rows it wrote or read.
func (w Workload) op(ctx context.Context, wk *worker) (int, error) {
	switch w.kind {
	case opWrite:
		return wk.write(ctx, 1)
	case opBatch:
		return wk.write(ctx, w.batch)
	case opRead:
		return wk.read(ctx, w.level)
	case opMixed:
		if wk.rnd.IntN(100) < w.readPct {
			return wk.read(ctx, w.level)
		}
		return wk.write(ctx, 1)
	}
	return 0, fmt.Errorf("unknown workload kind %d", w.kind)
}

// write sends n single-row INSERTs in one /db/execute request (one Raft
// log entry).
func (wk *worker) write(ctx context.Context, n int) (int, error) {
	b := append(wk.body[:0], '[')
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = wk.appendInsert(b)
	}
	b = append(b, ']')
	wk.body = b
	if _, err := wk.c.do(ctx, "POST", "/db/execute", b); err != nil {
		return 0, err
	}
	return n, nil
}

// read sends one parameterized point SELECT by primary key through POST
// /db/query at level.
func (wk *worker) read(ctx context.Context, level string) (int, error) {
	b := append(wk.body[:0], `[["SELECT id, k, v FROM `+readTable+` WHERE id = ?",`...)
	b = strconv.AppendInt(b, int64(1+wk.rnd.IntN(wk.rows)), 10)
	b = append(b, "]]"...)
	wk.body = b
	resp, err := wk.c.do(ctx, "POST", "/db/query?level="+level, b)
	if err != nil {
		return 0, err
	}
	if !bytes.Contains(resp, []byte(`"values"`)) {
		return 0, fmt.Errorf("row not found: %s", firstLine(resp))
	}
	return 1, nil
}

// setup prepares the tables for the workloads about to run: a fresh, empty
// writeTable for every workload that writes, and readTable (filled with
// rows rows, once) for every workload that reads. With readHosts, it also
// waits until each of those nodes has the filled table locally, so that
// level=none reads on followers find their rows.
type setup struct {
	c         *client
	readHosts []*client
	rows      int
	readReady bool
}

func (s *setup) exec(ctx context.Context, stmts ...string) error {
	body, err := json.Marshal(stmts)
	if err != nil {
		return err
	}
	_, err = s.c.do(ctx, "POST", "/db/execute", body)
	return err
}

func (s *setup) prepare(ctx context.Context, w Workload) error {
	if w.writes() {
		if err := s.exec(ctx, "DROP TABLE IF EXISTS "+writeTable,
			"CREATE TABLE "+writeTable+" (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)"); err != nil {
			return fmt.Errorf("create %s: %w", writeTable, err)
		}
	}
	if w.reads() && !s.readReady {
		if err := s.fillReadTable(ctx); err != nil {
			return err
		}
		s.readReady = true
	}
	return nil
}

func (s *setup) fillReadTable(ctx context.Context) error {
	if err := s.exec(ctx, "DROP TABLE IF EXISTS "+readTable,
		"CREATE TABLE "+readTable+" (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)"); err != nil {
		return fmt.Errorf("create %s: %w", readTable, err)
	}
	const perReq = 1000
	var sb strings.Builder
	for lo := 1; lo <= s.rows; lo += perReq {
		hi := min(lo+perReq-1, s.rows)
		sb.Reset()
		sb.WriteString("INSERT INTO " + readTable + "(id, k, v) VALUES ")
		for id := lo; id <= hi; id++ {
			if id > lo {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,%d,'%s')", id, id, payload)
		}
		if err := s.exec(ctx, sb.String()); err != nil {
			return fmt.Errorf("fill %s: %w", readTable, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, c := range s.readHosts {
		for {
			n, err := countRows(ctx, c, readTable)
			if err == nil && n == s.rows {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s: %s has %d rows, want %d (err %v)", c.base, readTable, n, s.rows, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// countRows reads SELECT COUNT(*) from c's local copy (level=none).
func countRows(ctx context.Context, c *client, table string) (int, error) {
	body, err := json.Marshal([]string{"SELECT COUNT(*) FROM " + table})
	if err != nil {
		return 0, err
	}
	b, err := c.do(ctx, "POST", "/db/query?level=none", body)
	if err != nil {
		return 0, err
	}
	var resp struct {
		Results []struct {
			Values [][]int `json:"values"`
		} `json:"results"`
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		return 0, fmt.Errorf("decode count: %w", err)
	}
	if len(resp.Results) != 1 || len(resp.Results[0].Values) != 1 || len(resp.Results[0].Values[0]) != 1 {
		return 0, fmt.Errorf("unexpected count response: %s", firstLine(b))
	}
	return resp.Results[0].Values[0][0], nil
}
