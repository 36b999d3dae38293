package cli

import (
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattn/go-isatty"
)

// progressInterval is how often the progress line is redrawn.
const progressInterval = 200 * time.Millisecond

// Progress shows how a long transfer is going on one line of a terminal:
// bytes so far (of the total, when known) and the rate, redrawn every
// progressInterval, with a last line when it is done. When w is not a
// terminal it writes nothing, so scripts and logs stay clean.
type Progress struct {
	w     io.Writer // nil when not a terminal
	what  string
	total int64 // 0 when unknown
	start time.Time
	n     atomic.Int64

	stop chan struct{}
	done sync.WaitGroup
}

// NewProgress starts reporting on w, a terminal, what moves; total is its
// size in bytes, or 0 when unknown. Done stops it.
func NewProgress(w io.Writer, what string, total int64) *Progress {
	p := &Progress{what: what, total: total, start: time.Now(), stop: make(chan struct{})}
	if f, ok := w.(*os.File); !ok || !isatty.IsTerminal(f.Fd()) {
		return p
	}
	p.w = w
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.draw("")
			}
		}
	}()
	return p
}

// Reader counts what is read from r.
func (p *Progress) Reader(r io.Reader) io.Reader { return &countingReader{r: r, n: &p.n} }

// Done stops the redrawing and leaves the final figures on the terminal.
func (p *Progress) Done() {
	if p.w == nil {
		return
	}
	close(p.stop)
	p.done.Wait()
	p.draw("\n")
}

// draw rewrites the line: "backup: 12.0 MiB of 40.0 MiB (30%), 8.1 MiB/s".
func (p *Progress) draw(end string) {
	n := p.n.Load()
	line := p.what + ": " + bytesText(n)
	if p.total > 0 {
		line += fmt.Sprintf(" of %s (%d%%)", bytesText(p.total), n*100/p.total)
	}
	if secs := time.Since(p.start).Seconds(); secs > 0 {
		line += ", " + bytesText(int64(float64(n)/secs)) + "/s"
	}
	fmt.Fprintf(p.w, "\r%s\x1b[K%s", line, end)
}

// bytesText is n in B, KiB, MiB or GiB.
func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v, suffix := float64(n)/unit, "KiB"
	for _, s := range []string{"MiB", "GiB"} {
		if v < unit {
			break
		}
		v, suffix = v/unit, s
	}
	return fmt.Sprintf("%.1f %s", v, suffix)
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
