package snapshot

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// payload returns compressible but non-trivial test data.
func payload(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, n)
	for i := range b {
		if i%7 == 0 {
			b[i] = byte(r.IntN(256))
		} else {
			b[i] = byte(i % 13)
		}
	}
	return b
}

func writeStream(t *testing.T, data []byte, index uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, bytes.NewReader(data), int64(len(data)), index); err != nil {
		t.Fatalf("Write: %v", err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 4096, 3 << 20} {
		data := payload(n)
		stream := writeStream(t, data, 42)
		dest := filepath.Join(t.TempDir(), "out")
		h, err := Read(bytes.NewReader(stream), dest)
		if err != nil {
			t.Fatalf("n=%d: Read: %v", n, err)
		}
		if h.Index != 42 || h.Length != uint64(n) || h.Version != Version {
			t.Fatalf("n=%d: header %+v", n, h)
		}
		got, err := os.ReadFile(dest)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("n=%d: data differs", n)
		}
	}
}

func TestWriteFileAndReadHeader(t *testing.T) {
	src := filepath.Join(t.TempDir(), "db")
	data := payload(10000)
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteFile(&buf, src, 7); err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if h.Index != 7 || h.Length != 10000 {
		t.Fatalf("header %+v", h)
	}
}

func TestWriteSizeMismatch(t *testing.T) {
	data := payload(100)
	if err := Write(io.Discard, bytes.NewReader(data), 99, 1); err == nil {
		t.Fatal("longer source accepted")
	}
	if err := Write(io.Discard, bytes.NewReader(data), 101, 1); err == nil {
		t.Fatal("shorter source accepted")
	}
}

func TestReadRejectsCorruption(t *testing.T) {
	data := payload(200000)
	stream := writeStream(t, data, 9)
	dir := t.TempDir()

	cases := map[string][]byte{
		"empty":       {},
		"short magic": stream[:5],
		"header only": stream[:headerSize],
		"truncated":   stream[:len(stream)/2],
		"no trailer":  stream[:len(stream)-1],
		"trailing":    append(bytes.Clone(stream), 0, 1, 2, 3),
	}
	flip := func(name string, at int) {
		b := bytes.Clone(stream)
		b[at] ^= 0x40
		cases[name] = b
	}
	flip("magic", 0)
	flip("version", len(Magic))
	flip("index", len(Magic)+8)
	flip("length", len(Magic)+16)
	flip("body", headerSize+len(stream)/3)
	flip("last byte", len(stream)-1)

	for name, b := range cases {
		dest := filepath.Join(dir, name)
		h, err := Read(bytes.NewReader(b), dest)
		if err == nil {
			t.Errorf("%s: accepted, header %+v", name, h)
			continue
		}
		if !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: error %v does not wrap ErrCorrupt", name, err)
		}
		if _, serr := os.Stat(dest); !os.IsNotExist(serr) {
			t.Errorf("%s: destination left behind", name)
		}
	}
}

func TestReadHeaderVersion(t *testing.T) {
	h := Header{Version: 2, Index: 1}
	if _, err := ReadHeader(bytes.NewReader(h.encode())); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unknown version: %v", err)
	}
}

func BenchmarkWrite(b *testing.B) {
	data := payload(4 << 20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := Write(io.Discard, bytes.NewReader(data), int64(len(data)), 1); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBody measures decoding a stream into a file, which is what a
// follower receiving a snapshot does as it arrives (the file is synced
// later, apart).
func BenchmarkReadBody(b *testing.B) {
	data := payload(32 << 20)
	var buf bytes.Buffer
	if err := Write(&buf, bytes.NewReader(data), int64(len(data)), 1); err != nil {
		b.Fatal(err)
	}
	dest := filepath.Join(b.TempDir(), "db")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r := bytes.NewReader(buf.Bytes())
		h, err := ReadHeader(r)
		if err != nil {
			b.Fatal(err)
		}
		if err := ReadBody(r, h, dest); err != nil {
			b.Fatal(err)
		}
	}
}
