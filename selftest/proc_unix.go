//go:build unix

package selftest

import (
	"os"
	"syscall"
)

// pauseProcess stops (SIGSTOP) or continues (SIGCONT) p.
func pauseProcess(p *os.Process, paused bool) error {
	if paused {
		return p.Signal(syscall.SIGSTOP)
	}
	return p.Signal(syscall.SIGCONT)
}
