package sqlapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

type seqBody struct {
	Results []any  `json:"results"`
	Seq     int64  `json:"sequence_number"`
	Error   string `json:"error"`
	Code    string `json:"code"`
}

func decodeSeq(t *testing.T, body string) seqBody {
	t.Helper()
	var b seqBody
	if err := json.Unmarshal([]byte(body), &b); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return b
}

func TestQueueBatches(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, func(c *Config) { c.QueueTimeout = 100 * time.Millisecond })
	var wg sync.WaitGroup
	seqs := make([]int64, 10)
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, _, body := do(t, "POST", ts.URL+"/db/execute?queue", "", `["INSERT INTO t VALUES(1)", "INSERT INTO t VALUES(2)"]`)
			b := decodeSeq(t, body)
			if code != 200 || b.Seq == 0 || b.Results == nil || len(b.Results) != 0 {
				t.Errorf("queued: %d %s", code, body)
			}
			seqs[i] = b.Seq
		}()
	}
	wg.Wait()
	// A waiting request returns once its batch (and so every earlier one,
	// the queue being FIFO) is applied.
	code, _, body := do(t, "POST", ts.URL+"/db/execute?queue&wait", "", `["INSERT INTO t VALUES(3)"]`)
	b := decodeSeq(t, body)
	if code != 200 || b.Seq == 0 {
		t.Fatalf("queued wait: %d %s", code, body)
	}
	for _, s := range seqs {
		if s >= b.Seq {
			t.Fatalf("sequence numbers not increasing: %v then %d", seqs, b.Seq)
		}
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	n, stmts := len(store.executed), 0
	for _, req := range store.executed {
		stmts += len(req.Statements)
		if req.Transaction || !strings.HasPrefix(req.ClientID, "queue-") || req.Seq == 0 {
			t.Fatalf("batch request %+v", req)
		}
	}
	if stmts != 21 || n >= 11 {
		t.Fatalf("%d statements in %d batches; want 21 statements in fewer than 11 batches", stmts, n)
	}
	for i := 1; i < n; i++ {
		if store.executed[i].Seq != store.executed[i-1].Seq+1 {
			t.Fatalf("session seq not consecutive: %d then %d", store.executed[i-1].Seq, store.executed[i].Seq)
		}
	}
}

func TestQueueRetriesTransientFailures(t *testing.T) {
	store := leaderStore()
	var mu sync.Mutex
	fails := 2
	store.execFn = func(_ context.Context, req *api.Request) (*api.Response, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, api.ErrLeadershipLost
		}
		return &api.Response{Results: make([]api.Result, len(req.Statements))}, nil
	}
	_, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "POST", ts.URL+"/db/execute?queue&wait", "", `["X"]`)
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.executed) != 3 || store.executed[0].Seq != store.executed[2].Seq || store.executed[0].ClientID != store.executed[2].ClientID {
		t.Fatalf("retries must reuse the session seq: %+v", store.executed)
	}
}

func TestQueueNewSessionWhenExpired(t *testing.T) {
	store := leaderStore()
	first := true
	store.execFn = func(_ context.Context, req *api.Request) (*api.Response, error) {
		if first {
			first = false
			return &api.Response{Err: api.ErrSessionExpired}, nil
		}
		return &api.Response{Results: make([]api.Result, len(req.Statements))}, nil
	}
	_, ts := newTestServer(t, store, nil)
	if code, _, body := do(t, "POST", ts.URL+"/db/execute?queue&wait", "", `["X"]`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	if len(store.executed) != 2 || store.executed[0].ClientID == store.executed[1].ClientID || store.executed[1].Seq != 1 {
		t.Fatalf("%+v", store.executed)
	}
}

func TestQueuePermanentFailureReported(t *testing.T) {
	store := leaderStore()
	store.execFn = func(context.Context, *api.Request) (*api.Response, error) {
		return nil, errors.New("command too large")
	}
	_, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "POST", ts.URL+"/db/execute?queue&wait", "", `["X"]`)
	b := decodeSeq(t, body)
	if code != 500 || b.Code != "queue_failed" || b.Seq == 0 || !strings.Contains(b.Error, "command too large") {
		t.Fatalf("%d %s", code, body)
	}
}

