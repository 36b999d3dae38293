package cluster

import (
	"os"

	"golang.org/x/sys/unix"
)

// dataSync makes f's written data durable: fdatasync, which, unlike fsync,
// does not also wait for the inode's timestamps, so that overwriting
// blocks the file already has costs no journal commit.
func dataSync(f *os.File) error { return unix.Fdatasync(int(f.Fd())) }
