package bench

import "syscall"

// onTmpfs reports whether dir is on a tmpfs (in memory), where fsync is
// free and the floor would be meaningless.
func onTmpfs(dir string) bool {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return false
	}
	const tmpfsMagic = 0x01021994
	return st.Type == tmpfsMagic
}
