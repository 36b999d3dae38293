package shell

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// retryLog receives the client's debug records of retries and failovers.
// It remembers the first failure since the last reset, so that the note of a
// failover can say why the previous node was left, and with -v it prints
// every record.
type retryLog struct {
	mu      sync.Mutex
	first   string    // the first failure since reset
	verbose io.Writer // nil unless -v
}

func (h *retryLog) Enabled(context.Context, slog.Level) bool { return true }

func (h *retryLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	b.WriteString(strings.TrimPrefix(r.Message, "raftlite client: "))
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "err" && h.first == "" {
			h.first = a.Value.String()
		}
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	if h.verbose != nil {
		fmt.Fprintf(h.verbose, "debug: %s\n", b.String())
	}
	return nil
}

func (h *retryLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *retryLog) WithGroup(string) slog.Handler      { return h }

// takeFirst returns the first failure since the last call and forgets it.
func (h *retryLog) takeFirst() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	f := h.first
	h.first = ""
	return f
}

// checkFailover notes when the node answering changed since the last call,
// and why the previous one was left.
func (s *session) checkFailover() {
	why := s.retries.takeFirst()
	cur := s.c.CurrentNode()
	if cur == s.node {
		return
	}
	if why == "" {
		why = "did not answer"
	} else {
		why = "failed: " + shortError(why)
	}
	s.note("now connected to %s (%s %s)", cur, s.node, why)
	s.node = cur
}
