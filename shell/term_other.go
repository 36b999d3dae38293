//go:build !unix

package shell

import (
	"os"
	"strconv"

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
	if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
		return n
	}
	return 80
}
