// Command raftlite is a replicated SQLite database: SQL statements become Raft
// log entries that every node applies to its own SQLite file, served through
// an HTTP API compatible with rqlite's.
//
// Usage:
//
//	raftlite serve [flags] [data-dir]   run a node
//	raftlite shell [flags]              the interactive SQL shell
//	raftlite bench [flags]              load-test nodes and measure the floor
//	raftlite check [flags]              compare every replica's content
//	raftlite backup [flags]             download a backup (-fmt binary|sql -o FILE)
//	raftlite restore [flags] FILE       replace the database with FILE
//	raftlite members [flags]            list the cluster's members (-w table|json)
//	raftlite promote [flags] ID         make the learner ID a voter
//	raftlite healthcheck [flags]        exit 0 if a node is ready (GET /readyz)
//	raftlite selftest [flags]           check linearizability under faults
//	raftlite completion bash|zsh        print a shell completion script
//	raftlite version                    print the version
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/raftlite/raftlite/bench"
	"github.com/raftlite/raftlite/selftest"
	"github.com/raftlite/raftlite/shell"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "v0.1.0"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], stdout, stderr)
	case "shell":
		return shell.Main(args[1:], version, os.Stdin, stdout, stderr)
	case "bench":
		return bench.Main(args[1:], stdout, stderr)
	case "check":
		return check(args[1:], stdout, stderr)
	case "backup":
		return backup(args[1:], stdout, stderr)
	case "restore":
		return restore(args[1:], stdout, stderr)
	case "members":
		return members(args[1:], stdout, stderr)
	case "promote":
		return promote(args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(args[1:], stdout, stderr)
	case "selftest":
		return selftest.Main(args[1:], stdout, stderr)
	case "completion":
		return completion(args[1:], stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "raftlite %s\n", version)
		return 0
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "raftlite: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `raftlite: replicated SQLite over Raft, with an rqlite-compatible HTTP API.

Usage:
  raftlite serve [flags] [data-dir]   run a node (default data-dir ./raftlite-data)
  raftlite shell [flags]              the SQL shell (-H host:port,... -c SQL)
  raftlite bench [flags]              load-test nodes (rqlite too) and measure the disk's floor
  raftlite check [flags]              compare every member's database at the same index (-H host:port,...)
  raftlite backup [flags]             download a consistent backup (-fmt binary|sql, -o FILE)
  raftlite restore [flags] FILE       replace the database on every node with FILE (SQLite file or SQL dump)
  raftlite members [flags]            list the members: address, voter or learner, leader, applied index, lag (-w table|json)
  raftlite promote [flags] ID         make the learner ID (started with -raft-non-voter) a voter
  raftlite healthcheck [flags]        exit 0 when the node answers /readyz with 200 (the container's HEALTHCHECK)
  raftlite selftest [flags]           run a 3-node cluster under faults and check it with porcupine (-duration, -level, -html)
  raftlite completion bash|zsh        print a completion script (source <(raftlite completion bash))
  raftlite version                    print the version

Run "raftlite COMMAND -h" for a command's flags.
`)
}
