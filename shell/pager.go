package shell

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
)

// defaultPager is used when $PAGER is not set: less quits by itself when
// the text fits one screen (-F), passes colours (-R) and leaves the text on
// the screen (-X).
const defaultPager = "less -FRX"

// pagerCommand is the command results are piped to: $PAGER, run by sh so
// that it may carry arguments, or defaultPager.
func pagerCommand() string {
	if p := os.Getenv("PAGER"); p != "" {
		return p
	}
	return defaultPager
}

// paging reports whether long results go through the pager: .pager on
// (the default), results going to standard output, and that a terminal.
func (s *session) paging() bool {
	return s.pager && s.outFile == nil && isTerminal(s.stdout)
}

// writeResult prints a rendered result. Text longer than the terminal is
// piped to the pager while paging is on; if the pager cannot run, the
// text is printed as it is, with a note. The pager runs until the user
// leaves it: Ctrl-C reaches it as it reaches the shell, and what it does
// then is its own affair (killing it could leave the terminal in its mode).
func (s *session) writeResult(text []byte) error {
	if !s.paging() || bytes.Count(text, []byte("\n")) < terminalRows(s.stdout.(*os.File)) {
		_, err := s.out.Write(text)
		return err
	}
	cmd := exec.Command("/bin/sh", "-c", pagerCommand())
	cmd.Stdin = bytes.NewReader(text)
	cmd.Stdout, cmd.Stderr = s.stdout, s.stderr
	if err := cmd.Run(); err != nil {
		s.note("the pager %q failed (%v); .pager off turns it off", pagerCommand(), err)
		_, err = s.out.Write(text)
		return err
	}
	return nil
}

// envSize is a terminal dimension: the positive number in $name, else
// measured when positive, else fallback.
func envSize(name string, measured, fallback int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	if measured > 0 {
		return measured
	}
	return fallback
}
