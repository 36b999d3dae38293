package shell

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// dotCommand is one of the shell's own commands, the lines that start with
// a dot.
type dotCommand struct {
	name    string
	aliases []string
	args    string // the arguments, for usage lines
	help    string
	minArgs int
	maxArgs int
	run     func(s *session, ctx context.Context, args []string) error
}

// dotCommands is the table of dot-commands, sorted by name (set in init,
// because .help reads it).
var dotCommands []*dotCommand

func init() {
	dotCommands = []*dotCommand{
		{name: "backup", args: "FILE", help: "save the database (an SQLite file) to FILE", minArgs: 1, maxArgs: 1, run: (*session).cmdBackup},
		{name: "boot", args: "FILE", help: "replace the database of a single-node cluster with the SQLite file FILE, without the log", minArgs: 1, maxArgs: 1, run: (*session).cmdBoot},
		{name: "check", help: "compare every member's database at the same log index", run: (*session).cmdCheck},
		{name: "consistency", args: "[LEVEL]", help: "read consistency: " + levelNames(), maxArgs: 1, run: (*session).cmdConsistency},
		{name: "dump", args: "[FILE]", help: "write the database as SQL, to FILE or the output", maxArgs: 1, run: (*session).cmdDump},
		{name: "exit", aliases: []string{"quit"}, args: "[CODE]", help: "leave the shell (.quit too)", maxArgs: 1, run: (*session).cmdExit},
		{name: "feedback", args: "on|off", help: "row counts and confirmations (on when interactive)", minArgs: 1, maxArgs: 1, run: setFlag("feedback", func(s *session) *bool { return &s.feedback })},
		{name: "headers", args: "on|off", help: "column names in query results", minArgs: 1, maxArgs: 1, run: setFlag("headers", func(s *session) *bool { return &s.headers })},
		{name: "help", args: "[COMMAND]", help: "list the dot-commands, or describe one", maxArgs: 1, run: (*session).cmdHelp},
		{name: "indexes", args: "[TABLE]", help: "list the indexes (of the tables matching TABLE)", maxArgs: 1, run: (*session).cmdIndexes},
		{name: "leader", help: "show the cluster's leader", run: (*session).cmdLeader},
		{name: "mode", args: "[MODE]", help: "output mode: " + modeNames(), maxArgs: 1, run: (*session).cmdMode},
		{name: "nodes", help: "list the cluster's members", run: (*session).cmdNodes},
		{name: "nullvalue", args: "TEXT", help: "show NULL as TEXT (default NULL; empty in csv)", minArgs: 1, maxArgs: 1, run: (*session).cmdNullValue},
		{name: "output", args: "[FILE]", help: "send results to FILE, or back to standard output", maxArgs: 1, run: (*session).cmdOutput},
		{name: "pager", args: "on|off", help: "page results longer than the terminal with $PAGER (on by default)", minArgs: 1, maxArgs: 1, run: setFlag("pager", func(s *session) *bool { return &s.pager })},
		{name: "read", args: "FILE", help: "run the statements and commands in FILE", minArgs: 1, maxArgs: 1, run: (*session).cmdRead},
		{name: "ready", help: "check that the node is ready to serve", run: (*session).cmdReady},
		{name: "reap", args: "[DURATION]", help: "remove the members the leader has not reached for DURATION (default 10s)", maxArgs: 1, run: (*session).cmdReap},
		{name: "remove", args: "ID", help: "remove the member ID from the cluster", minArgs: 1, maxArgs: 1, run: (*session).cmdRemove},
		{name: "restore", args: "FILE", help: "replace the database with FILE (SQLite file or SQL dump)", minArgs: 1, maxArgs: 1, run: (*session).cmdRestore},
		{name: "schema", args: "[TABLE]", help: "show the CREATE statements (of the tables matching TABLE)", maxArgs: 1, run: (*session).cmdSchema},
		{name: "snapshot", args: "[TRAILING]", help: "take a snapshot of the node now (keeping TRAILING log entries)", maxArgs: 1, run: (*session).cmdSnapshot},
		{name: "status", args: "[KEY]", help: "show the node's diagnostics, or the part under KEY", maxArgs: 1, run: (*session).cmdStatus},
		{name: "stepdown", args: "[ID]", help: "make the leader step down (in favour of member ID)", maxArgs: 1, run: (*session).cmdStepDown},
		{name: "tables", args: "[PATTERN]", help: "list the tables and views (matching the LIKE PATTERN)", maxArgs: 1, run: (*session).cmdTables},
		{name: "watch", args: "NAME [from INDEX]", help: "print the committed changes of table NAME as they come (from log INDEX on), until Ctrl-C", minArgs: 1, maxArgs: 3, run: (*session).cmdWatch},
		{name: "timer", args: "on|off", help: "show how long each statement took", minArgs: 1, maxArgs: 1, run: setFlag("timer", func(s *session) *bool { return &s.timer })},
	}
	sort.Slice(dotCommands, func(i, j int) bool { return dotCommands[i].name < dotCommands[j].name })
}

