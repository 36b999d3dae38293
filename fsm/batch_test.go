package fsm

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

func batchResponse(t testing.TB, v any) BatchResponse {
	t.Helper()
	r, ok := v.(BatchResponse)
	if !ok {
		t.Fatalf("response is %T (%v), want BatchResponse", v, v)
	}
	return r
}

// TestBatchEntryAppliesEachRequestAlone: the requests of a CmdBatch entry
// get what they would get in entries of their own: their own results and
// errors, their own sessions (a retry is answered from the session), and
// random() values of their own.
func TestBatchEntryAppliesEachRequestAlone(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE foo (id INTEGER PRIMARY KEY, v TEXT UNIQUE, r INTEGER)"))
	batch := &Command{Type: CmdBatch, Timestamp: base, Seed: 42, Requests: []*api.Request{
		{Statements: []api.Statement{stmt("INSERT INTO foo(v, r) VALUES('a', random())")}, ClientID: "c1", Seq: 1},
		{Statements: []api.Statement{stmt("INSERT INTO foo(v, r) VALUES('a', random())")}}, // UNIQUE fails alone
		{Statements: []api.Statement{stmt("INSERT INTO foo(v, r) VALUES('b', random())"), stmt("INSERT INTO nope VALUES(1)")}, Transaction: true},
		{Statements: []api.Statement{stmt("INSERT INTO foo(v, r) VALUES('c', random())")}, ClientID: "c2", Seq: 1},
	}}
	idx := s.idx()
	resps := batchResponse(t, f.Apply(commandLog(t, idx, batch)))
	if len(resps) != 4 {
		t.Fatalf("%d responses, want 4", len(resps))
	}
	for j, r := range resps {
		if r.Index != idx || r.Err != nil {
			t.Fatalf("response %d: index %d err %v", j, r.Index, r.Err)
		}
	}
	if resps[0].Results[0].Error != "" || resps[3].Results[0].Error != "" {
		t.Fatalf("good requests failed: %+v %+v", resps[0], resps[3])
	}
	if !strings.Contains(resps[1].Results[0].Error, "UNIQUE") {
		t.Fatalf("duplicate insert: %+v", resps[1].Results)
	}
	if len(resps[2].Results) != 2 || resps[2].Results[1].Error == "" {
		t.Fatalf("failed transaction: %+v", resps[2].Results)
	}
	if n := count(t, f, "foo"); n != 2 {
		t.Fatalf("rows = %d, want 2 (a and c; b rolled back with its transaction)", n)
	}
	res, err := f.Query(t.Context(), &api.Request{Statements: []api.Statement{stmt("SELECT COUNT(DISTINCT r) FROM foo")}})
	if err != nil || res[0].Rows[0][0].(int64) != 2 {
		t.Fatalf("random() per request: %v %v, want 2 distinct values", res, err)
	}
	// A retry of c1's write, alone, is answered from its session.
	again := sessExec(t, f, s.idx(), base+1, "c1", 1, stmt("INSERT INTO foo(v, r) VALUES('a', random())"))
	if !again.Deduplicated || again.Index != idx {
		t.Fatalf("retry: %+v, want the batch's response deduplicated", again)
	}
	// A request of a batch that ends the transaction (ON CONFLICT
	// ROLLBACK) has no effect, and the others of the batch keep theirs.
	s.exec(t, f, stmt("CREATE TABLE rb (id INTEGER PRIMARY KEY ON CONFLICT ROLLBACK)"), stmt("INSERT INTO rb VALUES(1)"))
	resps = batchResponse(t, f.Apply(commandLog(t, s.idx(), &Command{Type: CmdBatch, Timestamp: base + 2, Requests: []*api.Request{
		{Statements: []api.Statement{stmt("INSERT INTO rb VALUES(2)")}},
		{Statements: []api.Statement{stmt("INSERT INTO rb VALUES(1)")}},
		{Statements: []api.Statement{stmt("INSERT INTO rb VALUES(3)")}},
	}})))
	if resps[1].Results[0].Error == "" || resps[0].Results[0].Error != "" || resps[2].Results[0].Error != "" {
		t.Fatalf("conflict rollback in a batch: %+v", resps)
	}
	if n := count(t, f, "rb"); n != 3 {
		t.Fatalf("rb rows = %d, want 3", n)
	}
}

// chunkLogs cuts cmd's encoding into parts of size bytes as CmdChunk
// entries of sequence id from index on.
func chunkLogs(t testing.TB, index, id uint64, cmd *Command, size int) []*raft.Log {
	t.Helper()
	data, err := EncodeCommand(cmd)
	if err != nil {
		t.Fatal(err)
	}
	total := (len(data) + size - 1) / size
	var logs []*raft.Log
	for p := range total {
		part := data[p*size : min(len(data), (p+1)*size)]
		logs = append(logs, commandLog(t, index+uint64(p), &Command{Type: CmdChunk, Timestamp: cmd.Timestamp,
			Chunk: &Chunk{ID: id, Part: uint32(p), Total: uint32(total), Data: part}}))
	}
	return logs
}

