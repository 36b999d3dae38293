package fsm

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

func TestIsVacuum(t *testing.T) {
	for sql, want := range map[string]bool{
		"VACUUM": true, "vacuum;": true, " VACUUM main ; ": true, `VACUUM "main"`: true,
		"VACUUM -- tidy\n": true, "/* x */ vacuum": true,
		"VACUUM INTO '/tmp/x'": false, "VACUUM temp": false, "VACUUM; VACUUM": false,
		"VACUUM 'main'": false, "SELECT 'VACUUM'": false, "VACUUM(": false, "": false,
	} {
		if got := isVacuum(sql); got != want {
			t.Errorf("isVacuum(%q) = %v, want %v", sql, got, want)
		}
	}
}

// TestVacuumShrinksFile: VACUUM goes through the apply path (which runs
// every entry inside a transaction, where SQLite refuses it), gives
// SQLite's empty result and shrinks the file after a large table is
// dropped. VACUUM INTO and VACUUM in a Transaction request stay refused.
func TestVacuumShrinksFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// The change history would keep the dropped rows (watch.go).
	f, err := Open(Config{Dir: dir, Logger: quietLogger(), WatchRetention: WatchRetention{Off: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s seq
	noErrors(t, s.exec(t, f,
		stmt("CREATE TABLE keep (a)"),
		stmt("INSERT INTO keep VALUES (1), (2), (3)"),
		stmt("DELETE FROM keep WHERE a = 2"),
		stmt("CREATE TABLE big (b BLOB)"),
	))
	for range 8 {
		noErrors(t, s.exec(t, f, stmt("INSERT INTO big SELECT randomblob(1000000)")))
	}
	noErrors(t, s.exec(t, f, stmt("DROP TABLE big")))
	if err := f.TruncateWAL(ctx); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, DBFile)
	grown := fileSize(path)
	if grown < 8e6 {
		t.Fatalf("database is %d bytes after 8 MB of inserts and a drop, want the pages still there", grown)
	}

	res := s.exec(t, f, stmt("INSERT INTO keep VALUES (4)"), stmt("VACUUM"), stmt("INSERT INTO keep VALUES (5)"))
	noErrors(t, res)
	if len(res) != 3 || res[1].RowsAffected != 0 || res[1].LastInsertID != 0 || res[1].Columns != nil {
		t.Fatalf("results of INSERT, VACUUM, INSERT: %+v", res)
	}
	if got := fileSize(path) + fileSize(path+"-wal"); got > grown/4 {
		t.Fatalf("database and WAL are %d bytes after VACUUM, were %d", got, grown)
	}
	// SQLite renumbers the rowids of a table without INTEGER PRIMARY KEY
	// or index; the VACUUM ran after the entry's other statements.
	rowids, err := f.Query(ctx, &api.Request{Statements: []api.Statement{stmt("SELECT group_concat(rowid || ':' || a) FROM keep")}})
	if err != nil || rowids[0].Rows[0][0] != "1:1,2:3,3:4,4:5" {
		t.Fatalf("rows after VACUUM: %+v %v, want rowids renumbered", rowids, err)
	}

	for _, req := range []*api.Request{
		{Statements: []api.Statement{stmt("VACUUM INTO '" + filepath.Join(dir, "copy.db") + "'")}},
		{Transaction: true, Statements: []api.Statement{stmt("VACUUM")}},
	} {
		r := execAt(t, f, s.idx(), req)
		if !strings.Contains(r[0].Error, "cannot VACUUM from within a transaction") {
			t.Errorf("%+v: %+v, want SQLite's refusal", req, r)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "copy.db")); err == nil {
		t.Error("VACUUM INTO wrote a file on the node")
	}

	// The applied index is kept, and a restart replays nothing.
	idx := f.AppliedIndex()
	f.Close()
	g := openFSM(t, dir)
	if g.AppliedIndex() != idx {
		t.Fatalf("applied index %d after restart, want %d", g.AppliedIndex(), idx)
	}
}

// TestVacuumDeterministic: replicas that get the same entries in one batch,
// one by one, or with a crash between the commit of the VACUUM's entry and
// the VACUUM end with the same content (the VACUUM renumbers rowids, so
// it must run at the same log position everywhere) and give the same
// answers.
func TestVacuumDeterministic(t *testing.T) {
	ctx := context.Background()
	entries := [][]api.Statement{
		{stmt("CREATE TABLE keep (a)"), stmt("INSERT INTO keep VALUES (1), (2), (3), (4)")},
		{stmt("DELETE FROM keep WHERE a IN (2, 3)")},
		{stmt("vacuum")},
		{stmt("INSERT INTO keep VALUES (5)")},
		{stmt("INSERT INTO keep VALUES (6)"), stmt("SELECT group_concat(rowid || ':' || a) FROM keep")},
	}
	logs := make([]*raft.Log, len(entries))
	for i, st := range entries {
		logs[i] = execLog(t, uint64(i+1), &api.Request{Statements: st})
	}
	answers := func(resps []any) string {
		var b strings.Builder
		for _, r := range resps {
			for _, res := range response(t, r).Results {
				res.Seconds = 0
				fmt.Fprintf(&b, "%+v\n", res)
			}
		}
		return b.String()
	}
	checksum := func(f *FSM) string {
		_, sum, err := f.Checksum(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}

	batched := newFSM(t)
	wantAnswers := answers(batched.ApplyBatch(logs))
	want := checksum(batched)

	single := newFSM(t)
	var resps []any
	for _, l := range logs {
		resps = append(resps, single.Apply(l))
	}
	if got := checksum(single); got != want {
		t.Errorf("one entry per batch: checksum %s, batched %s", got, want)
	}
	if got := answers(resps); got != wantAnswers {
		t.Errorf("one entry per batch answered\n%s\nbatched\n%s", got, wantAnswers)
	}

	// A statement still open on the write connection makes the VACUUM
	// fail after its entry committed, as a crash there would leave it.
	dir := t.TempDir()
	crashed := openFSM(t, dir)
	crashed.ApplyBatch(logs[:2])
	open, err := crashed.w.conn.QueryContext(ctx, "SELECT 1 UNION ALL SELECT 2")
	if err != nil {
		t.Fatal(err)
	}
	open.Next()
	response(t, crashed.Apply(logs[2]))
	if crashed.Err() == nil {
		t.Fatal("VACUUM with a statement in progress did not halt the FSM")
	}
	open.Close()
	crashed.Close()
	reopened := openFSM(t, dir)
	if reopened.AppliedIndex() != 3 {
		t.Fatalf("applied index %d after reopening, want 3", reopened.AppliedIndex())
	}
	reopened.ApplyBatch(logs[3:])
	if got := checksum(reopened); got != want {
		t.Errorf("after a crash before the VACUUM: checksum %s, want %s", got, want)
	}
}

// TestVacuumInBatchOrPartsEndsTheBatch: a VACUUM gathered with other writes
// into a CmdBatch entry, or sent in CmdChunk parts, must also run right
// after its own entry commits, whatever else the Raft batch holds, or
// replicas that batch entries differently renumber rowids at different
// log positions.
func TestVacuumInBatchOrPartsEndsTheBatch(t *testing.T) {
	ctx := context.Background()
	vacuum := &api.Request{Statements: []api.Statement{stmt("VACUUM")}}
	forms := map[string]func(index uint64) []*raft.Log{
		"batch": func(index uint64) []*raft.Log {
			return []*raft.Log{commandLog(t, index, &Command{Type: CmdBatch, Timestamp: 1, Requests: []*api.Request{
				{Statements: []api.Statement{stmt("INSERT INTO keep VALUES (10)")}}, vacuum}})}
		},
		"parts": func(index uint64) []*raft.Log {
			return chunkLogs(t, index, 7, &Command{Type: CmdExecute, Timestamp: 1, Request: vacuum}, 16)
		},
	}
	for name, form := range forms {
		t.Run(name, func(t *testing.T) {
			logs := []*raft.Log{
				execLog(t, 1, &api.Request{Statements: []api.Statement{stmt("CREATE TABLE keep (a)"), stmt("INSERT INTO keep VALUES (1), (2), (3), (4)")}}),
				execLog(t, 2, &api.Request{Statements: []api.Statement{stmt("DELETE FROM keep WHERE a IN (2, 3)")}}),
			}
			logs = append(logs, form(3)...)
			next := uint64(len(logs) + 1)
			logs = append(logs, execLog(t, next, &api.Request{Statements: []api.Statement{stmt("INSERT INTO keep VALUES (5)"),
				stmt("SELECT group_concat(rowid || ':' || a) FROM keep")}}))
			states := map[string]bool{}
			for _, oneByOne := range []bool{false, true} {
				f := newFSM(t)
				var last any
				if oneByOne {
					for _, l := range logs {
						last = f.Apply(l)
					}
				} else {
					resps := f.ApplyBatch(logs)
					last = resps[len(resps)-1]
				}
				if err := f.Err(); err != nil {
					t.Fatal(err)
				}
				_, sum, err := f.Checksum(ctx)
				if err != nil {
					t.Fatal(err)
				}
				states[fmt.Sprintf("checksum %s, rowids %v", sum, response(t, last).Results[1].Rows)] = true
			}
			if len(states) != 1 {
				t.Fatalf("one batch and one entry at a time end differently: %v", states)
			}
		})
	}
}
