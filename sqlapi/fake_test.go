package sqlapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

// fakeStore is a Store for unit tests of routing, parsing and encoding.
// Its zero value is a follower with no known leader.
type fakeStore struct {
	mu        sync.Mutex
	leader    bool
	leaderID  string
	leaderAPI string
	// leaderAPICalls counts LeaderAPIAddr calls.
	leaderAPICalls int
	members        []api.Member
	ready          error
	stats          map[string]any
	// nonVoter makes IsVoter false.
	nonVoter bool
	// readIndexFn scripts ReadIndex; without it the leader answers its
	// commit index (7, as Stats says) and a follower api.ErrNotLeader.
	readIndexFn func(ctx context.Context) (uint64, error)
	// triggered counts TriggerChecksum calls.
	triggered int
	// lastContact, caughtUp and appliedAt are what LastContact and
	// ApplyProgress report.
	lastContact time.Time
	caughtUp    bool
	appliedAt   time.Time

	execFn  func(ctx context.Context, req *api.Request) (*api.Response, error)
	queryFn func(ctx context.Context, req *api.Request) ([]api.Result, error)
	roFn    func(req *api.Request) (bool, error)
	waitFn  func(ctx context.Context, idx uint64) error

	executed    []*api.Request
	queried     []*api.Request
	waited      []uint64
	readIndexes int
	removed     []string
	stepped     []string
	// progress is what Progress reports; promoteErr, when set, is what
	// Promote answers for a learner.
	progress    api.Progress
	promoteErr  error
	trailings   []uint64
	booted      []byte
	unreachable []api.ReapedMember
	reapMins    []time.Duration
}

func (f *fakeStore) Reap(ctx context.Context, minUnreachable time.Duration) ([]api.ReapedMember, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return nil, api.ErrNotLeader
	}
	f.reapMins = append(f.reapMins, minUnreachable)
	var reaped, kept []api.ReapedMember
	for _, m := range f.unreachable {
		if m.Unreachable >= minUnreachable {
			reaped = append(reaped, m)
		} else {
			kept = append(kept, m)
		}
	}
	f.unreachable = kept
	return append([]api.ReapedMember{}, reaped...), nil
}

func (f *fakeStore) Snapshot(ctx context.Context, trailing uint64) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.trailings = append(f.trailings, trailing)
	return 7, nil
}

func (f *fakeStore) Boot(ctx context.Context, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.members) > 1 {
		return fmt.Errorf("boot: %w", api.ErrNotSingleNode)
	}
	f.booted = b
	return nil
}

func (f *fakeStore) Execute(ctx context.Context, req *api.Request) (*api.Response, error) {
	f.mu.Lock()
	f.executed = append(f.executed, req)
	fn, leader := f.execFn, f.leader
	f.mu.Unlock()
	if !leader {
		return nil, api.ErrNotLeader
	}
	if fn != nil {
		return fn(ctx, req)
	}
	res := make([]api.Result, len(req.Statements))
	for i := range res {
		if req.ReadOnly {
			res[i] = api.Result{Columns: []string{"n"}, Types: []string{"integer"}, Rows: [][]api.Value{{int64(1)}}}
		} else {
			res[i] = api.Result{LastInsertID: int64(i + 1), RowsAffected: 1}
		}
	}
	return &api.Response{Results: res, Index: 42}, nil
}

func (f *fakeStore) Query(ctx context.Context, req *api.Request) ([]api.Result, error) {
	f.mu.Lock()
	f.queried = append(f.queried, req)
	fn := f.queryFn
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, req)
	}
	res := make([]api.Result, len(req.Statements))
	for i := range res {
		res[i] = api.Result{Columns: []string{"n"}, Types: []string{"integer"}, Rows: [][]api.Value{{int64(1)}}}
	}
	return res, nil
}

func (f *fakeStore) AllReadOnly(ctx context.Context, req *api.Request) (bool, error) {
	f.mu.Lock()
	fn := f.roFn
	f.mu.Unlock()
	if fn != nil {
		return fn(req)
	}
	for _, s := range req.Statements {
		if !strings.HasPrefix(strings.ToUpper(strings.TrimSpace(s.SQL)), "SELECT") {
			return false, nil
		}
	}
	return true, nil
}

func (f *fakeStore) IsLeader() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.leader }

func (f *fakeStore) IsVoter() bool { f.mu.Lock(); defer f.mu.Unlock(); return !f.nonVoter }

func (f *fakeStore) ReadIndex(ctx context.Context) (uint64, error) {
	f.mu.Lock()
	f.readIndexes++
	fn, leader := f.readIndexFn, f.leader
	f.mu.Unlock()
	switch {
	case fn != nil:
		return fn(ctx)
	case !leader:
		return 0, api.ErrNotLeader
	}
	return 7, nil
}

func (f *fakeStore) ID() string { return "n1" }

// errNotScripted is what the fake's Backup and Load answer; backupStore
// scripts them.
var errNotScripted = errors.New("fake store: backup and load are not scripted")

