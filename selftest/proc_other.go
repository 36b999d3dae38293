//go:build !unix

package selftest

import (
	"errors"
	"os"
)

func pauseProcess(*os.Process, bool) error {
	return errors.New("pausing a process needs SIGSTOP (Unix)")
}
