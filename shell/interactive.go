package shell

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/peterh/liner"
)

const (
	prompt = "raftlite> "
	// contPrompt continues an unfinished statement, aligned with prompt.
	contPrompt = "     ...> "
	// historyLimit is how many entries the history file keeps.
	historyLimit = 1000
)

// runInteractive reads commands from the terminal with line editing and
// history until Ctrl-D or .exit. Errors are reported and the session goes
// on; Ctrl-C abandons the input being typed, or interrupts a running
// statement.
func (s *session) runInteractive(ctx context.Context) int {
	// Ctrl-C outside the prompt interrupts the running command (see
	// interruptible) and must never end the session.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt)
	defer signal.Stop(sigs)

	ln := liner.NewLiner()
	defer ln.Close()
	ln.SetCtrlCAborts(true)
	ln.SetMultiLineMode(true)
	ln.SetWordCompleter(s.complete)
	ln.SetTabCompletionStyle(liner.TabPrints)
	s.loadHistory(ln)
	defer s.saveHistory(ln)

	s.banner(ctx)
	in := &input{}
	var typed []string // the lines of the entry being typed, for history
	for !s.quit {
		p := s.prompt(in.pending != "")
		line, err := ln.Prompt(p)
		switch {
		case errors.Is(err, liner.ErrPromptAborted):
			in.pending, typed = "", nil
			continue
		case errors.Is(err, io.EOF):
			fmt.Fprintln(s.stdout)
			return s.exitCode
		case err != nil:
			s.printError(err)
			return 1
		}
		line = fromHistory(line)
		if strings.TrimSpace(line) != "" || in.pending != "" {
			typed = append(typed, line)
		}
		if err := s.runLine(ctx, in, line); err != nil {
			s.printError(err)
		}
		if in.pending == "" && len(typed) > 0 {
			ln.AppendHistory(historyEntry(typed))
			typed = nil
		}
	}
	return s.exitCode
}

// prompt is the prompt for a new statement or, with more, for the next
// line of one; it changes while a transaction is open.
func (s *session) prompt(more bool) string {
	switch {
	case s.tx != nil && more:
		return txContPrompt
	case s.tx != nil:
		return txPrompt
	case more:
		return contPrompt
	}
	return prompt
}

// lineBreakMark stands for a line break in a history entry. liner edits
// one line and its history file holds one entry a line, so an entry typed
// over several lines is kept with its line breaks as this mark (␤, the
// symbol for newline), shown as such when recalled, and turned back into
// line breaks when the recalled line is entered: a multi-line string
// literal comes back byte for byte. The mark is therefore not available as
// a literal character at the interactive prompt (char(9252) gives it).
const lineBreakMark = "\u2424"

// historyEntry makes the lines of one entry a single history line, as
// typed apart from white space at its ends.
func historyEntry(lines []string) string {
	return strings.ReplaceAll(strings.TrimSpace(strings.Join(lines, "\n")), "\n", lineBreakMark)
}

// fromHistory turns the marks of a recalled entry back into line breaks.
func fromHistory(line string) string {
	return strings.ReplaceAll(line, lineBreakMark, "\n")
}

func (s *session) loadHistory(ln *liner.State) {
	if s.cfg.HistoryFile == "" {
		return
	}
	f, err := os.Open(s.cfg.HistoryFile)
	if err != nil {
		return
	}
	defer f.Close()
	ln.ReadHistory(f)
}

func (s *session) saveHistory(ln *liner.State) {
	if s.cfg.HistoryFile == "" {
		return
	}
	f, err := os.OpenFile(s.cfg.HistoryFile, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		s.note("cannot save the history: %v", err)
		return
	}
	defer f.Close()
	ln.WriteHistory(f)
}

// completeDot completes dot-command names.
func completeDot(line string) []string {
	if !strings.HasPrefix(line, ".") || strings.ContainsAny(line, " \t") {
		return nil
	}
	var out []string
	for _, c := range dotCommands {
		for _, n := range append([]string{c.name}, c.aliases...) {
			if strings.HasPrefix("."+n, line) {
				out = append(out, "."+n)
			}
		}
	}
	return out
}

// banner greets an interactive user with the node that answers, the
// server's version and the leader.
func (s *session) banner(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fmt.Fprintf(s.stdout, "raftlite shell %s\n", s.cfg.Version)
	st, err := s.c.Status(ctx)
	s.node = s.c.CurrentNode()
	if err != nil {
		fmt.Fprintf(s.stdout, "warning: cannot reach the cluster through %s: %s\n",
			strings.Join(s.cfg.Hosts, ", "), describeError(err))
	} else {
		id, _ := lookup(st, "store", "node_id").(string)
		version, _ := lookup(st, "build", "version").(string)
		fmt.Fprintf(s.stdout, "connected to %s (node %s, raftlite %s)\n", s.node, orUnknown(id), orUnknown(version))
		if n, err := s.c.Leader(ctx); err == nil {
			fmt.Fprintf(s.stdout, "leader: %s\n", describeNode(n))
		} else {
			fmt.Fprintf(s.stdout, "leader: none known (%s)\n", describeError(err))
		}
	}
	fmt.Fprintf(s.stdout, "consistency: %s. Enter \".help\" for usage hints; statements end with \";\".\n", s.level)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// lookup follows keys through nested JSON objects.
func lookup(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
