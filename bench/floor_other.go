//go:build !linux

package bench

// onTmpfs is only implemented on Linux.
func onTmpfs(string) bool { return false }
