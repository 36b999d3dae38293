package shell

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// terminal drives "raftlite shell" in a pseudo-terminal, as a person at a
// keyboard would.
type terminal struct {
	t    *testing.T
	cmd  *exec.Cmd
	pty  *os.File
	mu   sync.Mutex
	buf  bytes.Buffer // everything the shell wrote, escape sequences removed
	seen int          // how much of buf expect has consumed
	done chan struct{}
}

// ansi matches the terminal control sequences liner writes.
var ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][AB0-9]|\r`)

func startTerminal(t *testing.T, home string, args ...string) *terminal {
	t.Helper()
	cmd := exec.Command(raftliteBinary(t), append([]string{"shell"}, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "TERM=xterm", "RAFTLITE_HISTORY=", "COLUMNS=")
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 40, Cols: 100})
	if err != nil {
		t.Fatal(err)
	}
	term := &terminal{t: t, cmd: cmd, pty: f, done: make(chan struct{})}
	go func() {
		defer close(term.done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			if n > 0 {
				term.mu.Lock()
				term.buf.Write(b[:n])
				term.mu.Unlock()
			}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		f.Close()
		<-term.done
	})
	return term
}

// screen is the output so far without control sequences.
func (term *terminal) screen() string {
	term.mu.Lock()
	defer term.mu.Unlock()
	return ansi.ReplaceAllString(term.buf.String(), "")
}

// expect waits until text appears in the output after what earlier
// expects consumed, and consumes up to its end.
func (term *terminal) expect(text string) {
	term.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		s := term.screen()
		if i := strings.Index(s[min(term.seen, len(s)):], text); i >= 0 {
			term.seen += i + len(text)
			return
		}
		if time.Now().After(deadline) {
			term.t.Fatalf("timed out waiting for %q; the terminal shows:\n%s", text, s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (term *terminal) send(keys string) {
	term.t.Helper()
	if _, err := term.pty.Write([]byte(keys)); err != nil {
		term.t.Fatal(err)
	}
}

// wait waits for the shell to exit and returns its status.
func (term *terminal) wait() int {
	term.t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- term.cmd.Wait() }()
	select {
	case err := <-errc:
		if err != nil {
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode()
			}
			term.t.Fatal(err)
		}
		return 0
	case <-time.After(15 * time.Second):
		term.t.Fatalf("the shell did not exit; the terminal shows:\n%s", term.screen())
		return -1
	}
}

const (
	keyUp   = "\x1b[A"
	keyCtlC = "\x03"
	keyCtlD = "\x04"
)

func TestInteractiveTerminal(t *testing.T) {
	c := sharedNode(t)
	resetDatabase(t, c)
	home := t.TempDir()
	host := c.nodes[0].httpAddr
	term := startTerminal(t, home, "-H", host)

	// The banner: who answers, the server's version and the leader.
	term.expect("connected to " + c.nodes[0].url() + " (node 1, raftlite ")
	term.expect("leader: node 1 at " + c.nodes[0].url())
	term.expect(prompt)

	// A statement over three lines: continuation prompts, then the result
	// and the row count.
	term.send("SELECT 6 *\r")
	term.expect(contPrompt)
	term.send("  7\r")
	term.expect(contPrompt)
	term.send("  AS answer;\r")
	term.expect("| answer |")
	term.expect("|     42 |")
	term.expect("(1 row)")
	term.expect(prompt)

	// Ctrl-C abandons the statement being typed: it never runs, and the
	// next line starts afresh.
	term.send("SELECT 'abandoned'\r")
	term.expect(contPrompt)
	term.send("  AS gone")
	term.send(keyCtlC)
	term.expect(prompt)
	term.send("SELECT 'fresh' AS state;\r")
	term.expect("| fresh |")
	term.expect(prompt)
	if strings.Contains(term.screen(), "| abandoned") {
		t.Errorf("the abandoned statement ran:\n%s", term.screen())
	}

	// Ctrl-C while a statement runs interrupts it, not the session.
	term.send("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000) SELECT count(*) AS slow FROM c;\r")
	time.Sleep(300 * time.Millisecond)
	term.send(keyCtlC)
	term.expect("Error: interrupted")
	term.expect(prompt)

	// Errors are reported and the session goes on.
	term.send("SELECT * FROM nowhere;\r")
	term.expect("Error: no such table: nowhere")
	term.expect(prompt)

	// Up-arrow recalls the previous entries (the error, the slow query,
	// ...), back to the multi-line statement, joined into one line.
	term.send(keyUp + keyUp + keyUp + keyUp)
	term.expect("SELECT 6 * 7 AS answer;")
	term.send("\r")
	term.expect("|     42 |")
	term.expect(prompt)

	// Ctrl-D leaves; the history file keeps the entries.
	term.send(keyCtlD)
	if code := term.wait(); code != 0 {
		t.Errorf("exit status %d after Ctrl-D", code)
	}
	hist, err := os.ReadFile(filepath.Join(home, ".raftlite_history"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"SELECT 6 * 7 AS answer;", "SELECT 'fresh' AS state;", "SELECT * FROM nowhere;"} {
		if !strings.Contains(string(hist), want+"\n") {
			t.Errorf("history file lacks %q:\n%s", want, hist)
		}
	}
	if strings.Contains(string(hist), "abandoned") {
		t.Errorf("history file has the abandoned entry:\n%s", hist)
	}

	// A new session recalls the last session's history.
	term = startTerminal(t, home, "-H", host)
	term.expect(prompt)
	term.send(keyUp)
	term.expect("SELECT 6 * 7 AS answer;")
	term.send("\r")
	term.expect("|     42 |")
	term.send(".exit\r")
	if code := term.wait(); code != 0 {
		t.Errorf("exit status %d after .exit", code)
	}
}

// TestInteractiveBannerSkipsDeadHost checks that the banner names the node
// that answers when the first host is down.
func TestInteractiveBannerSkipsDeadHost(t *testing.T) {
	c := sharedNode(t)
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	dead := "127.0.0.1:" + strconv.Itoa(ports[0])
	term := startTerminal(t, t.TempDir(), "-H", dead+","+c.nodes[0].httpAddr)
	term.expect("connected to " + c.nodes[0].url())
	term.expect(prompt)
	term.send(".leader\r")
	term.expect("node 1 at " + c.nodes[0].url())
	term.send(keyCtlD)
	term.wait()
}
