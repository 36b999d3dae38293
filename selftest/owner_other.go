//go:build !linux

package selftest

import (
	"errors"
	"net"
)

// partitionsSupported: without /proc a proxy cannot tell which node opened
// a connection, so it cannot cut one node off.
const partitionsSupported = false

func socketOwnerPID(from, to *net.TCPAddr, pids map[int]int) (int, error) {
	return 0, errors.New("finding a socket's owner needs Linux's /proc")
}