func chunkRows(t testing.TB, f *FSM) int64 {
	return internalQuery(t, f, "SELECT COUNT(*) FROM _raftlite_chunks")[0][0].(int64)
}

// TestChunkedCommandAppliesWholeAtItsLastPart: a command in parts changes
// nothing until its last part, which applies it whole with its session;
// the parts survive a snapshot taken between them (a follower restoring it
// completes the command), and leave no rows behind.
func TestChunkedCommandAppliesWholeAtItsLastPart(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)"))
	value := strings.Repeat("0123456789", 10_000)
	cmd := &Command{Type: CmdExecute, Timestamp: base, Seed: 3, Request: &api.Request{ClientID: "big", Seq: 1,
		Statements: []api.Statement{stmt("INSERT INTO big(v) VALUES(?)", value), stmt("INSERT INTO big(v) VALUES('second')")}}}
	logs := chunkLogs(t, s.idx(), 99, cmd, 16<<10)
	if len(logs) < 5 {
		t.Fatalf("%d parts, want several", len(logs))
	}
	s.next += uint64(len(logs) - 1)
	half := len(logs) / 2
	for _, r := range f.ApplyBatch(logs[:half]) {
		if resp := response(t, r); resp.Err != nil || resp.Results != nil {
			t.Fatalf("a part's response: %+v", resp)
		}
	}
	if n := count(t, f, "big"); n != 0 {
		t.Fatalf("rows before the last part: %d", n)
	}
	sink := snapshotOf(t, f)
	g := newFSM(t)
	if err := g.Restore(io.NopCloser(bytes.NewReader(sink.Bytes()))); err != nil {
		t.Fatal(err)
	}
	for _, replica := range []*FSM{f, g} {
		resps := replica.ApplyBatch(logs[half:])
		last := response(t, resps[len(resps)-1])
		if last.Err != nil || len(last.Results) != 2 || last.Results[0].Error != "" || last.Index != logs[len(logs)-1].Index {
			t.Fatalf("last part's response: %+v", last)
		}
		if n := count(t, replica, "big"); n != 2 {
			t.Fatalf("rows after the last part: %d, want 2", n)
		}
		if n := chunkRows(t, replica); n != 0 {
			t.Fatalf("%d chunk rows left", n)
		}
		retry := sessExec(t, replica, s.next+1, base+1, "big", 1, cmd.Request.Statements...)
		if !retry.Deduplicated {
			t.Fatalf("retry of the chunked write: %+v, want deduplicated", retry)
		}
	}
}

// TestAbandonedChunksNeverApply: a sequence whose leader lost leadership
// before its last part is never applied, and the next sequence removes
// its parts; a last part whose earlier parts are missing is refused alike
// on every replica.
func TestAbandonedChunksNeverApply(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)"))
	cmd := func(v string) *Command {
		return &Command{Type: CmdExecute, Timestamp: base, Request: &api.Request{
			Statements: []api.Statement{stmt("INSERT INTO big(v) VALUES(?)", strings.Repeat(v, 50_000))}}}
	}
	old := chunkLogs(t, s.idx(), 1, cmd("a"), 8<<10)
	s.next += uint64(len(old) - 1)
	f.ApplyBatch(old[:3])
	if n := chunkRows(t, f); n != 3 {
		t.Fatalf("chunk rows = %d, want 3", n)
	}
	next := chunkLogs(t, s.idx(), 2, cmd("b"), 8<<10)
	s.next += uint64(len(next) - 1)
	f.ApplyBatch(next)
	if n := chunkRows(t, f); n != 0 {
		t.Fatalf("chunk rows = %d after the next sequence, want 0", n)
	}
	// The rest of the old sequence, committed late, cannot complete it.
	resps := f.ApplyBatch(renumber(old[3:], s.idx()))
	s.next += uint64(len(old[3:]) - 1)
	if last := response(t, resps[len(resps)-1]); !errors.Is(last.Err, errIncompleteChunks) {
		t.Fatalf("last part without its first ones: %+v", last)
	}
	res, err := f.Query(t.Context(), &api.Request{Statements: []api.Statement{stmt("SELECT substr(v, 1, 1), COUNT(*) FROM big GROUP BY 1")}})
	if err != nil || len(res[0].Rows) != 1 || res[0].Rows[0][0] != "b" {
		t.Fatalf("rows: %v %v, want only the completed sequence's", res, err)
	}
}

// renumber gives logs consecutive indexes from index on.
func renumber(logs []*raft.Log, index uint64) []*raft.Log {
	out := make([]*raft.Log, len(logs))
	for i, l := range logs {
		c := *l
		c.Index = index + uint64(i)
		out[i] = &c
	}
	return out
}
