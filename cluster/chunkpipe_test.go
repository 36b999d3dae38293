package cluster

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
)

// TestChunkPipe: what is written arrives in order and whole, whatever the
// sizes of the writes and reads; the writer's end reaches the reader after
// the data; a reader that stops makes the writer fail instead of block.
func TestChunkPipe(t *testing.T) {
	data := make([]byte, 5<<20+123)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	p := newChunkPipe(3, 64<<10)
	got := make(chan []byte)
	go func() {
		var out bytes.Buffer
		buf := make([]byte, 10000)
		for {
			n, err := p.Read(buf[:1+r.IntN(len(buf)-1)])
			out.Write(buf[:n])
			if err == io.EOF {
				got <- out.Bytes()
				return
			}
		}
	}()
	for rest := data; len(rest) > 0; {
		n := min(len(rest), 1+rand.IntN(200<<10))
		if m, err := p.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write = %d, %v", m, err)
		}
		rest = rest[n:]
	}
	p.closeWrite(io.EOF)
	if !bytes.Equal(<-got, data) {
		t.Fatal("data differs")
	}

	// The writer's error, after the data.
	p = newChunkPipe(2, 16)
	p.Write([]byte("abc"))
	boom := errors.New("boom")
	p.closeWrite(boom)
	if b, err := io.ReadAll(p); !errors.Is(err, boom) || string(b) != "abc" {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}

	// A reader that stopped: the writer fails once the chunks are full.
	p = newChunkPipe(2, 16)
	p.closeRead(boom)
	if _, err := p.Write(make([]byte, 1000)); !errors.Is(err, boom) {
		t.Fatalf("Write after closeRead = %v", err)
	}
}
