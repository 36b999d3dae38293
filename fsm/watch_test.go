package fsm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// watchAll reads every event from index from on, without waiting.
func watchAll(t testing.TB, f *FSM, req api.WatchRequest) api.WatchPage {
	t.Helper()
	req.Limit = 10000
	page, err := f.WatchChanges(context.Background(), req, 0)
	if err != nil {
		t.Fatalf("WatchChanges: %v", err)
	}
	return page
}

func eventsJSON(t testing.TB, evs []api.ChangeEvent) string {
	t.Helper()
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWatchCapturesCommittedChanges(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"),
		stmt("CREATE TABLE kv (k TEXT PRIMARY KEY, v) WITHOUT ROWID"),
		stmt("CREATE TABLE log (t_id, what)"),
		stmt("CREATE TRIGGER t_del AFTER DELETE ON t BEGIN INSERT INTO log VALUES (old.id, 'gone'); END"))
	insert := s.idx()
	execAt(t, f, insert, &api.Request{Statements: []api.Statement{
		stmt("INSERT INTO t (id, v) VALUES (1, 'a'), (2, 'b')"),
		stmt("INSERT INTO kv VALUES ('x', 1.5)"),
		stmt("INSERT INTO nosuch VALUES (1)"), // fails, undoes nothing else
	}})
	update := s.idx()
	execAt(t, f, update, &api.Request{Statements: []api.Statement{
		stmt("UPDATE t SET v = 'A' WHERE id = 1"),
		stmt("UPDATE kv SET v = x'00ff' WHERE k = 'x'"),
		stmt("INSERT OR REPLACE INTO t (id, v) VALUES (2, 'B')"),
	}})
	// (REPLACE deletes the old row 2, firing no delete trigger without
	// recursive_triggers, as in SQLite.) A failing transaction records
	// nothing.
	failed := s.idx()
	execAt(t, f, failed, &api.Request{Transaction: true, Statements: []api.Statement{
		stmt("INSERT INTO t (id, v) VALUES (3, 'c')"),
		stmt("INSERT INTO t (id, v) VALUES (3, 'dup')"),
	}})
	del := s.idx()
	execAt(t, f, del, &api.Request{Statements: []api.Statement{stmt("DELETE FROM t WHERE id = 1"), stmt("DELETE FROM kv")}})

	page := watchAll(t, f, api.WatchRequest{From: insert, Prev: true})
	want := `[{"index":2,"time":"T","changes":[` +
		`{"table":"t","op":"insert","rowid":1,"pk":{"id":1},"new":{"id":1,"v":"a"}},` +
		`{"table":"t","op":"insert","rowid":2,"pk":{"id":2},"new":{"id":2,"v":"b"}},` +
		`{"table":"kv","op":"insert","pk":{"k":"x"},"new":{"k":"x","v":1.5}}]},` +
		`{"index":3,"time":"T","changes":[` +
		`{"table":"t","op":"update","rowid":1,"pk":{"id":1},"new":{"id":1,"v":"A"},"old":{"id":1,"v":"a"}},` +
		`{"table":"kv","op":"update","pk":{"k":"x"},"new":{"k":"x","v":"AP8="},"old":{"k":"x","v":1.5}},` +
		`{"table":"t","op":"delete","rowid":2,"pk":{"id":2},"old":{"id":2,"v":"b"}},` +
		`{"table":"t","op":"insert","rowid":2,"pk":{"id":2},"new":{"id":2,"v":"B"}}]},` +
		`{"index":5,"time":"T","changes":[` +
		`{"table":"t","op":"delete","rowid":1,"pk":{"id":1},"old":{"id":1,"v":"A"}},` +
		`{"table":"log","op":"insert","rowid":1,"new":{"t_id":1,"what":"gone"}},` +
		`{"table":"kv","op":"delete","pk":{"k":"x"},"old":{"k":"x","v":"AP8="}}]}]`
	for i := range page.Events {
		page.Events[i].Time = "T"
	}
	if got := eventsJSON(t, page.Events); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
	if page.Next != del+1 {
		t.Fatalf("next = %d, want %d", page.Next, del+1)
	}

	// Filters: table, operation, where.
	page = watchAll(t, f, api.WatchRequest{From: insert, Tables: []string{"T"}, Ops: []string{api.OpInsert}, Where: "lower(v) = 'b'"})
	if len(page.Events) != 2 || len(page.Events[0].Changes) != 1 || page.Events[0].Changes[0].New["v"] != "b" ||
		page.Events[1].Changes[0].New["v"] != "B" {
		t.Fatalf("filtered events: %s", eventsJSON(t, page.Events))
	}
	if _, err := f.WatchChanges(context.Background(), api.WatchRequest{From: insert, Where: "v = 1; DROP TABLE t"}, 0); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("where with two statements: %v, want bad_request", err)
	}
	if _, err := f.WatchChanges(context.Background(), api.WatchRequest{From: insert, Tables: []string{"t"}, Where: "(SELECT count(*) FROM (DELETE FROM t RETURNING 1))"}, 0); !errors.Is(err, api.ErrBadRequest) {
		t.Fatalf("where that writes: %v, want bad_request", err)
	}
	if n := count(t, f, "t"); n != 1 {
		t.Fatalf("t has %d rows, want 1", n)
	}
}

