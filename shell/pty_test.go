package shell

import (
	"bytes"
	"context"
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

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/client"
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

// enter types line and Enter, and expects each of want in turn.
func (term *terminal) enter(line string, want ...string) {
	term.t.Helper()
	term.send(line + "\r")
	for _, w := range want {
		term.expect(w)
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
	// ...), back to the multi-line statement, on one line with its line
	// breaks marked.
	term.send(keyUp + keyUp + keyUp + keyUp)
	term.expect("SELECT 6 *␤  7␤  AS answer;")
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
	for _, want := range []string{"SELECT 6 *␤  7␤  AS answer;", "SELECT 'fresh' AS state;", "SELECT * FROM nowhere;"} {
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
	term.expect("SELECT 6 *␤  7␤  AS answer;")
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

// freshSession empties the shared node's database and starts the shell on
// it in a terminal, with home as $HOME, up to its first prompt.
func freshSession(t *testing.T, home string) (*testCluster, *terminal) {
	t.Helper()
	c := sharedNode(t)
	resetDatabase(t, c)
	term := startTerminal(t, home, "-H", c.nodes[0].httpAddr)
	term.expect(prompt)
	return c, term
}

// queryInt runs a query that returns one integer, through a client of its
// own, to see what the cluster holds apart from the shell.
func queryInt(t *testing.T, c *testCluster, sql string) int64 {
	t.Helper()
	cl := testClient(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := cl.With(client.WithLevel(api.LevelStrong)).Query(ctx, client.SQL(sql))
	if err == nil {
		err = resp.Err()
	}
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	n, ok := resp.Results[0].Values[0][0].(int64)
	if !ok {
		t.Fatalf("%s: got %#v, want an integer", sql, resp.Results[0].Values[0][0])
	}
	return n
}

// TestInteractiveTransaction checks BEGIN ... COMMIT and ROLLBACK typed at
// the prompt: nothing reaches the cluster before COMMIT, COMMIT applies the
// held statements together, ROLLBACK discards them, and the prompt says
// when a transaction is open.
func TestInteractiveTransaction(t *testing.T) {
	c, term := freshSession(t, t.TempDir())
	term.enter("CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER);", prompt)

	term.enter("BEGIN;", "transaction open", txPrompt)
	term.enter("INSERT INTO ledger (amount)", txContPrompt)
	term.enter("  VALUES (10); INSERT INTO ledger (amount) VALUES (20);", txPrompt)
	term.enter("SELECT * FROM ledger;", "Error: reads are not allowed inside BEGIN ... COMMIT", txPrompt)
	if n := queryInt(t, c, "SELECT count(*) FROM ledger"); n != 0 {
		t.Fatalf("%d rows in the table before COMMIT, want 0", n)
	}
	term.enter("COMMIT;", "committed: 2 statements applied together", prompt)
	if n := queryInt(t, c, "SELECT sum(amount) FROM ledger"); n != 30 {
		t.Fatalf("sum after COMMIT = %d, want 30", n)
	}

	// ROLLBACK: the DELETE typed in the transaction is never applied.
	term.enter("BEGIN;", txPrompt)
	term.enter("DELETE FROM ledger;", txPrompt)
	term.enter("ROLLBACK;", "rolled back: 1 statement discarded, nothing was sent", prompt)
	if n := queryInt(t, c, "SELECT count(*) FROM ledger"); n != 2 {
		t.Fatalf("%d rows after ROLLBACK, want 2", n)
	}
	term.enter(".exit")
	if code := term.wait(); code != 0 {
		t.Errorf("exit status %d", code)
	}
}

// TestInteractiveMultiLineHistory checks that a statement typed over
// several lines, with a line break inside a string, comes back from the
// history of a later session byte for byte.
func TestInteractiveMultiLineHistory(t *testing.T) {
	home := t.TempDir()
	c, term := freshSession(t, home)
	term.enter("CREATE TABLE notes (body TEXT);", prompt)
	term.enter("INSERT INTO notes VALUES ('first line", contPrompt)
	term.enter("  second line');", "1 row affected")
	term.send(keyCtlD)
	term.wait()

	hist, err := os.ReadFile(filepath.Join(home, ".raftlite_history"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "INSERT INTO notes VALUES ('first line␤  second line');\n"; !strings.Contains(string(hist), want) {
		t.Fatalf("history file lacks %q:\n%s", want, hist)
	}

	term = startTerminal(t, home, "-H", c.nodes[0].httpAddr)
	term.expect(prompt)
	term.send(keyUp)
	term.expect("second line');")
	term.enter("", "1 row affected")
	term.enter(".exit")
	term.wait()
	if n := queryInt(t, c, "SELECT count(*) FROM notes WHERE body = 'first line' || char(10) || '  second line'"); n != 2 {
		t.Fatalf("%d rows hold the two-line text, want 2 (the recalled entry changed the data)", n)
	}
}

// TestInteractiveReals checks that REALs print as sqlite3 prints them.
func TestInteractiveReals(t *testing.T) {
	c := sharedNode(t)
	term := startTerminal(t, t.TempDir(), "-H", c.nodes[0].httpAddr, "-mode", "csv")
	term.expect(prompt)
	term.enter("SELECT 175017500.0 AS a, 1e21 AS b, 1.0 / 3 AS c, 0.00001 AS d, 2.0 AS e;", "175017500.0,1.0e+21,0.333333333333333,1.0e-05,2.0")
	term.enter(".exit")
	term.wait()
}

// TestInteractiveCompletion checks Tab completion of keywords, table
// names, column names and dot-commands, and that a new table is known
// without restarting the shell.
func TestInteractiveCompletion(t *testing.T) {
	_, term := freshSession(t, t.TempDir())
	term.enter("CREATE TABLE warehouse_orders (customer_name TEXT, amount REAL);", prompt)
	term.enter("INSERT INTO warehouse_orders VALUES ('ann', 2.5);", "1 row affected")

	term.send("sel\t")
	term.expect("select")
	term.send(" customer_n\t")
	term.expect("select customer_name")
	term.send(", warehouse_orders.am\t")
	term.expect("warehouse_orders.amount")
	term.send(" FROM wareh\t")
	term.expect("FROM warehouse_orders")
	term.enter(";", "| ann           |    2.5 |", prompt)

	// Two candidates: the first Tab completes what they share, the
	// second lists them.
	term.enter("CREATE TABLE warehouse_stock (item TEXT);", prompt)
	term.send("SELECT * FROM wareh\t")
	term.expect("SELECT * FROM warehouse_")
	term.send("\t")
	term.expect("warehouse_orders")
	term.expect("warehouse_stock")
	term.send(keyCtlC)
	term.expect(prompt)

	term.send(".sch\t")
	term.expect(".schema")
	term.send(" warehouse_s\t")
	term.expect(".schema warehouse_stock")
	term.enter("", "CREATE TABLE warehouse_stock (item TEXT);")
	term.enter(".exit")
	term.wait()
}

// TestInteractivePager checks that a result longer than the terminal goes
// through $PAGER, a short one does not, and .pager off prints it directly.
func TestInteractivePager(t *testing.T) {
	t.Setenv("PAGER", "sed 's/^/paged: /'")
	_, term := freshSession(t, t.TempDir())
	const long = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60) SELECT i AS num FROM n;"
	term.enter(long, "paged: | num |", "paged: |  60 |", "paged: (60 rows)", prompt)
	term.enter("SELECT 'short' AS s;", "| short |", prompt)
	term.enter(".pager off", prompt)
	term.enter(long, "|  60 |", "(60 rows)", prompt)
	term.enter(".exit")
	term.wait()
	if strings.Contains(term.screen(), "paged: | short |") {
		t.Errorf("a result that fits the terminal went through the pager:\n%s", term.screen())
	}
	if strings.Count(term.screen(), "paged: |  60 |") != 1 {
		t.Errorf("want the long result paged once, before .pager off:\n%s", term.screen())
	}
}
