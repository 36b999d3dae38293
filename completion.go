package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/raftlite/raftlite/internal/cli"
)

// subcommands are the words run dispatches on, for completion.
var subcommands = []string{"serve", "shell", "bench", "check", "backup", "restore", "selftest", "completion", "version", "help"}

// flagsOf is the shell pipeline, shared by both scripts, that lists the
// flags of a subcommand from its -h output (flag.PrintDefaults lines start
// "  -name"), so completion always matches the installed binary.
const flagsOf = `-h 2>/dev/null | sed -n 's/^  \(-[^ ]*\).*/\1/p'`

// bashCompletion completes subcommands, their flags and file names.
const bashCompletion = `# bash completion for raftlite. Load it with
#   source <(raftlite completion bash)
# or save it as /etc/bash_completion.d/raftlite.
_raftlite() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	if [ "$COMP_CWORD" -eq 1 ]; then
		COMPREPLY=($(compgen -W "SUBCOMMANDS" -- "$cur"))
	elif [ "${COMP_WORDS[1]}" = completion ]; then
		COMPREPLY=($(compgen -W "bash zsh" -- "$cur"))
	elif [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$("${COMP_WORDS[0]}" "${COMP_WORDS[1]}" FLAGSOF)" -- "$cur"))
	else
		COMPREPLY=($(compgen -f -- "$cur"))
	fi
}
complete -o filenames -F _raftlite raftlite
`

// zshCompletion completes the same in zsh.
const zshCompletion = `#compdef raftlite
# zsh completion for raftlite. Load it with
#   autoload -U compinit && compinit; source <(raftlite completion zsh)
# or save it as _raftlite in a directory of $fpath.
_raftlite() {
	if (( CURRENT == 2 )); then
		compadd -- SUBCOMMANDS
	elif [[ $words[2] == completion ]]; then
		compadd -- bash zsh
	elif [[ $words[CURRENT] == -* ]]; then
		compadd -- ${(f)"$($words[1] $words[2] FLAGSOF)"}
	else
		_files
	fi
}
compdef _raftlite raftlite
`

// completion runs "raftlite completion bash|zsh": it prints the shell's
// completion script.
func completion(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: raftlite completion bash|zsh

Prints a script that completes raftlite's subcommands, their flags (read
from the binary's own -h) and file names. Load it in the running shell:
  source <(raftlite completion bash)
`)
	}
	if err := cli.Parse(fs, args, stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var script string
	switch fs.Arg(0) {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	}
	if fs.NArg() != 1 || script == "" {
		fs.Usage()
		return 2
	}
	r := strings.NewReplacer("SUBCOMMANDS", strings.Join(subcommands, " "), "FLAGSOF", flagsOf)
	fmt.Fprint(stdout, r.Replace(script))
	return 0
}
