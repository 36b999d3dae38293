package sqlapi

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

var update = flag.Bool("update", false, "rewrite the expected answers of testdata/golden/*.txt")

// fsmStore is a single-node Store over a real fsm.FSM: Execute encodes the
// request as a Raft log entry and applies it with ApplyBatch, as the
// cluster package does after commit.
type fsmStore struct {
	f     *fsm.FSM
	mu    sync.Mutex
	index uint64
}

func (s *fsmStore) Execute(ctx context.Context, req *api.Request) (*api.Response, error) {
	return s.apply(&fsm.Command{Type: fsm.CmdExecute, Timestamp: time.Now().UnixNano(), Seed: 1, Request: req})
}

// apply applies cmd as the next log entry.
func (s *fsmStore) apply(cmd *fsm.Command) (*api.Response, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := fsm.EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	s.index++
	out := s.f.ApplyBatch([]*raft.Log{{Index: s.index, Term: 1, Type: raft.LogCommand, Data: data, AppendedAt: time.Now()}})[0]
	switch v := out.(type) {
	case *api.Response:
		return v, nil
	case error:
		return nil, v
	}
	return nil, fmt.Errorf("unexpected apply result %T", out)
}

func (s *fsmStore) Query(ctx context.Context, req *api.Request) ([]api.Result, error) {
	return s.f.Query(ctx, req)
}

func (s *fsmStore) AllReadOnly(ctx context.Context, req *api.Request) (bool, error) {
	return s.f.AllReadOnly(ctx, req)
}
func (s *fsmStore) IsLeader() bool                                { return true }
func (s *fsmStore) IsVoter() bool                                 { return true }
func (s *fsmStore) ReadIndex(context.Context) (uint64, error)     { return s.f.AppliedIndex(), nil }
func (s *fsmStore) ID() string                                    { return "1" }
func (s *fsmStore) LeaderID() string                              { return "1" }
func (s *fsmStore) LeaderAPIAddr() string                         { return "" }
func (s *fsmStore) Members() ([]api.Member, error)                { return nil, nil }
func (s *fsmStore) Remove(context.Context, string) error          { return nil }
func (s *fsmStore) StepDown(context.Context, string) error        { return nil }
func (s *fsmStore) Promote(context.Context, string) (bool, error) { return false, nil }
func (s *fsmStore) Progress() api.Progress {
	return api.Progress{AppliedIndex: s.f.AppliedIndex(), CommittedIndex: s.f.AppliedIndex()}
}
func (s *fsmStore) WaitApplied(ctx context.Context, i uint64) error { return s.f.WaitApplied(ctx, i) }
func (s *fsmStore) Ready() error                                    { return nil }
func (s *fsmStore) Stats() map[string]any                           { return map[string]any{"sqlite3": s.f.Stats()} }
func (s *fsmStore) LastContact() time.Time                          { return time.Now() }
func (s *fsmStore) ApplyProgress() (bool, time.Time)                { return true, s.f.AppliedAt() }
func (s *fsmStore) Reap(context.Context, time.Duration) ([]api.ReapedMember, error) {
	return nil, nil
}
func (s *fsmStore) Snapshot(context.Context, uint64) (uint64, error) { return s.f.AppliedIndex(), nil }
func (s *fsmStore) Boot(context.Context, io.Reader) error            { return api.ErrNotSingleNode }

func (s *fsmStore) Backup(ctx context.Context, w io.Writer, opt api.BackupOptions) error {
	return s.f.Backup(ctx, w, opt)
}
func (s *fsmStore) Checksum(ctx context.Context) (uint64, string, error) { return s.f.Checksum(ctx) }
func (s *fsmStore) ChecksumAt(ctx context.Context, i uint64) (string, error) {
	return s.f.ChecksumAt(ctx, i)
}

// Load and TriggerChecksum need Raft (a restore, a marker entry), which the
// golden files do not exercise.
func (s *fsmStore) Load(context.Context, io.Reader) error           { return errNotScripted }
func (s *fsmStore) StatementsSize(stmts []api.Statement) int        { return fsm.StatementsSize(stmts) }
func (s *fsmStore) TriggerChecksum(context.Context) (uint64, error) { return 0, errNotScripted }

func (s *fsmStore) WatchChanges(ctx context.Context, req api.WatchRequest, wait time.Duration) (api.WatchPage, error) {
	return s.f.WatchChanges(ctx, req, wait)
}

func (s *fsmStore) CompactWatch(_ context.Context, index uint64) (uint64, error) {
	r, err := s.apply(&fsm.Command{Type: fsm.CmdCompactWatch, Timestamp: time.Now().UnixNano(), CompactIndex: index})
	if err != nil {
		return 0, err
	}
	return r.Index, nil
}

// goldenStep is one request of a golden file and the answer it must get.
type goldenStep struct {
	line        int
	method      string
	path        string
	contentType string
	body        string
	status      int
	want        string
}

