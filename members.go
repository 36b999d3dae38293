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
	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/internal/cli"
	"github.com/raftlite/raftlite/shell"
)

// membershipTimeout is the default -timeout of the membership commands.
const membershipTimeout = 30 * time.Second

// newClient returns a Go client of the -H nodes for the membership
// commands (members, promote), without sessions: they write nothing to the
// database.
func (f *transferFlags) newClient() (*client.Client, error) {
	cfg := client.Config{DisableSessions: true, DisableIndexTracking: true, Timeout: f.timeout}
	for _, h := range strings.Split(f.hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Nodes = append(cfg.Nodes, h)
		}
	}
	if f.user != "" {
		cfg.User, cfg.Password, _ = strings.Cut(f.user, ":")
	}
	return client.New(cfg)
}

// parseClusterCommand parses the flags of a membership command and checks
// that it got exactly nargs arguments. It returns the exit status to end
// with when the command should not run (0 after -h).
func parseClusterCommand(name, usage string, nargs int, fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (status int, ok bool) {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage+"\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() != nargs {
		fmt.Fprintf(stderr, "raftlite %s: want %d argument(s), got %q\n", name, nargs, fs.Args())
		fs.Usage()
		return 2, false
	}
	return 0, true
}

// members runs `raftlite members`: the membership (GET /nodes?nonvoters)
// as a table or JSON, like `etcdctl member list -w table`. It exits 0 once
// a node answered, even when members are unreachable (the table says so),
// and 1 when none did.
func members(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("members", flag.ContinueOnError)
	var cf transferFlags
	cf.register(fs, membershipTimeout)
	format := fs.String("w", "table", "output `format`: table or json")
	if status, ok := parseClusterCommand("members", `Usage: raftlite members [flags]

Lists the cluster's members, voters and learners, as the node asked sees
them: id, HTTP and Raft address, role, which one leads, whether its HTTP
API answers, the index of the last log entry applied to its database and
its lag, in entries, behind the leader's committed index. With -auth on
the nodes, the user needs the nodes or status permission.
`, 0, fs, args, stdout, stderr); !ok {
		return status
	}
	c, err := cf.newClient()
	if err != nil {
		fmt.Fprintf(stderr, "raftlite members: %v\n", err)
		return 2
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	nodes, err := c.Nodes(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "raftlite members: %v\n", err)
		return 1
	}
	if err := shell.WriteMembers(stdout, nodes, *format); err != nil {
		fmt.Fprintf(stderr, "raftlite members: %v\n", err)
		return 2
	}
	return 0
}

// promote runs `raftlite promote ID`: POST /promote, which makes the
// learner a voter once it has caught up. It exits 0 when the node is a
// voter afterwards (promoted now or already), 1 when the leader refused or
// could not be reached.
func promote(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("promote", flag.ContinueOnError)
	var cf transferFlags
	cf.register(fs, membershipTimeout)
	if status, ok := parseClusterCommand("promote", fmt.Sprintf(`Usage: raftlite promote [flags] ID

Makes the learner (a node started with -raft-non-voter) ID a voter. The
leader refuses while the learner's database lags its committed index by
more than %d entries or the learner does not answer (409
learner_not_ready): wait for it to catch up ("raftlite members" shows its
lag) and try again. With -auth on the nodes, the user needs the join
permission.
`, cluster.DefaultPromoteMaxLag), 1, fs, args, stdout, stderr); !ok {
		return status
	}
	id := fs.Arg(0)
	c, err := cf.newClient()
	if err != nil {
		fmt.Fprintf(stderr, "raftlite promote: %v\n", err)
		return 2
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), cf.timeout)
	defer cancel()
	promoted, err := c.Promote(ctx, id)
	if err != nil {
		fmt.Fprintf(stderr, "raftlite promote: %v\n", err)
		return 1
	}
	if promoted {
		fmt.Fprintf(stdout, "node %s promoted to voter\n", id)
	} else {
		fmt.Fprintf(stdout, "node %s is already a voter\n", id)
	}
	return 0
}