func TestWatchWaitsForApply(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE t (v)"))
	got := make(chan api.WatchPage, 1)
	go func() {
		page, err := f.WatchChanges(context.Background(), api.WatchRequest{}, time.Minute)
		if err != nil {
			t.Error(err)
		}
		got <- page
	}()
	// The watcher starts from the next index; wait until it waits.
	deadline := time.Now().Add(10 * time.Second)
	for len(got) == 0 && time.Now().Before(deadline) {
		s.exec(t, f, stmt("INSERT INTO t VALUES (1)"))
		select {
		case page := <-got:
			if len(page.Events) != 1 || page.Events[0].Changes[0].Op != api.OpInsert {
				t.Fatalf("page %+v", page)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatal("watcher not woken")
}

func TestWatchRetentionAndCompaction(t *testing.T) {
	dir := t.TempDir()
	f, err := Open(Config{Dir: dir, Logger: quietLogger(), WatchRetention: WatchRetention{Entries: 5}})
	if err != nil {
		t.Fatal(err)
	}
	var s seq
	s.exec(t, f, stmt("CREATE TABLE t (v)"))
	for range 10 {
		s.exec(t, f, stmt("INSERT INTO t VALUES (1)"))
	}
	// Index 11 is the last; entries=5 keeps 7..11.
	_, err = f.WatchChanges(context.Background(), api.WatchRequest{From: 2}, 0)
	var ce *api.CompactedError
	if !errors.As(err, &ce) || !errors.Is(err, api.ErrCompacted) || ce.Oldest != 7 {
		t.Fatalf("from 2: %v, want compacted with oldest 7", err)
	}
	if page := watchAll(t, f, api.WatchRequest{From: 7}); len(page.Events) != 5 || page.Events[0].Index != 7 {
		t.Fatalf("from 7: %d events", len(page.Events))
	}
	// An explicit compaction through the log, and a restart.
	compact := s.idx()
	response(t, f.Apply(commandLog(t, compact, &Command{Type: CmdCompactWatch, Timestamp: time.Now().UnixNano(), CompactIndex: 9})))
	f.Close()
	f = openFSM(t, dir)
	if _, err := f.WatchChanges(context.Background(), api.WatchRequest{From: 9}, 0); !errors.As(err, &ce) || ce.Oldest != 10 {
		t.Fatalf("after compact 9: %v, want oldest 10", err)
	}
	if page := watchAll(t, f, api.WatchRequest{From: 10}); len(page.Events) != 2 {
		t.Fatalf("from 10 after restart: %d events, want 2", len(page.Events))
	}
	if st := f.Stats()["watch"].(map[string]any); st["oldest_index"] != uint64(10) || st["bytes"].(int64) <= 0 {
		t.Fatalf("status after restart: %v", st)
	}
}

func TestWatchRetentionByAgeUsesLeaderTime(t *testing.T) {
	f, err := Open(Config{Dir: t.TempDir(), Logger: quietLogger(), WatchRetention: WatchRetention{Age: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	at := func(index uint64, ts int64, sql string) {
		f.Apply(commandLog(t, index, &Command{Type: CmdExecute, Timestamp: ts, Request: &api.Request{Statements: []api.Statement{stmt(sql)}}}))
	}
	at(1, base, "CREATE TABLE t (v)")
	at(2, base, "INSERT INTO t VALUES (1)")
	at(3, base+int64(30*time.Minute), "INSERT INTO t VALUES (2)")
	at(4, base+int64(90*time.Minute), "INSERT INTO t VALUES (3)")
	var ce *api.CompactedError
	if _, err := f.WatchChanges(context.Background(), api.WatchRequest{From: 2}, 0); !errors.As(err, &ce) || ce.Oldest != 3 {
		t.Fatalf("from 2: %v, want compacted, oldest 3", err)
	}
}

func TestWatchOffRecordsNothing(t *testing.T) {
	f, err := Open(Config{Dir: t.TempDir(), Logger: quietLogger(), WatchRetention: WatchRetention{Off: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: mustEncode(t, "CREATE TABLE t (v)")})
	f.Apply(&raft.Log{Index: 2, Type: raft.LogCommand, Data: mustEncode(t, "INSERT INTO t VALUES (1)")})
	if _, err := f.WatchChanges(context.Background(), api.WatchRequest{From: 1}, 0); !errors.Is(err, ErrWatchOff) {
		t.Fatalf("watch with capture off: %v", err)
	}
	if n := internalQuery(t, f, "SELECT COUNT(*) FROM _raftlite_changes")[0][0].(int64); n != 0 {
		t.Fatalf("%d history rows with capture off", n)
	}
}

func mustEncode(t testing.TB, sql string) []byte {
	t.Helper()
	b, err := EncodeCommand(&Command{Type: CmdExecute, Request: &api.Request{Statements: []api.Statement{stmt(sql)}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Column names follow the schema as each statement saw it, within one
// entry too. Schema changes are no events: DROP TABLE deletes no rows one
// by one (SQLite drops its pages), so it reports none.
func TestWatchFollowsSchemaChanges(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE t (a)"))
	from := s.idx()
	execAt(t, f, from, &api.Request{Statements: []api.Statement{
		stmt("INSERT INTO t VALUES (1)"),
		stmt("ALTER TABLE t ADD COLUMN b"),
		stmt("INSERT INTO t VALUES (2, 'two')"),
	}})
	s.exec(t, f, stmt("DROP TABLE t"))
	s.exec(t, f, stmt("CREATE TABLE t (x PRIMARY KEY, y) WITHOUT ROWID"))
	s.exec(t, f, stmt("INSERT INTO t VALUES (3, 'three')"))
	page := watchAll(t, f, api.WatchRequest{From: from})
	var rows []string
	for _, ev := range page.Events {
		for _, ch := range ev.Changes {
			b, _ := json.Marshal(ch.New)
			rows = append(rows, ch.Op+string(b))
		}
	}
	want := []string{`insert{"a":1}`, `insert{"a":2,"b":"two"}`, `insert{"x":3,"y":"three"}`}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
}

// History travels in snapshots, and the restored node's watch state (the
// compacted index, the size, the oldest row) is the source's: it trims and
// answers alike from there on.
func TestWatchHistoryTravelsInSnapshots(t *testing.T) {
	src, err := Open(Config{Dir: t.TempDir(), Logger: quietLogger(), WatchRetention: WatchRetention{Entries: 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	var s seq
	s.exec(t, src, stmt("CREATE TABLE t (v)"))
	for i := range 6 {
		s.exec(t, src, stmt("INSERT INTO t VALUES (?)", int64(i)))
	}
	want := eventsJSON(t, watchAll(t, src, api.WatchRequest{From: 4}).Events)

	dst, err := Open(Config{Dir: t.TempDir(), Logger: quietLogger(), WatchRetention: WatchRetention{Entries: 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := dst.Restore(io.NopCloser(bytes.NewReader(snapshotOf(t, src).Bytes()))); err != nil {
		t.Fatal(err)
	}
	if got := eventsJSON(t, watchAll(t, dst, api.WatchRequest{From: 4}).Events); got != want {
		t.Fatalf("restored history:\n got %s\nwant %s", got, want)
	}
	var ce *api.CompactedError
	if _, err := dst.WatchChanges(context.Background(), api.WatchRequest{From: 3}, 0); !errors.As(err, &ce) || ce.Oldest != 4 {
		t.Fatalf("restored compaction: %v", err)
	}
	// Both go on alike: the same entry trims the same row.
	l := execLog(t, s.idx(), &api.Request{Statements: []api.Statement{stmt("INSERT INTO t VALUES (6)")}})
	for _, f := range []*FSM{src, dst} {
		f.Apply(l)
	}
	_, sa, _ := src.Checksum(context.Background())
	_, sb, _ := dst.Checksum(context.Background())
	if sa != sb {
		t.Fatalf("checksums differ after the restore: %s %s", sa, sb)
	}
}

// Virtual generated columns are computed, not stored: the hook has no
// value for them, so changes leave them out (they once showed a
// neighbour's value); stored generated columns are reported.
func TestWatchSkipsVirtualColumns(t *testing.T) {
	f := newFSM(t)
	var s seq
	s.exec(t, f, stmt("CREATE TABLE g (a INTEGER, b INTEGER GENERATED ALWAYS AS (a*2) VIRTUAL, c TEXT, d AS (a+1) STORED, PRIMARY KEY (c, a))"))
	from := s.idx()
	execAt(t, f, from, &api.Request{Statements: []api.Statement{stmt("INSERT INTO g (a, c) VALUES (3, 'x')")}})
	s.exec(t, f, stmt("UPDATE g SET a = 4"))
	page := watchAll(t, f, api.WatchRequest{From: from, Prev: true})
	for i := range page.Events {
		page.Events[i].Time = "T"
	}
	want := `[{"index":2,"time":"T","changes":[{"table":"g","op":"insert","rowid":1,"pk":{"a":3,"c":"x"},"new":{"a":3,"c":"x","d":4}}]},` +
		`{"index":3,"time":"T","changes":[{"table":"g","op":"update","rowid":1,"pk":{"a":4,"c":"x"},"new":{"a":4,"c":"x","d":5},"old":{"a":3,"c":"x","d":4}}]}]`
	if got := eventsJSON(t, page.Events); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
}

func TestParseWatchRetention(t *testing.T) {
	for in, want := range map[string]WatchRetention{
		"off":                      {Off: true},
		DefaultWatchRetention:      {Bytes: 64 << 20, Age: 24 * time.Hour},
		"entries=1000,bytes=10KiB": {Entries: 1000, Bytes: 10 << 10},
		"age=90m, bytes=2GiB":      {Age: 90 * time.Minute, Bytes: 2 << 30},
		"bytes=12345":              {Bytes: 12345},
	} {
		if got, err := ParseWatchRetention(in); err != nil || got != want {
			t.Errorf("%q: %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "entries", "entries=-1", "bytes=1TB", "age=-1h", "size=1", "on"} {
		if _, err := ParseWatchRetention(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestWatchBatchEntryRecordsEachRequestsChanges: the requests gathered in a
// CmdBatch entry share its index, so their changes go in one history row;
// a request undone as a whole drops its own changes, not the others'.
func TestWatchBatchEntryRecordsEachRequestsChanges(t *testing.T) {
	f := newFSM(t)
	execAt(t, f, 1, &api.Request{Statements: []api.Statement{stmt("CREATE TABLE t (v INTEGER PRIMARY KEY)")}})
	resps := batchResponse(t, f.Apply(commandLog(t, 2, &Command{Type: CmdBatch, Timestamp: 1, Requests: []*api.Request{
		{Statements: []api.Statement{stmt("INSERT INTO t VALUES (1)")}},
		{Transaction: true, Statements: []api.Statement{stmt("INSERT INTO t VALUES (2)"), stmt("INSERT INTO t VALUES (1)")}},
		{Statements: []api.Statement{stmt("INSERT INTO t VALUES (3)")}},
	}})))
	if err := f.Err(); err != nil {
		t.Fatalf("the FSM halted: %v", err)
	}
	if resps[0].Results[0].Error != "" || resps[1].Results[1].Error == "" || resps[2].Results[0].Error != "" {
		t.Fatalf("responses: %+v", resps)
	}
	page := watchAll(t, f, api.WatchRequest{From: 2})
	var got []string
	for _, ev := range page.Events {
		for _, c := range ev.Changes {
			got = append(got, fmt.Sprintf("%d:%s:%v", ev.Index, c.Op, c.New["v"]))
		}
	}
	if want := []string{"2:insert:1", "2:insert:3"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("changes %v, want %v", got, want)
	}
}