func TestQueueWaitTimeout(t *testing.T) {
	store := leaderStore()
	release := make(chan struct{})
	store.execFn = func(ctx context.Context, req *api.Request) (*api.Response, error) {
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &api.Response{Results: make([]api.Result, len(req.Statements))}, nil
	}
	_, ts := newTestServer(t, store, nil)
	code, _, body := do(t, "POST", ts.URL+"/db/execute?queue&wait&timeout=150ms", "", `["X"]`)
	b := decodeSeq(t, body)
	if code != 504 || b.Code != "timeout" || b.Seq == 0 {
		t.Fatalf("%d %s", code, body)
	}
	close(release)
}

func TestQueueForwardsBatchAfterLeadershipMoves(t *testing.T) {
	p := newPair(t, nil)
	// The follower was leader when it accepted the write, then lost
	// leadership before applying it: the batch goes to the new leader
	// under the queue's session.
	p.follower.set(func(f *fakeStore) {
		f.leader = true
		f.execFn = func(context.Context, *api.Request) (*api.Response, error) {
			f.mu.Lock()
			f.leader = false
			f.mu.Unlock()
			return nil, api.ErrNotLeader
		}
	})
	code, _, body := do(t, "POST", p.followerTS.URL+"/db/execute?queue&wait", "", `[["INSERT INTO t VALUES(?, ?)", 1.0, [1,2]]]`,
		"Authorization", "Basic dTpw")
	if code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	if p.leader.executedCount() != 1 {
		t.Fatalf("leader executed %d", p.leader.executedCount())
	}
	got := p.leader.executed[0]
	if !strings.HasPrefix(got.ClientID, "queue-") || got.Seq != 1 || got.Statements[0].Params[0].Value != 1.0 ||
		string(got.Statements[0].Params[1].Value.([]byte)) != "\x01\x02" {
		t.Fatalf("leader got %+v", got)
	}
	if in := p.leaderRec.last(); in.Header.Get("Authorization") != "Basic dTpw" || in.Header.Get(forwardedHeader) == "" {
		t.Fatalf("forwarded batch headers %v", in.Header)
	}
}

func TestQueueShutdownFlushes(t *testing.T) {
	store := leaderStore()
	api, ts := newTestServer(t, store, func(c *Config) { c.QueueTimeout = time.Hour; c.QueueBatchSize = 1000 })
	if code, _, body := do(t, "POST", ts.URL+"/db/execute?queue", "", `["X"]`); code != 200 {
		t.Fatalf("%d %s", code, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := api.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if store.executedCount() != 1 {
		t.Fatalf("queued write not applied at shutdown: %d", store.executedCount())
	}
	if code, _, _ := do(t, "POST", ts.URL+"/db/execute?queue", "", `["X"]`); code != 503 {
		t.Fatalf("queue after shutdown: %d", code)
	}
}

// TestQueueKeepsBatchesWithinEntryLimit: a batch is one log entry, so the
// queue closes a batch before its statements would pass the store's entry
// limit, and refuses with 413 a queued request that alone would: no batch
// fails as too large, so no accepted write is lost.
func TestQueueKeepsBatchesWithinEntryLimit(t *testing.T) {
	store := leaderStore()
	const limit = 8 << 10
	_, ts := newTestServer(t, store, func(c *Config) {
		c.QueueTimeout = 200 * time.Millisecond
		c.MaxEntryBytes = limit
	})
	stmt := `["INSERT INTO t VALUES('` + strings.Repeat("x", 3000) + `')"]`
	var wg sync.WaitGroup
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _, body := do(t, "POST", ts.URL+"/db/execute?queue", "", stmt); code != 200 {
				t.Errorf("queued: %d %s", code, body)
			}
		}()
	}
	wg.Wait()
	if code, _, body := do(t, "POST", ts.URL+"/db/execute?queue&wait", "", stmt); code != 200 {
		t.Fatalf("queued wait: %d %s", code, body)
	}
	store.mu.Lock()
	var stmts int
	for _, req := range store.executed {
		stmts += len(req.Statements)
		if size := fsm.StatementsSize(req.Statements); size > queueMaxBytes(limit) {
			t.Errorf("a batch of %d statements takes %d bytes, over the bound %d", len(req.Statements), size, queueMaxBytes(limit))
		}
	}
	batches := len(store.executed)
	store.mu.Unlock()
	if stmts != 7 || batches < 4 {
		t.Fatalf("%d statements in %d batches, want 7 in at least 4 (two per batch)", stmts, batches)
	}

	big := `["INSERT INTO t VALUES('` + strings.Repeat("x", limit) + `')"]`
	code, _, body := do(t, "POST", ts.URL+"/db/execute?queue", "", big)
	if b := decodeSeq(t, body); code != 413 || b.Code != "entry_too_large" {
		t.Fatalf("queued request over the limit: %d %s, want 413 entry_too_large", code, body)
	}
}

