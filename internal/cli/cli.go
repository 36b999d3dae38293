// Package cli holds what raftlite's subcommands share on their command
// lines.
package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
)

// Parse parses args with fs, whose Usage must write to fs.Output(). Usage
// asked for with -h or -help goes to stdout and the result is flag.ErrHelp
// (the caller exits 0): it is the output the user asked for, so
// `raftlite serve -h | less` works. After a parse error the error and the
// usage go to fs's output as set, normally stderr.
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	errOut := fs.Output()
	var buf bytes.Buffer
	fs.SetOutput(&buf)
	err := fs.Parse(args)
	fs.SetOutput(errOut)
	w := errOut
	if errors.Is(err, flag.ErrHelp) {
		w = stdout
	}
	if _, werr := w.Write(buf.Bytes()); werr != nil && err == nil {
		err = werr
	}
	return err
}
