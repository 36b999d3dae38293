//go:build unix

package shell

import (
	"os"

	"github.com/mattn/go-isatty"
	"golang.org/x/sys/unix"
)

// isTerminal reports whether v is a file open on a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && isatty.IsTerminal(f.Fd())
}

// winsize is the size of the terminal f is open on, zeros when it cannot
// be told.
func winsize(f *os.File) (cols, rows int) {
	ws, err := unix.IoctlGetWinsize(int(f.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return int(ws.Col), int(ws.Row)
}

// terminalWidth is the number of columns of the terminal f is open on, or 0
// when f is not a terminal. $COLUMNS overrides it.
func terminalWidth(f *os.File) int {
	if !isTerminal(f) {
		return 0
	}
	cols, _ := winsize(f)
	return envSize("COLUMNS", cols, 80)
}

// terminalRows is the number of lines of the terminal f is open on ($LINES
// overrides it), or 24 when it cannot be told.
func terminalRows(f *os.File) int {
	_, rows := winsize(f)
	return envSize("LINES", rows, 24)
}
