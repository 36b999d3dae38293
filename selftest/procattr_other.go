//go:build !linux

package selftest

import "syscall"

// childProcAttr: outside Linux there is no parent-death signal; the
// selftest kills its nodes when it ends normally.
func childProcAttr() *syscall.SysProcAttr { return nil }
