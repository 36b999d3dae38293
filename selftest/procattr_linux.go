package selftest

import "syscall"

// childProcAttr makes a node die with the selftest, even when the selftest
// itself is killed.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
