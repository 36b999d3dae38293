package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBashCompletion loads `raftlite completion bash` into a real bash and
// completes a subcommand and a subcommand's flags, which the script reads
// from the binary's own -h.
func TestBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash here")
	}
	script, err := exec.Command(binary, "completion", "bash").Output()
	if err != nil {
		t.Fatalf("raftlite completion bash: %v", err)
	}
	file := filepath.Join(t.TempDir(), "raftlite.bash")
	if err := os.WriteFile(file, script, 0o600); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		prog := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _raftlite; printf '%s\n' "${COMPREPLY[@]}"`
		out, err := exec.Command(bash, append([]string{"-c", prog, "bash", file, binary}, words...)...).Output()
		if err != nil {
			t.Fatalf("completing %q: %v", words, err)
		}
		return strings.Fields(string(out))
	}
	if got := strings.Join(complete("se"), " "); got != "serve selftest" {
		t.Errorf("completing \"raftlite se\": %q, want \"serve selftest\"", got)
	}
	if got := strings.Join(complete("backup", "-f"), " "); got != "-f -fmt" {
		t.Errorf("completing \"raftlite backup -f\": %q, want \"-f -fmt\"", got)
	}
	if got := strings.Join(complete("serve", "-log-f"), " "); got != "-log-format" {
		t.Errorf("completing \"raftlite serve -log-f\": %q, want \"-log-format\"", got)
	}
	if got := strings.Join(complete("completion", ""), " "); got != "bash zsh" {
		t.Errorf("completing \"raftlite completion \": %q", got)
	}
	zsh, err := exec.Command(binary, "completion", "zsh").Output()
	if err != nil || !strings.HasPrefix(string(zsh), "#compdef raftlite") {
		t.Errorf("raftlite completion zsh: %v %q", err, zsh)
	}
}
