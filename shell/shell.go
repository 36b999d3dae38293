package shell

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/client"
)

// Main runs "raftlite shell" with its command-line arguments and returns the
// process exit status: 0, 1 after an error, 2 for bad flags.
func Main(args []string, version string, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := ParseFlags(args, stdout, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "raftlite shell: %v\n", err)
		return 2
	}
	cfg.Version = version
	return Run(context.Background(), cfg, stdin, stdout, stderr)
}

// Run runs the shell until its input ends or .exit, and returns the exit
// status. It is interactive (line editing, history, banner) when there is
// no -c and both stdin and stdout are terminals; otherwise it runs the
// script it is given, prints only results, and stops with status 1 at the
// first error.
func Run(ctx context.Context, cfg Config, stdin io.Reader, stdout, stderr io.Writer) int {
	s, err := newShell(cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "raftlite shell: %v\n", err)
		return 2
	}
	defer s.close()
	// A transaction left open at the end is rolled back, as sqlite3 does.
	defer s.discardTransaction()
	if !cfg.HasCommand && isTerminal(stdin) && isTerminal(stdout) {
		s.interactive = true
		s.feedback = true
		return s.runInteractive(ctx)
	}
	if cfg.HasCommand {
		return s.runScript(ctx, strings.NewReader(cfg.Command), &input{})
	}
	return s.runScript(ctx, stdin, &input{showLines: true})
}

// session is one run of the shell: a client of the cluster and the output settings.
type session struct {
	cfg    Config
	c      *client.Client
	stdout io.Writer
	stderr io.Writer

	// out receives results: stdout, or the file of .output.
	out     io.Writer
	outFile *os.File

	interactive bool
	mode        outputMode
	headers     bool
	timer       bool
	feedback    bool // row counts and confirmations
	pager       bool // long results through $PAGER on a terminal (.pager)
	null        string
	nullSet     bool
	level       api.Level
	// fixedWidth, when positive, is the width tables fit instead of the
	// terminal's (tests set it).
	fixedWidth int

	node      string    // the node that answered last
	retries   *retryLog // the client's retries and failovers
	readDepth int
	tx        *transaction // open between BEGIN and COMMIT or ROLLBACK
	schema    schemaNames  // for tab completion
	quit      bool
	exitCode  int
}

func newShell(cfg Config, stdout, stderr io.Writer) (*session, error) {
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{defaultHost}
	}
	if cfg.Mode == "" {
		cfg.Mode = modeTable
	}
	if cfg.Level == "" {
		cfg.Level = api.LevelWeak
	}
	retries := &retryLog{}
	if cfg.Verbose {
		retries.verbose = stderr
	}
	c, err := client.New(client.Config{
		Logger:    slog.New(retries),
		Nodes:     cfg.Hosts,
		User:      cfg.User,
		Password:  cfg.Password,
		TLS:       cfg.TLS,
		Timeout:   cfg.Timeout,
		UserAgent: "raftlite-shell/" + cfg.Version,
	})
	if err != nil {
		return nil, err
	}
	s := &session{
		cfg:     cfg,
		c:       c,
		stdout:  stdout,
		stderr:  stderr,
		out:     stdout,
		mode:    cfg.Mode,
		headers: true,
		pager:   true,
		null:    "NULL",
		level:   cfg.Level,
		retries: retries,
	}
	s.node = c.CurrentNode()
	return s, nil
}

func (s *session) close() {
	if s.outFile != nil {
		s.outFile.Close()
		s.outFile = nil
	}
	s.c.Close()
}

// interruptible returns a context that Ctrl-C (SIGINT) cancels, while a
// command of an interactive session runs.
func (s *session) interruptible(ctx context.Context) (context.Context, context.CancelFunc) {
	if !s.interactive {
		return ctx, func() {}
	}
	return signal.NotifyContext(ctx, os.Interrupt)
}

// printError reports err on stderr, on one line.
func (s *session) printError(err error) {
	var shown *shownError
	if errors.As(err, &shown) {
		return
	}
	msg := strings.ReplaceAll(strings.TrimSpace(describeError(err)), "\n", "; ")
	fmt.Fprintf(s.stderr, "Error: %s\n", msg)
}

// note tells the user something on stderr that is not a result.
func (s *session) note(format string, args ...any) {
	fmt.Fprintf(s.stderr, "note: "+format+"\n", args...)
}

// info prints a confirmation, with feedback on.
func (s *session) info(format string, args ...any) {
	if s.feedback {
		fmt.Fprintf(s.out, format+"\n", args...)
	}
}

// width is the display width tables must fit: the fixed width, or the
// terminal's when results go to one; 0 for no limit.
func (s *session) width() int {
	if s.fixedWidth > 0 {
		return s.fixedWidth
	}
	if s.outFile == nil {
		if f, ok := s.stdout.(*os.File); ok {
			return terminalWidth(f)
		}
	}
	return 0
}

func (s *session) renderOptions() renderOptions {
	return renderOptions{mode: s.mode, headers: s.headers, null: s.null, nullSet: s.nullSet, width: s.width()}
}
