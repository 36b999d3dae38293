package cluster

import "sync"

// chunkPipe is an in-memory pipe with a buffer of a few large chunks: the
// writer blocks only when all of them wait to be read. The snapshot store
// uses it to hand a snapshot that is arriving to the decoder (see
// storeSink), so that receiving and storing the stream on raft's goroutine
// and decoding it on the decoder's run at the same time. Through an
// io.Pipe, which has no buffer, each would wait for the other on every
// write.
type chunkPipe struct {
	full chan []byte // written chunks, in order; closed by closeWrite
	free chan []byte // chunks the reader is done with

	quit     chan struct{} // closed by closeRead
	quitOnce sync.Once
	quitErr  error // why the reader stopped
	writeErr error // why the writer stopped, io.EOF if it finished

	cur, held []byte // the reader's unread part of the chunk held
}

// newChunkPipe returns a pipe of n chunks of size bytes.
func newChunkPipe(n, size int) *chunkPipe {
	p := &chunkPipe{full: make(chan []byte, n), free: make(chan []byte, n), quit: make(chan struct{})}
	for range n {
		p.free <- make([]byte, 0, size)
	}
	return p
}

// Write copies b into the pipe. It fails once the reader has stopped.
func (p *chunkPipe) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		var c []byte
		select {
		case c = <-p.free:
		case <-p.quit:
			return n, p.quitErr
		}
		m := copy(c[:cap(c)], b[n:])
		p.full <- c[:m] // never blocks: there are as many slots as chunks
		n += m
	}
	return n, nil
}

// closeWrite ends the stream: the reader reads err (io.EOF for a stream
// that is complete) once it has read what was written. It must be called
// once, after the last Write.
func (p *chunkPipe) closeWrite(err error) {
	p.writeErr = err
	close(p.full)
}

// Read reads what was written, in order.
func (p *chunkPipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.held != nil {
			p.free <- p.held[:0]
			p.held = nil
		}
		c, ok := <-p.full
		if !ok {
			return 0, p.writeErr
		}
		p.held, p.cur = c, c
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// closeRead makes the writes from now on fail with err: the reader has
// stopped reading.
func (p *chunkPipe) closeRead(err error) {
	p.quitOnce.Do(func() {
		p.quitErr = err
		close(p.quit)
	})
}