// TestWriteAfterQueuedWritesAppliesAfterThem: a write without ?queue waits
// for the writes the queue accepted before it, which do not wait out the
// queue's timeout, and is applied after them.
func TestWriteAfterQueuedWritesAppliesAfterThem(t *testing.T) {
	store := leaderStore()
	_, ts := newTestServer(t, store, func(c *Config) { c.QueueTimeout = time.Minute })
	for _, sql := range []string{"DROP TABLE t", "INSERT INTO u VALUES(1)"} {
		if code, _, body := do(t, "POST", ts.URL+"/db/execute?queue", "", `["`+sql+`"]`); code != 200 {
			t.Fatalf("queued %s: %d %s", sql, code, body)
		}
	}
	start := time.Now()
	if code, _, body := do(t, "POST", ts.URL+"/db/execute", "", `["CREATE TABLE t (x)"]`); code != 200 {
		t.Fatalf("write: %d %s", code, body)
	}
	if waited := time.Since(start); waited > 30*time.Second {
		t.Fatalf("the write waited %v, the queue's timeout", waited)
	}
	store.mu.Lock()
	defer store.mu.Unlock()
	var order []string
	for _, req := range store.executed {
		for _, st := range req.Statements {
			order = append(order, st.SQL)
		}
	}
	want := []string{"DROP TABLE t", "INSERT INTO u VALUES(1)", "CREATE TABLE t (x)"}
	if strings.Join(order, "; ") != strings.Join(want, "; ") {
		t.Fatalf("applied %q; want %q", order, want)
	}
}

// TestWriteAfterRefusedQueuedWriteDoesNotWait: a queued request refused on
// a full queue (it never entered the queue) leaves nothing for a later
// write to wait for.
func TestWriteAfterRefusedQueuedWriteDoesNotWait(t *testing.T) {
	store := leaderStore()
	release, applying := make(chan struct{}), make(chan struct{}, 10)
	var once sync.Once
	store.execFn = func(ctx context.Context, req *api.Request) (*api.Response, error) {
		if strings.HasPrefix(req.ClientID, "queue-") {
			applying <- struct{}{}
			<-release
		}
		return &api.Response{Results: make([]api.Result, len(req.Statements))}, nil
	}
	_, ts := newTestServer(t, store, func(c *Config) { c.QueueCapacity = 1; c.QueueTimeout = 10 * time.Millisecond })
	defer once.Do(func() { close(release) })
	queue := func() (int, string) {
		code, _, body := do(t, "POST", ts.URL+"/db/execute?queue&timeout=100ms", "", `["INSERT INTO t VALUES(1)"]`)
		return code, body
	}
	// The runner holds the first batch (its apply waits for release), the
	// second request fills the queue, and the third is refused.
	if code, body := queue(); code != 200 {
		t.Fatalf("queued: %d %s", code, body)
	}
	select {
	case <-applying:
	case <-time.After(10 * time.Second):
		t.Fatal("the first queued batch was never applied")
	}
	if code, body := queue(); code != 200 {
		t.Fatalf("queued: %d %s", code, body)
	}
	if code, body := queue(); code != 503 || !strings.Contains(body, "queue_full") {
		t.Fatalf("queued on a full queue: %d %s, want 503 queue_full", code, body)
	}
	once.Do(func() { close(release) })
	start := time.Now()
	if code, _, body := do(t, "POST", ts.URL+"/db/execute?timeout=5s", "", `["CREATE TABLE t (x)"]`); code != 200 {
		t.Fatalf("write after the refused queued one: %d %s", code, body)
	}
	if waited := time.Since(start); waited > 3*time.Second {
		t.Fatalf("the write waited %v for a queued request that was never queued", waited)
	}
}
