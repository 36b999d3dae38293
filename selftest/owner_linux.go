package selftest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// partitionsSupported: socketOwnerPID works here, so proxies can tell which
// node opened a connection.
const partitionsSupported = true

// socketOwnerPID returns which of pids holds the TCP socket whose local end
// is from and whose remote end is to: the kernel's socket table
// (/proc/net/tcp, /proc/net/tcp6) gives the socket's inode, and the
// process holding that inode has it among its /proc/PID/fd links.
func socketOwnerPID(from, to *net.TCPAddr, pids map[int]int) (int, error) {
	inode, err := socketInode(from.Port, to.Port)
	if err != nil {
		return 0, err
	}
	want := "socket:[" + inode + "]"
	for pid := range pids {
		dir := fmt.Sprintf("/proc/%d/fd", pid)
		entries, err := os.ReadDir(dir)
		if err != nil {
			continue // the process has just exited
		}
		for _, e := range entries {
			if link, err := os.Readlink(dir + "/" + e.Name()); err == nil && link == want {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no process among %d holds socket %s (port %d to %d)", len(pids), inode, from.Port, to.Port)
}

// socketInode finds the inode of the TCP socket from local port `local` to
// remote port `remote` (on loopback, the ports pair names one socket).
func socketInode(local, remote int) (string, error) {
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		inode, found := scanSocketTable(bufio.NewScanner(f), local, remote)
		f.Close()
		if found {
			return inode, nil
		}
	}
	return "", errors.New("socket not in /proc/net/tcp{,6}")
}

// scanSocketTable reads lines of /proc/net/tcp's format ("sl local_address
// rem_address st ... uid timeout inode", addresses as HEXIP:HEXPORT).
func scanSocketTable(sc *bufio.Scanner, local, remote int) (string, bool) {
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 {
			continue
		}
		if hexPort(f[1]) == local && hexPort(f[2]) == remote {
			return f[9], true
		}
	}
	return "", false
}

// hexPort is the port of a /proc/net/tcp address, -1 if malformed.
func hexPort(addr string) int {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return -1
	}
	p, err := strconv.ParseUint(addr[i+1:], 16, 16)
	if err != nil {
		return -1
	}
	return int(p)
}
