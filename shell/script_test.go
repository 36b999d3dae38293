package shell

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The scripted sessions of testdata/*.txt run against real nodes. A file is
// a sequence of blocks; a block is one or more command lines followed by
// the output they must produce:
//
//	# a comment
//	> .mode csv                  a line typed into the shell
//	> SELECT 1 AS a;
//	a
//	1
//	! kill node1                 a directive to the test runner
//
// stdout and stderr are interleaved as the user would see them; after
// .exit the runner adds "[the shell exits with status N]". In
// expected output a line "~ REGEXP" matches any line the regular
// expression matches whole. Addresses are written as placeholders: {node1}
// for http://host:port of node 1, {host1} for its host:port, {raft1} for its
// Raft address; {tmp} is a directory of the file's own, {testdata} the
// testdata directory. Directives:
//
//	! cluster N          run on a new N-node cluster (default: the shared node)
//	! hosts node1,node2  the shell's -H list (default: every node)
//	! leader node1       move the leadership to node 1 before going on
//	! kill node1         kill node 1 (SIGKILL)
//	! width N            tables fit N columns (default 80; 0 for no limit)
//	! requires backup    skip the file unless the server implements /db/backup
//	! requires no-backup skip the file if it does
//	! cat FILE           print {tmp}/FILE
//
// go test -run TestScripts -update rewrites the expected output of failing
// blocks with what the shell printed.
var update = flag.Bool("update", false, "rewrite the expected output of testdata/*.txt")

type scriptBlock struct {
	cmds []string // "> ..." and "! ..." lines
	want []string
	line int // of the first command, for messages
}

// scriptItem is a block or a comment line, kept in order for -update.
type scriptItem struct {
	comment string
	block   *scriptBlock
}

func parseScript(text string) []scriptItem {
	var items []scriptItem
	var cur *scriptBlock
	flush := func() {
		if cur != nil {
			for len(cur.want) > 0 && strings.TrimSpace(cur.want[len(cur.want)-1]) == "" {
				cur.want = cur.want[:len(cur.want)-1]
			}
			items = append(items, scriptItem{block: cur})
			cur = nil
		}
	}
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		switch {
		case line == ">" || strings.HasPrefix(line, "> ") || strings.HasPrefix(line, "! "):
			if cur != nil && len(cur.want) > 0 {
				flush()
			}
			if cur == nil {
				cur = &scriptBlock{line: i + 1}
			}
			cur.cmds = append(cur.cmds, line)
		case strings.HasPrefix(line, "#"):
			flush()
			items = append(items, scriptItem{comment: line})
		case cur == nil:
			if strings.TrimSpace(line) != "" {
				items = append(items, scriptItem{comment: line})
			} else {
				items = append(items, scriptItem{comment: ""})
			}
		default:
			cur.want = append(cur.want, line)
		}
	}
	flush()
	return items
}

func formatScript(items []scriptItem) string {
	var b strings.Builder
	for i, it := range items {
		if it.block == nil {
			b.WriteString(it.comment + "\n")
			continue
		}
		for _, c := range it.block.cmds {
			b.WriteString(c + "\n")
		}
		for _, w := range it.block.want {
			b.WriteString(w + "\n")
		}
		// A blank line after a block's output, unless a blank line or
		// the end follows anyway.
		if i+1 < len(items) && !(items[i+1].block == nil && items[i+1].comment == "") {
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/*.txt")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			runScriptFile(t, f)
		})
	}
}

// syncBuffer is stdout and stderr of a shell under test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.b.String()
	s.b.Reset()
	return out
}

// scriptRun is the state of one testdata file being run.
type scriptRun struct {
	t        *testing.T
	cluster  *testCluster
	hosts    []string
	sh       *session
	in       *input
	out      *syncBuffer
	width    int
	tmp      string
	testdata string
}

func runScriptFile(t *testing.T, path string) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	items := parseScript(string(data))
	abs, _ := filepath.Abs("testdata")
	r := &scriptRun{t: t, width: 80, tmp: t.TempDir(), testdata: abs, out: &syncBuffer{}}
	defer func() {
		if r.sh != nil {
			r.sh.close()
		}
	}()
	failed := false
	var rewritten []scriptItem
	for _, it := range items {
		b := it.block
		if b == nil {
			rewritten = append(rewritten, it)
			continue
		}
		outs := r.runBlock(b)
		var got []string
		for _, o := range outs {
			got = append(got, o...)
		}
		if matches(b.want, got) {
			rewritten = append(rewritten, it)
			continue
		}
		failed = true
		if *update {
			// Put each command's output right after it.
			nb := &scriptBlock{}
			for i, c := range b.cmds {
				nb.cmds = append(nb.cmds, c)
				if len(outs[i]) > 0 || i == len(b.cmds)-1 {
					nb.want = outs[i]
					rewritten = append(rewritten, scriptItem{block: nb})
					nb = &scriptBlock{}
				}
			}
			continue
		}
		t.Errorf("%s:%d: output differs\ncommands:\n%s\n--- want:\n%s\n--- got:\n%s",
			path, b.line, strings.Join(b.cmds, "\n"), strings.Join(b.want, "\n"), strings.Join(got, "\n"))
	}
	if *update && failed {
		if err := os.WriteFile(path, []byte(formatScript(rewritten)), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", path)
	}
}

// matches compares output lines with expected ones ("~ " lines are
// regular expressions).
func matches(want, got []string) bool {
	if len(want) != len(got) {
		return false
	}
	for i := range want {
		if strings.HasPrefix(want[i], "~ ") {
			re, err := regexp.Compile("^(?:" + want[i][2:] + ")$")
			if err != nil || !re.MatchString(got[i]) {
				return false
			}
			continue
		}
		if want[i] != got[i] {
			return false
		}
	}
	return true
}

// addrPattern finds the loopback addresses of test nodes.
var addrPattern = regexp.MustCompile(`(?:http://)?127\.0\.0\.1:[0-9]+`)

// expand replaces placeholders in a command line.
func (r *scriptRun) expand(s string) string {
	s = strings.ReplaceAll(s, "{tmp}", r.tmp)
	s = strings.ReplaceAll(s, "{testdata}", r.testdata)
	if r.cluster != nil {
		for _, n := range r.cluster.nodes {
			s = strings.ReplaceAll(s, "{node"+n.id+"}", n.url())
			s = strings.ReplaceAll(s, "{host"+n.id+"}", n.httpAddr)
			s = strings.ReplaceAll(s, "{raft"+n.id+"}", n.raftAddr)
		}
	}
	return s
}

// normalize turns addresses and paths in output back into placeholders.
func (r *scriptRun) normalize(s string) string {
	if r.cluster != nil {
		s = addrPattern.ReplaceAllStringFunc(s, func(m string) string {
			for _, n := range r.cluster.nodes {
				switch m {
				case n.url():
					return "{node" + n.id + "}"
				case n.httpAddr:
					return "{host" + n.id + "}"
				case n.raftAddr:
					return "{raft" + n.id + "}"
				}
			}
			return m
		})
	}
	s = strings.ReplaceAll(s, r.tmp, "{tmp}")
	return strings.ReplaceAll(s, r.testdata, "{testdata}")
}

func (r *scriptRun) ensureCluster() {
	if r.cluster == nil {
		r.cluster = sharedNode(r.t)
		resetDatabase(r.t, r.cluster)
	}
}

func (r *scriptRun) shell() *session {
	if r.sh != nil {
		return r.sh
	}
	r.ensureCluster()
	hosts := r.hosts
	if hosts == nil {
		hosts = r.cluster.urls()
	}
	sh, err := newShell(Config{Hosts: hosts, Version: "test", Timeout: 5 * time.Second}, r.out, r.out)
	if err != nil {
		r.t.Fatal(err)
	}
	sh.fixedWidth = r.width
	r.sh, r.in = sh, &input{}
	return sh
}

// runBlock runs the commands of b and returns the output of each.
func (r *scriptRun) runBlock(b *scriptBlock) [][]string {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	outs := make([][]string, len(b.cmds))
	for i, c := range b.cmds {
		if strings.HasPrefix(c, "! ") {
			r.directive(strings.Fields(r.expand(c[2:])))
		} else {
			line := strings.TrimPrefix(strings.TrimPrefix(c, ">"), " ")
			sh := r.shell()
			if sh.quit {
				r.t.Fatalf("line %d: input after .exit", b.line)
			}
			if err := sh.runLine(ctx, r.in, r.expand(line)); err != nil {
				sh.printError(err)
			}
			if sh.quit {
				fmt.Fprintf(r.out, "[the shell exits with status %d]\n", sh.exitCode)
			}
		}
		if out := strings.TrimRight(r.normalize(r.out.take()), "\n"); out != "" {
			outs[i] = strings.Split(out, "\n")
		}
	}
	return outs
}

func (r *scriptRun) directive(f []string) {
	t := r.t
	if len(f) == 0 {
		t.Fatal("empty directive")
	}
	arg := func() string {
		if len(f) != 2 {
			t.Fatalf("directive %q wants one argument", strings.Join(f, " "))
		}
		return f[1]
	}
	switch f[0] {
	case "cluster":
		n, err := strconv.Atoi(arg())
		if err != nil || r.cluster != nil {
			t.Fatalf("! cluster N must come first, with a number")
		}
		r.cluster = newCluster(t, n)
	case "hosts":
		r.ensureCluster()
		r.hosts = nil
		for _, name := range strings.Split(arg(), ",") {
			n := r.cluster.node(name)
			if n == nil {
				t.Fatalf("no node %q", name)
			}
			r.hosts = append(r.hosts, n.url())
		}
	case "leader":
		r.ensureCluster()
		makeLeader(t, r.cluster, strings.TrimPrefix(arg(), "node"))
	case "kill":
		r.ensureCluster()
		n := r.cluster.node(arg())
		if n == nil {
			t.Fatalf("no node %q", f[1])
		}
		n.kill()
	case "width":
		w, err := strconv.Atoi(arg())
		if err != nil {
			t.Fatal(err)
		}
		r.width = w
		if r.sh != nil {
			r.sh.fixedWidth = w
		}
	case "requires":
		r.ensureCluster()
		supported := backupSupported(t, r.cluster)
		switch arg() {
		case "backup":
			if !supported {
				t.Skip("the server does not implement /db/backup yet")
			}
		case "no-backup":
			if supported {
				t.Skip("the server implements /db/backup")
			}
		default:
			t.Fatalf("unknown requirement %q", f[1])
		}
	case "cat":
		data, err := os.ReadFile(filepath.Join(r.tmp, arg()))
		if err != nil {
			fmt.Fprintf(r.out, "cat: %v\n", err)
			return
		}
		r.out.Write(data)
	default:
		t.Fatalf("unknown directive %q", f[0])
	}
}

// backupSupported reports whether GET /db/backup is implemented.
func backupSupported(t *testing.T, c *testCluster) bool {
	resp, err := http.Get(c.nodes[0].url() + "/db/backup?fmt=sql")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotImplemented
}
