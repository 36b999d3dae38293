package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// hclogLevels maps hclog levels onto slog levels. Trace has no slog level; it
// goes one step below Debug.
func toSlogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Info, hclog.NoLevel, hclog.DefaultLevel:
		return slog.LevelInfo
	case hclog.Warn:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func parseRaftLogLevel(s string) (hclog.Level, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return hclog.Trace, true
	case "debug":
		return hclog.Debug, true
	case "info":
		return hclog.Info, true
	case "warn", "warning":
		return hclog.Warn, true
	case "error":
		return hclog.Error, true
	case "off":
		return hclog.Off, true
	}
	return hclog.NoLevel, false
}

// slogHCLog is an hclog.Logger that hands hashicorp/raft's log lines to a
// slog.Logger, dropping those below its minimum level. hclog's variadic
// key/value arguments have the same shape as slog's.
type slogHCLog struct {
	base    *slog.Logger // without the name attribute
	logger  *slog.Logger // base plus name and implied args
	name    string
	implied []any
	level   *atomic.Int32 // hclog.Level, shared by derived loggers
	// reach, shared by derived loggers, takes over raft's lines about
	// followers it cannot reach (nil: none).
	reach *followerReachability
}

var _ hclog.Logger = (*slogHCLog)(nil)

func newSlogHCLog(l *slog.Logger, name string, level hclog.Level, reach *followerReachability) *slogHCLog {
	lv := new(atomic.Int32)
	lv.Store(int32(level))
	h := &slogHCLog{base: l, name: name, level: lv, reach: reach}
	h.logger = h.build()
	return h
}

func (h *slogHCLog) build() *slog.Logger {
	l := h.base
	if h.name != "" {
		l = l.With("logger", h.name)
	}
	if len(h.implied) > 0 {
		l = l.With(h.implied...)
	}
	return l
}

func (h *slogHCLog) derive(name string, implied []any) *slogHCLog {
	d := &slogHCLog{base: h.base, name: name, implied: implied, level: h.level, reach: h.reach}
	d.logger = d.build()
	return d
}

func (h *slogHCLog) enabled(l hclog.Level) bool {
	min := hclog.Level(h.level.Load())
	return min != hclog.Off && l >= min && h.logger.Enabled(context.Background(), toSlogLevel(l))
}

func (h *slogHCLog) Log(level hclog.Level, msg string, args ...any) {
	if h.reach != nil && h.reach.observeRaftLine(msg, args) {
		level = hclog.Debug // followerReachability logged the change of state
	}
	if level == hclog.Error && isBehindLogStart(msg, args) {
		level = hclog.Info
		msg = "follower needs entries before the start of the log; sending it a snapshot"
	}
	if !h.enabled(level) {
		return
	}
	h.logger.Log(context.Background(), toSlogLevel(level), msg, formatArgs(args)...)
}

// isBehindLogStart recognises raft's ERROR "failed to get log" for an entry
// that is gone: replication to a follower that needs entries from before
// the log's start (after a compaction, or a load, which empties the log)
// looks them up, fails, and sends the follower a snapshot instead, as
// designed. The same line from applying committed entries is followed by a
// panic, which says enough.
func isBehindLogStart(msg string, args []any) bool {
	if msg != "failed to get log" {
		return false
	}
	for i := 0; i+1 < len(args); i += 2 {
		if err, ok := args[i+1].(error); ok && args[i] == "error" && errors.Is(err, raft.ErrLogNotFound) {
			return true
		}
	}
	return false
}

// formatArgs renders hclog's deferred-formatting values (hclog.Fmt), which
// slog would otherwise print as raw slices.
func formatArgs(args []any) []any {
	var out []any
	for i, a := range args {
		f, ok := a.(hclog.Format)
		if !ok {
			continue
		}
		if out == nil {
			out = slices.Clone(args)
		}
		if len(f) > 0 {
			if format, ok := f[0].(string); ok {
				out[i] = fmt.Sprintf(format, f[1:]...)
				continue
			}
		}
		out[i] = fmt.Sprint(f...)
	}
	if out == nil {
		return args
	}
	return out
}

func (h *slogHCLog) Trace(msg string, args ...any) { h.Log(hclog.Trace, msg, args...) }
func (h *slogHCLog) Debug(msg string, args ...any) { h.Log(hclog.Debug, msg, args...) }
func (h *slogHCLog) Info(msg string, args ...any)  { h.Log(hclog.Info, msg, args...) }
func (h *slogHCLog) Warn(msg string, args ...any)  { h.Log(hclog.Warn, msg, args...) }
func (h *slogHCLog) Error(msg string, args ...any) { h.Log(hclog.Error, msg, args...) }

func (h *slogHCLog) IsTrace() bool { return h.enabled(hclog.Trace) }
func (h *slogHCLog) IsDebug() bool { return h.enabled(hclog.Debug) }
func (h *slogHCLog) IsInfo() bool  { return h.enabled(hclog.Info) }
func (h *slogHCLog) IsWarn() bool  { return h.enabled(hclog.Warn) }
func (h *slogHCLog) IsError() bool { return h.enabled(hclog.Error) }

func (h *slogHCLog) ImpliedArgs() []any { return h.implied }

func (h *slogHCLog) With(args ...any) hclog.Logger {
	implied := make([]any, 0, len(h.implied)+len(args))
	implied = append(append(implied, h.implied...), args...)
	return h.derive(h.name, implied)
}

func (h *slogHCLog) Name() string { return h.name }

func (h *slogHCLog) Named(name string) hclog.Logger {
	if h.name != "" {
		name = h.name + "." + name
	}
	return h.derive(name, h.implied)
}

func (h *slogHCLog) ResetNamed(name string) hclog.Logger { return h.derive(name, h.implied) }

func (h *slogHCLog) SetLevel(level hclog.Level) { h.level.Store(int32(level)) }

func (h *slogHCLog) GetLevel() hclog.Level { return hclog.Level(h.level.Load()) }

func (h *slogHCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	level := slog.LevelInfo
	if opts != nil && opts.ForceLevel != hclog.NoLevel {
		level = toSlogLevel(opts.ForceLevel)
	}
	return slog.NewLogLogger(h.logger.Handler(), level)
}

func (h *slogHCLog) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return h.StandardLogger(opts).Writer()
}
