package shell

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/client"
	"github.com/raftlite/raftlite/internal/cli"
	"github.com/raftlite/raftlite/internal/tlsconf"
)

// Config is what the shell connects to and how it starts.
type Config struct {
	// Hosts are the nodes' HTTP API addresses (host:port or URLs), tried in
	// order; the shell fails over to the next when one does not answer.
	Hosts []string
	// User and Password are sent with HTTP basic authentication when User is
	// not empty.
	User, Password string
	// TLS is the client TLS configuration for https nodes (-ca-cert,
	// -insecure, -client-cert, -client-key); nil for the defaults.
	TLS *tls.Config
	// Command, when HasCommand, is run instead of reading standard input
	// (-c): SQL statements and dot-commands, as in a script.
	Command    string
	HasCommand bool
	// Level is the read consistency level.
	Level api.Level
	// Timeout bounds one attempt of a request (0: the client's default).
	Timeout time.Duration
	// Mode is the initial output mode.
	Mode outputMode
	// Version is the shell's own version, shown in the banner.
	Version string
	// HistoryFile is where interactive input is remembered ("" for none).
	HistoryFile string
	// Verbose prints every retry and failover of the client on stderr.
	Verbose bool
}

// defaultHost is the node the shell talks to when -H is not given.
const defaultHost = "127.0.0.1:4001"

// levels are the consistency levels the shell accepts (.consistency, -consistency).
var levels = api.Levels

func parseLevel(s string) (api.Level, bool) {
	for _, l := range levels {
		if strings.EqualFold(s, string(l)) {
			return l, true
		}
	}
	return "", false
}

func levelNames() string {
	names := make([]string, len(levels))
	for i, l := range levels {
		names[i] = string(l)
	}
	return strings.Join(names, "|")
}

func modeNames() string {
	names := make([]string, len(outputModes))
	for i, m := range outputModes {
		names[i] = string(m)
	}
	return strings.Join(names, "|")
}

// historyFile is $RAFTLITE_HISTORY, or ~/.raftlite_history.
func historyFile() string {
	if f := os.Getenv("RAFTLITE_HISTORY"); f != "" {
		return f
	}
	home := os.Getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil {
			return ""
		}
	}
	return filepath.Join(home, ".raftlite_history")
}

// ParseFlags reads the shell's command line. flag.ErrHelp means -h was
// given (usage has been printed to stdout).
func ParseFlags(args []string, stdout, stderr io.Writer) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("shell", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hosts := fs.String("H", defaultHost, "comma-separated `host:port` list of nodes, tried in order")
	user := fs.String("u", "", "credentials as `user:password` (HTTP basic auth)")
	command := fs.String("c", "", "run `SQL` (statements and dot-commands) and exit")
	level := fs.String("consistency", string(api.LevelWeak), "read consistency `level`: "+levelNames())
	timeout := fs.Duration("timeout", client.DefaultTimeout, "bound on one request attempt to one node")
	mode := fs.String("mode", string(modeTable), "output `mode`: "+modeNames())
	fs.BoolVar(&cfg.Verbose, "v", false, "print every retry and failover (for debugging)")
	var tlsFlags tlsconf.ClientFlags
	tlsFlags.Register(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: raftlite shell [flags]

An interactive SQL shell for a raftlite cluster. With standard input not a
terminal, or with -c, it runs the statements it is given, prints only their
results and exits with status 1 at the first error.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (SQL goes in -c or on standard input)", fs.Arg(0))
	}
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			cfg.Hosts = append(cfg.Hosts, tlsFlags.URL(h))
		}
	}
	if len(cfg.Hosts) == 0 {
		return cfg, errors.New("-H: no hosts")
	}
	var err error
	if cfg.TLS, err = tlsFlags.Config(); err != nil {
		return cfg, err
	}
	if *user != "" {
		u, p, ok := strings.Cut(*user, ":")
		if !ok || u == "" {
			return cfg, errors.New("-u: want user:password")
		}
		cfg.User, cfg.Password = u, p
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "c" {
			cfg.HasCommand = true
		}
	})
	cfg.Command = *command
	var ok bool
	if cfg.Level, ok = parseLevel(*level); !ok {
		return cfg, fmt.Errorf("-consistency: unknown level %q (want %s)", *level, levelNames())
	}
	if *timeout <= 0 {
		return cfg, errors.New("-timeout: must be positive")
	}
	cfg.Timeout = *timeout
	if cfg.Mode, ok = parseMode(*mode); !ok {
		return cfg, fmt.Errorf("-mode: unknown mode %q (want %s)", *mode, modeNames())
	}
	cfg.HistoryFile = historyFile()
	return cfg, nil
}
