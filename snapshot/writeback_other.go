//go:build !linux

package snapshot

import "os"

func writeOut(*os.File, int64, int64) {}
