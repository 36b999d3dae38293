package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

// healthcheckTimeout is the default -timeout of `raftlite healthcheck`:
// shorter than a container runtime's usual probe timeout.
const healthcheckTimeout = 3 * time.Second

// healthcheck runs `raftlite healthcheck`: GET /readyz on a node, exit 0
// when it answers 200 and 1 otherwise, saying why on stderr. It is the
// container image's HEALTHCHECK: the image is built FROM scratch and has
// no curl or wget.
func healthcheck(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	var cf transferFlags
	cf.register(fs, healthcheckTimeout)
	noLeader := fs.Bool("noleader", false, "only check this node (/readyz?noleader), not that it knows a leader")
	if status, ok := parseClusterCommand("healthcheck", `Usage: raftlite healthcheck [flags]

Exits 0 when the node answers GET /readyz with 200 (it is part of a
cluster with a leader and its database is open), 1 otherwise. With -auth
on the node, give "*" the ready permission or pass -u.
`, 0, fs, args, stdout, stderr); !ok {
		return status
	}
	path := "/readyz"
	if *noLeader {
		path += "?noleader"
	}
	resp, err := cf.do(func(base string) (*http.Request, error) { return http.NewRequest(http.MethodGet, base+path, nil) })
	if err != nil {
		fmt.Fprintf(stderr, "raftlite healthcheck: not ready: %v\n", err)
		return 1
	}
	resp.Body.Close()
	fmt.Fprintln(stdout, "ready")
	return 0
}
