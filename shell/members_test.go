package shell

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/raftlite/raftlite/client"
)

func TestWriteMembers(t *testing.T) {
	applied, lag := uint64(1042), uint64(3)
	nodes := []client.Node{
		{ID: "1", APIAddr: "http://127.0.0.1:4001", Addr: "127.0.0.1:4002", Voter: true, Leader: true, Reachable: true, AppliedIndex: &applied, Lag: new(uint64)},
		{ID: "4", APIAddr: "http://127.0.0.1:4031", Addr: "127.0.0.1:4032", Reachable: true, AppliedIndex: &applied, Lag: &lag},
		{ID: "5", APIAddr: "http://127.0.0.1:4041", Addr: "127.0.0.1:4042", Error: `Get "http://127.0.0.1:4041/readyz": dial tcp: connect: connection refused`},
	}
	var table bytes.Buffer
	if err := WriteMembers(&table, nodes[:2], "table"); err != nil {
		t.Fatal(err)
	}
	want := `+----+-----------------------+----------------+---------+--------+-----------+---------------+-----+
| id | address               | raft_address   | role    | leader | reachable | applied_index | lag |
+----+-----------------------+----------------+---------+--------+-----------+---------------+-----+
| 1  | http://127.0.0.1:4001 | 127.0.0.1:4002 | voter   | true   | true      |          1042 |   0 |
| 4  | http://127.0.0.1:4031 | 127.0.0.1:4032 | learner | false  | true      |          1042 |   3 |
+----+-----------------------+----------------+---------+--------+-----------+---------------+-----+
`
	if table.String() != want {
		t.Errorf("table:\n%s\nwant:\n%s", table.String(), want)
	}

	table.Reset()
	if err := WriteMembers(&table, nodes, "table"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "| error ") || !strings.Contains(table.String(), "| connection refused |") {
		t.Errorf("an unreachable member adds an error column:\n%s", table.String())
	}

	var js bytes.Buffer
	if err := WriteMembers(&js, nodes, "json"); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(js.Bytes(), &got); err != nil {
		t.Fatalf("json: %v\n%s", err, js.String())
	}
	if len(got) != 3 || got[1]["role"] != "learner" || got[1]["applied_index"] != 1042.0 || got[1]["lag"] != 3.0 ||
		got[2]["applied_index"] != nil || got[2]["error"] != "connection refused" {
		t.Errorf("json: %s", js.String())
	}

	if err := WriteMembers(&js, nodes, "yaml"); err == nil {
		t.Error("unknown format accepted")
	}
}
