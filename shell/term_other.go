//go:build !unix

package shell

import (
	"os"

	"github.com/mattn/go-isatty"
)

// isTerminal reports whether v is a file open on a terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// terminalWidth is $COLUMNS, or 80, when f is a terminal; 0 otherwise.
func terminalWidth(f *os.File) int {
	if !isTerminal(f) {
		return 0
	}
	return envSize("COLUMNS", 0, 80)
}

// terminalRows is $LINES, or 24.
func terminalRows(*os.File) int { return envSize("LINES", 0, 24) }