func findCommand(name string) *dotCommand {
	for _, c := range dotCommands {
		if c.name == name {
			return c
		}
		for _, a := range c.aliases {
			if a == name {
				return c
			}
		}
	}
	return nil
}

func (c *dotCommand) usage() string {
	u := "." + c.name
	if c.args != "" {
		u += " " + c.args
	}
	return u
}

// usageError is a dot-command used wrongly.
type usageError struct {
	cmd *dotCommand
	msg string
}

func (e *usageError) Error() string {
	return fmt.Sprintf(".%s: %s (usage: %s)", e.cmd.name, e.msg, e.cmd.usage())
}

// runDot runs a dot-command line.
func (s *session) runDot(ctx context.Context, line string) error {
	name, rest := strings.TrimPrefix(line, "."), ""
	if i := strings.IndexAny(name, " \t"); i >= 0 {
		name, rest = name[:i], name[i+1:]
	}
	name = strings.TrimRight(name, ";")
	cmd := findCommand(strings.ToLower(name))
	if cmd == nil {
		if name == "" {
			return errors.New(`missing command name after "." (try .help)`)
		}
		return fmt.Errorf("unknown command %q (try .help)", "."+name)
	}
	args, err := splitArgs(rest)
	if err != nil {
		return &usageError{cmd, err.Error()}
	}
	switch {
	case len(args) < cmd.minArgs:
		return &usageError{cmd, "missing argument"}
	case len(args) > cmd.maxArgs:
		return &usageError{cmd, "too many arguments"}
	}
	ctx, cancel := s.interruptible(ctx)
	defer cancel()
	return cmd.run(s, ctx, args)
}

// parseBool reads the on|off argument of a setting.
func parseBool(cmd string, arg string) (bool, error) {
	switch strings.ToLower(arg) {
	case "on", "yes", "true", "1":
		return true, nil
	case "off", "no", "false", "0":
		return false, nil
	}
	return false, &usageError{findCommand(cmd), fmt.Sprintf("want on or off, not %q", arg)}
}

func (s *session) cmdHelp(_ context.Context, args []string) error {
	if len(args) == 1 {
		c := findCommand(strings.TrimPrefix(strings.ToLower(args[0]), "."))
		if c == nil {
			return fmt.Errorf("unknown command %q (try .help)", args[0])
		}
		fmt.Fprintf(s.out, "%s\n    %s\n", c.usage(), c.help)
		return nil
	}
	w := 0
	for _, c := range dotCommands {
		w = max(w, len(c.usage()))
	}
	for _, c := range dotCommands {
		fmt.Fprintf(s.out, "%-*s  %s\n", w, c.usage(), c.help)
	}
	fmt.Fprintln(s.out, `
SQL statements end with ";" and may span lines; the statements of one line
go as one request. Reads use the read consistency; writes go through the
Raft log exactly once, even when retried. BEGIN holds the statements that
follow until COMMIT sends them as one transaction (ROLLBACK drops them).
TABLE and PATTERN are LIKE patterns (% and _ are wildcards). Tab completes
keywords, tables and columns; in recalled history, ␤ is a line break.`)
	return nil
}

func (s *session) cmdExit(_ context.Context, args []string) error {
	code := 0
	if len(args) == 1 {
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n > 255 {
			return &usageError{findCommand("exit"), fmt.Sprintf("bad exit code %q", args[0])}
		}
		code = n
	}
	s.quit = true
	s.exitCode = code
	return nil
}

// setFlag makes the run function of the on|off setting name, which field
// points to.
func setFlag(name string, field func(*session) *bool) func(*session, context.Context, []string) error {
	return func(s *session, _ context.Context, args []string) error {
		on, err := parseBool(name, args[0])
		if err == nil {
			*field(s) = on
		}
		return err
	}
}

func (s *session) cmdMode(_ context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(s.out, "%s\n", s.mode)
		return nil
	}
	m, ok := parseMode(args[0])
	if !ok {
		return &usageError{findCommand("mode"), fmt.Sprintf("unknown mode %q, want %s", args[0], modeNames())}
	}
	s.mode = m
	return nil
}

func (s *session) cmdNullValue(_ context.Context, args []string) error {
	s.null, s.nullSet = args[0], true
	return nil
}

func (s *session) cmdConsistency(_ context.Context, args []string) error {
	if len(args) == 0 {
		fmt.Fprintf(s.out, "%s\n", s.level)
		return nil
	}
	l, ok := parseLevel(args[0])
	if !ok {
		return &usageError{findCommand("consistency"), fmt.Sprintf("unknown level %q, want %s", args[0], levelNames())}
	}
	s.level = l
	return nil
}