func (f *fakeStore) Backup(context.Context, io.Writer, api.BackupOptions) error {
	return errNotScripted
}
func (f *fakeStore) Load(context.Context, io.Reader) error { return errNotScripted }

// The fake builds dumps and sizes entries as the real store does.
func (f *fakeStore) StatementsSize(stmts []api.Statement) int { return fsm.StatementsSize(stmts) }

// The fake has checksum 7/cafe now and beef at marker 9, which
// TriggerChecksum proposes.
func (f *fakeStore) Checksum(context.Context) (uint64, string, error) {
	return 7, "cafe", nil
}

func (f *fakeStore) ChecksumAt(_ context.Context, index uint64) (string, error) {
	if index != 9 {
		return "", fmt.Errorf("index %d: %w", index, api.ErrNoChecksum)
	}
	return "beef", nil
}

func (f *fakeStore) TriggerChecksum(context.Context) (uint64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.triggered++
	return 9, nil
}

func (f *fakeStore) LeaderID() string { f.mu.Lock(); defer f.mu.Unlock(); return f.leaderID }
func (f *fakeStore) LeaderAPIAddr() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaderAPICalls++
	return f.leaderAPI
}

func (f *fakeStore) leaderLookups() int { f.mu.Lock(); defer f.mu.Unlock(); return f.leaderAPICalls }

func (f *fakeStore) Members() ([]api.Member, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]api.Member(nil), f.members...), nil
}

func (f *fakeStore) Remove(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return api.ErrNotLeader
	}
	if id == "unknown" {
		return fmt.Errorf("cluster: remove %s: %w", id, api.ErrUnknownNode)
	}
	f.removed = append(f.removed, id)
	return nil
}

func (f *fakeStore) Promote(ctx context.Context, id string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return false, api.ErrNotLeader
	}
	i := slices.IndexFunc(f.members, func(m api.Member) bool { return m.ID == id })
	switch {
	case i < 0:
		return false, fmt.Errorf("%w: %s", api.ErrUnknownNode, id)
	case f.members[i].Voter:
		return false, nil
	case f.promoteErr != nil:
		return false, f.promoteErr
	}
	f.members[i].Voter = true
	return true, nil
}

func (f *fakeStore) Progress() api.Progress {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.progress
}

func (f *fakeStore) StepDown(ctx context.Context, target string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.leader {
		return api.ErrNotLeader
	}
	f.stepped = append(f.stepped, target)
	return nil
}

func (f *fakeStore) WaitApplied(ctx context.Context, idx uint64) error {
	f.mu.Lock()
	f.waited = append(f.waited, idx)
	fn := f.waitFn
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, idx)
	}
	return nil
}

func (f *fakeStore) Ready() error { f.mu.Lock(); defer f.mu.Unlock(); return f.ready }

func (f *fakeStore) Stats() map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stats != nil {
		return f.stats
	}
	state := "Follower"
	if f.leader {
		state = "Leader"
	}
	return map[string]any{
		"node_id":   "1",
		"fsm_index": uint64(7),
		"leader":    map[string]any{"node_id": f.leaderID, "addr": "127.0.0.1:4002"},
		"raft": map[string]any{
			"state": state, "term": uint64(2), "commit_index": uint64(7), "applied_index": uint64(7),
			"last_log_index": uint64(7), "last_snapshot_index": uint64(0), "voter": true,
		},
		"sqlite3": map[string]any{"fk_constraints": "disabled"},
	}
}

func (f *fakeStore) LastContact() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.lastContact }

func (f *fakeStore) ApplyProgress() (bool, time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.caughtUp, f.appliedAt
}

func (f *fakeStore) set(fn func(f *fakeStore)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeStore) executedCount() int { f.mu.Lock(); defer f.mu.Unlock(); return len(f.executed) }
func (f *fakeStore) queriedCount() int  { f.mu.Lock(); defer f.mu.Unlock(); return len(f.queried) }

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestServer starts an API over store on an httptest server.
func newTestServer(t *testing.T, store Store, mod func(*Config)) (*Server, *httptest.Server) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	cfg := Config{
		Addr:           ts.Listener.Addr().String(),
		AdvAddr:        "http://" + ts.Listener.Addr().String(),
		Version:        "v-test",
		Logger:         quietLogger(),
		DefaultTimeout: 5 * time.Second,
		QueueTimeout:   20 * time.Millisecond,
		LeaderWait:     100 * time.Millisecond,
	}
	if mod != nil {
		mod(&cfg)
	}
	api := New(cfg, store)
	ts.Config.Handler = api
	ts.Start()
	t.Cleanup(func() {
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = api.Shutdown(ctx)
	})
	return api, ts
}

// do sends one request and returns status, headers and body.
func do(t *testing.T, method, url, contentType, body string, hdr ...string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

// Watching is tested against real nodes (e2e/watch_test.go).
func (f *fakeStore) WatchChanges(context.Context, api.WatchRequest, time.Duration) (api.WatchPage, error) {
	return api.WatchPage{}, errNotScripted
}
func (f *fakeStore) CompactWatch(context.Context, uint64) (uint64, error) { return 0, errNotScripted }
