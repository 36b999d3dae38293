package shell

import (
	"errors"
	"strings"

	"github.com/mattn/go-shellwords"
)

// splitArgs splits a dot-command line into its words with shell quoting
// rules: 'single' and "double" quotes and backslash escapes. Nothing is
// expanded or run: no environment variables, no backticks, no $(...).
// Shell separators and grouping characters mean nothing in a dot-command,
// so they are ordinary characters (".tables a|b" is the pattern "a|b"). A
// trailing ';', which people type out of SQL habit, is dropped.
func splitArgs(line string) ([]string, error) {
	p := shellwords.NewParser()
	p.ParseEnv = false
	p.ParseBacktick = false
	p.SetExcludeSeparators(';', '&', '|', '<', '>', '(', ')', '`')
	line = strings.TrimRight(strings.TrimSpace(line), "; \t")
	args, err := p.Parse(line)
	if err != nil {
		return nil, errors.New("unbalanced quotes")
	}
	return args, nil
}