// parseGolden reads a golden file:
//
//	# comment (anywhere but in a request body)
//	>>> METHOD PATH [CONTENT-TYPE]
//	request body (may be empty)
//	<<< STATUS
//	expected body
//
// Steps run in order on one fresh database. In answers, every "time"
// value reads "<time>".
func parseGolden(path string) ([]goldenStep, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var steps []goldenStep
	var cur *goldenStep
	var buf []string
	inWant := false
	flush := func() {
		if cur == nil {
			return
		}
		text := strings.TrimSpace(strings.Join(buf, "\n"))
		if inWant {
			cur.want = text
			steps = append(steps, *cur)
			cur = nil
		} else {
			cur.body = text
		}
		buf = nil
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, ">>> "):
			flush()
			fields := strings.Fields(strings.TrimPrefix(line, ">>> "))
			if len(fields) < 2 {
				return nil, fmt.Errorf("%s:%d: want >>> METHOD PATH [CONTENT-TYPE]", path, n)
			}
			cur = &goldenStep{line: n, method: fields[0], path: fields[1], contentType: "application/json"}
			if len(fields) > 2 {
				cur.contentType = fields[2]
			}
			inWant = false
		case strings.HasPrefix(line, "<<< "):
			if cur == nil || inWant {
				return nil, fmt.Errorf("%s:%d: <<< without >>>", path, n)
			}
			cur.body = strings.TrimSpace(strings.Join(buf, "\n"))
			buf = nil
			if _, err := fmt.Sscanf(strings.TrimPrefix(line, "<<< "), "%d", &cur.status); err != nil {
				return nil, fmt.Errorf("%s:%d: bad status: %v", path, n, err)
			}
			inWant = true
		case strings.HasPrefix(line, "#") && (cur == nil || inWant):
			// A comment (answers are JSON and never start with '#').
		default:
			if cur != nil {
				buf = append(buf, line)
			}
		}
	}
	if cur != nil && !inWant {
		return nil, fmt.Errorf("%s: last step has no <<< answer", path)
	}
	flush()
	return steps, sc.Err()
}

var timeField = regexp.MustCompile(`"time":\s?[-0-9.e+E]+`)

func normalizeGolden(s string) string {
	return timeField.ReplaceAllStringFunc(strings.TrimSpace(s), func(m string) string {
		if strings.Contains(m, ": ") {
			return `"time": "<time>"`
		}
		return `"time":"<time>"`
	})
}

// TestGolden runs the request/answer pairs of testdata/golden against the
// HTTP API over a real state machine, checking the exact JSON of rqlite's
// response shapes.
func TestGolden(t *testing.T) {
	forEachScript(t, filepath.Join("testdata", "golden"), func(t *testing.T, file string, steps []goldenStep, ts *httptest.Server) {
		var got []string
		for _, st := range steps {
			code, hdr, body := do(t, st.method, ts.URL+st.path, st.contentType, st.body)
			norm := normalizeGolden(body)
			got = append(got, fmt.Sprintf("<<< %d\n%s", code, norm))
			if *update {
				continue
			}
			if code != st.status || norm != st.want {
				t.Errorf("%s:%d %s %s %s\n got %d %s\nwant %d %s", file, st.line, st.method, st.path, st.body, code, norm, st.status, st.want)
			}
			if code == http.StatusOK && hdr.Get("Content-Type") != contentTypeJSON {
				t.Errorf("%s:%d: Content-Type %q", file, st.line, hdr.Get("Content-Type"))
			}
		}
		if *update {
			if err := rewriteGolden(file, got); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// forEachScript runs check, as a subtest, for each request/answer file
// (parseGolden's format) in dir, each against a fresh API over a real
// state machine.
func forEachScript(t *testing.T, dir string, check func(t *testing.T, file string, steps []goldenStep, ts *httptest.Server)) {
	files, err := filepath.Glob(filepath.Join(dir, "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no script files in %s: %v", dir, err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			steps, err := parseGolden(file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := fsm.Open(fsm.Config{Dir: t.TempDir(), Logger: quietLogger()})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			_, ts := newTestServer(t, &fsmStore{f: f}, nil)
			check(t, file, steps, ts)
		})
	}
}

// rewriteGolden replaces the answers of a golden file by got (with -update).
func rewriteGolden(path string, got []string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out []string
	i, skipping := 0, false
	for _, line := range strings.Split(strings.TrimRight(string(raw), "\n"), "\n") {
		switch {
		case strings.HasPrefix(line, "<<< "):
			out = append(out, got[i])
			i++
			skipping = true
		case strings.HasPrefix(line, ">>> "):
			if skipping {
				out = append(out, "")
			}
			skipping = false
			out = append(out, line)
		case !skipping:
			out = append(out, line)
		case strings.HasPrefix(line, "#"):
			out = append(out, "", line)
			skipping = false
		}
	}
	return os.WriteFile(path, []byte(strings.Join(out, "\n")+"\n"), 0o644)
}
