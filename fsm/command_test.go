package fsm

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"testing"

	"github.com/raftlite/raftlite/api"
)

func sampleCommands() []*Command {
	return []*Command{
		{Type: CmdExecute, Timestamp: 1_700_000_000_000_000_000, Seed: 42, Request: &api.Request{
			Statements: []api.Statement{
				{SQL: "CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)"},
				{SQL: "INSERT INTO foo(name, n, f, b, ok, z) VALUES(?, ?, ?, ?, ?, ?)", Params: []api.Param{
					{Value: "fiona"}, {Value: int64(-20)}, {Value: 3.25}, {Value: []byte{0, 1, 255}},
					{Value: true}, {Value: nil},
				}},
				{SQL: "SELECT * FROM foo WHERE name = :name", Params: []api.Param{{Name: "name", Value: "fiona"}}},
			},
			Transaction: true,
			ClientID:    "client-1",
			Seq:         7,
		}},
		{Type: CmdExecute, Timestamp: -5, Request: &api.Request{ReadOnly: true, Statements: []api.Statement{{SQL: "SELECT 1"}}}},
		{Type: CmdExecute, Request: &api.Request{}},
		{Type: CmdExecute, Request: &api.Request{Statements: []api.Statement{{SQL: "", Params: []api.Param{
			{Value: math.Inf(-1)}, {Value: int64(math.MinInt64)}, {Value: false}, {Value: ""}, {Value: []byte{}},
		}}}}},
		{Type: CmdSetNode, Seed: math.MaxUint64, Node: &NodeMeta{ID: "n1", APIAddr: "http://127.0.0.1:4001"}},
		{Type: CmdRemoveNode, Node: &NodeMeta{ID: "n1"}},
		{Type: CmdBatch, Timestamp: 9, Seed: 8, Requests: []*api.Request{
			{ClientID: "c", Seq: 3, Transaction: true, Statements: []api.Statement{{SQL: "INSERT INTO t VALUES(?)", Params: []api.Param{{Value: int64(1)}}}}},
			{Statements: []api.Statement{{SQL: "DELETE FROM t"}}},
		}},
		{Type: CmdChunk, Timestamp: 1, Chunk: &Chunk{ID: math.MaxUint64, Part: 2, Total: 3, Data: []byte("part")}},
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for i, c := range sampleCommands() {
		b, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("%d: encode: %v", i, err)
		}
		got, err := DecodeCommand(b)
		if err != nil {
			t.Fatalf("%d: decode: %v", i, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("%d: round trip:\n got %#v\nwant %#v", i, got, c)
		}
	}
}

func TestEncodeCommandRejects(t *testing.T) {
	bad := []*Command{
		nil,
		{Type: CmdExecute},
		{Type: CmdSetNode},
		{Type: 99, Request: &api.Request{}},
		{Type: CmdExecute, Request: &api.Request{Statements: []api.Statement{{SQL: "x", Params: []api.Param{{Value: 1}}}}}},
		{Type: CmdBatch},
		{Type: CmdBatch, Requests: []*api.Request{nil}},
		{Type: CmdChunk},
		{Type: CmdChunk, Chunk: &Chunk{Part: 0, Total: 1}},
		{Type: CmdChunk, Chunk: &Chunk{Part: 3, Total: 3}},
	}
	for i, c := range bad {
		if _, err := EncodeCommand(c); err == nil {
			t.Errorf("%d: encoded %#v", i, c)
		}
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	good, err := EncodeCommand(sampleCommands()[0])
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":           nil,
		"unknown version": append([]byte{2}, good[1:]...),
		"unknown type":    {commandVersion, 9, 0, 0, hasRequest},
		"wrong presence":  {commandVersion, byte(CmdExecute), 0, 0, hasNode, 0, 0},
		"trailing":        append(append([]byte{}, good...), 0),
		"huge count":      {commandVersion, byte(CmdExecute), 0, 0, hasRequest, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad tag":         {commandVersion, byte(CmdExecute), 0, 0, hasRequest, 0, 0, 0, 1, 0, 1, 0, 77},
	}
	for i := range len(good) {
		cases["truncated "+string(rune('a'+i%26))+string(rune('0'+i/26))] = good[:i]
	}
	for name, b := range cases {
		c, err := DecodeCommand(b)
		if err == nil {
			t.Errorf("%s: decoded %#v", name, c)
			continue
		}
		if !errors.Is(err, ErrBadCommand) {
			t.Errorf("%s: %v does not wrap ErrBadCommand", name, err)
		}
	}
}

func TestDecodeCommandCopiesBytes(t *testing.T) {
	b, err := EncodeCommand(&Command{Type: CmdExecute, Request: &api.Request{Statements: []api.Statement{
		{SQL: "x", Params: []api.Param{{Value: []byte{1, 2, 3}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := DecodeCommand(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	if got := c.Request.Statements[0].Params[0].Value.([]byte); !reflect.DeepEqual(got, []byte{1, 2, 3}) {
		t.Fatalf("decoded bytes alias the input: %v", got)
	}
}

// FuzzDecodeCommand checks that DecodeCommand never panics and that
// whatever it accepts survives an encode/decode round trip unchanged. (The
// input bytes themselves need not come back: a varint may be padded.) Run
// it for longer with
// go test -fuzz FuzzDecodeCommand ./fsm/
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range sampleCommands() {
		b, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte{commandVersion, byte(CmdExecute), 0, 0, hasRequest, 0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		again, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("decoded command does not encode: %v", err)
		}
		c2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		// Compared as encodings: DeepEqual would call a NaN parameter
		// different from itself.
		if again2, err := EncodeCommand(c2); err != nil || !bytes.Equal(again2, again) {
			t.Fatalf("round trip differs: %x then %x (%v)", again, again2, err)
		}
	})
}

func BenchmarkEncodeCommand(b *testing.B) {
	c := sampleCommands()[0]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeCommand(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeCommand(b *testing.B) {
	data, err := EncodeCommand(sampleCommands()[0])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeCommand(data); err != nil {
			b.Fatal(err)
		}
	}
}
