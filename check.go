package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/raftlite/raftlite/client"
	"github.com/raftlite/raftlite/internal/cli"
	"github.com/raftlite/raftlite/internal/tlsconf"
)

// check runs `raftlite check`: it proposes a checksum marker, asks every
// member for its checksum at the marker's index (client.CheckReplicas) and
// prints a table. It exits 0 when all members agree, 1 when any differs
// from the majority (the leader's checksum on a tie) or cannot answer, and
// 2 on usage errors or when the check could not be made.
func check(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hosts := fs.String("H", "127.0.0.1:4001", "comma-separated `host:port` list of nodes to reach the cluster through")
	user := fs.String("u", "", "credentials as `user:password` (HTTP basic auth)")
	timeout := fs.Duration("timeout", time.Minute, "overall time limit")
	var tlsFlags tlsconf.ClientFlags
	tlsFlags.Register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: raftlite check [flags]

Compares the database content of every cluster member at the same log
index: proposes a checksum marker, gathers each member's checksum at its
index, prints them, and exits 1 naming any member that differs. With
-auth on the nodes, the user needs the execute permission (proposing the
marker appends to the log) and status (reading each member's checksum).

Flags:
`)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "raftlite check: unexpected arguments %q\n", fs.Args())
		return 2
	}
	tlsCfg, err := tlsFlags.Config()
	if err != nil {
		fmt.Fprintf(stderr, "raftlite check: %v\n", err)
		return 2
	}
	cfg := client.Config{DisableSessions: true, DisableIndexTracking: true, Timeout: *timeout, TLS: tlsCfg}
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Nodes = append(cfg.Nodes, tlsFlags.URL(h))
		}
	}
	if *user != "" {
		cfg.User, cfg.Password, _ = strings.Cut(*user, ":")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	c, err := client.New(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "raftlite check: %v\n", err)
		return 2
	}
	defer c.Close()
	rc, err := c.CheckReplicas(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "raftlite check: %v\n", err)
		return 2
	}

	if !rc.WriteReport(stdout) {
		return 1
	}
	return 0
}
