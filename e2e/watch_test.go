//go:build linux

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/raftlite/raftlite/api"
)

// watchLog is what a watcher received, across reconnections.
type watchLog struct {
	mu      sync.Mutex
	indexes []uint64 // event ids, in the order received
	ids     []int64  // ids of the rows inserted into t, in the order received
	err     error    // a protocol violation seen while receiving
}

func (w *watchLog) add(ev api.ChangeEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := len(w.indexes); n > 0 && ev.Index <= w.indexes[n-1] && w.err == nil {
		w.err = fmt.Errorf("event %d after event %d: not in index order, or a duplicate", ev.Index, w.indexes[n-1])
	}
	w.indexes = append(w.indexes, ev.Index)
	for _, ch := range ev.Changes {
		if ch.Table == "t" && ch.Op == api.OpInsert {
			w.ids = append(w.ids, int64(ch.New["id"].(float64)))
		}
	}
}

// last is the last event id received, 0 if none.
func (w *watchLog) last() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.indexes) == 0 {
		return 0
	}
	return w.indexes[len(w.indexes)-1]
}

func (w *watchLog) counts() (events, rows int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.indexes), len(w.ids)
}

// streamWatch follows n's Server-Sent Events stream of table t, resuming
// after index lastSeen with Last-Event-ID as a browser's EventSource does,
// until the stream breaks or ctx ends.
func streamWatch(ctx context.Context, n *node, lastSeen uint64, w *watchLog) error {
	return streamEvents(ctx, n, "/db/watch?tables=t&from=1", lastSeen, func(ev api.ChangeEvent) error {
		w.add(ev)
		return nil
	})
}

// streamEvents reads the event stream at path on n, handing each event to
// fn, until the stream breaks, fn fails or ctx ends. A lastSeen above 0 is
// sent as Last-Event-ID.
func streamEvents(ctx context.Context, n *node, path string, lastSeen uint64, fn func(api.ChangeEvent) error) error {
	req, err := http.NewRequestWithContext(ctx, "GET", n.url(path), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if lastSeen > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(lastSeen, 10))
	}
	resp, err := http.DefaultClient.Do(req) // no timeout: the stream is long
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("watch %s: HTTP %d", n.name, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var id string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: error"):
			return fmt.Errorf("watch %s: error event", n.name)
		case strings.HasPrefix(line, "data: "):
			var ev api.ChangeEvent
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev); err != nil {
				return fmt.Errorf("watch %s: event %s: %w", n.name, id, err)
			}
			if strconv.FormatUint(ev.Index, 10) != id {
				return fmt.Errorf("watch %s: event id %s for index %d", n.name, id, ev.Index)
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// history reads n's whole change history of the index range from..to with
// long polls that do not wait, and returns the "events" arrays exactly as
// n sent them, and the number of events.
func history(n *node, from, to uint64) ([]byte, int, error) {
	var all []byte
	events := 0
	for from <= to {
		code, body, err := n.call("GET", fmt.Sprintf("/db/watch?wait=0&limit=1000&from=%d", from), nil, "")
		if err != nil {
			return nil, 0, err
		}
		if code != http.StatusOK {
			return nil, 0, &httpError{Code: code, Body: string(body)}
		}
		var page struct {
			Events []json.RawMessage `json:"events"`
			Next   uint64            `json:"next"`
		}
		if err := json.Unmarshal(body, &page); err != nil {
			return nil, 0, err
		}
		for _, ev := range page.Events {
			var head struct {
				Index uint64 `json:"index"`
			}
			if err := json.Unmarshal(ev, &head); err != nil {
				return nil, 0, err
			}
			if head.Index > to {
				return all, events, nil
			}
			all = append(append(all, ev...), '\n')
			events++
		}
		if len(page.Events) == 0 {
			return all, events, nil
		}
		from = page.Next
	}
	return all, events, nil
}

// The acceptance test of /db/watch: a watcher on a follower sees every
// change of three concurrent writers, in index order; its node is killed
// with SIGKILL mid-stream and it resumes on another node from the last
// index it saw; what it received is then exactly the committed rows (the
// table's final content, as many as the acknowledged writes), with no gap
// and no duplicate. Finally every node, the killed one restarted, serves
// a byte-identical history of the same index range.
func TestWatchFollowerKilledMidStream(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	createTable(t, leader)
	followers := c.others(leader)
	watched, fallback := followers[0], followers[1]

	var got watchLog
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	firstStream := make(chan error, 1)
	go func() { firstStream <- streamWatch(ctx, watched, 0, &got) }()

	const writers = 3
	var ws [writers]*writer
	for i := range ws {
		ws[i] = startWriter(c.nodes, i*1_000_000)
	}
	waitFor(t, waitTimeout, "the watcher to receive 60 inserts", func() error {
		if _, rows := got.counts(); rows < 60 {
			return fmt.Errorf("%d inserts so far", rows)
		}
		return nil
	})
	watched.kill(t)
	if err := <-firstStream; err != nil && !isBrokenStream(err) {
		t.Fatalf("the first stream ended with %v", err)
	}
	resumeFrom := got.last()
	t.Logf("killed %s after event %d; resuming on %s", watched.name, resumeFrom, fallback.name)
	secondStream := make(chan error, 1)
	go func() { secondStream <- streamWatch(ctx, fallback, resumeFrom, &got) }()

	for _, w := range ws {
		w.waitAcked(t, 20, "after the kill")
	}
	acked := 0
	for i, w := range ws {
		acked += w.finish(t) - i*1_000_000
	}
	final, err := leader.rows("strong", "SELECT id FROM t ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	if len(final) != acked {
		t.Fatalf("table t holds %d rows, %d writes were acknowledged", len(final), acked)
	}
	waitFor(t, waitTimeout, "the watcher to receive every committed row", func() error {
		if _, rows := got.counts(); rows < len(final) {
			return fmt.Errorf("%d of %d rows", rows, len(final))
		}
		return nil
	})
	cancel()
	<-secondStream

	got.mu.Lock()
	if got.err != nil {
		t.Fatal(got.err)
	}
	ids := slices.Clone(got.ids)
	got.mu.Unlock()
	slices.Sort(ids)
	if dup := firstDuplicate(ids); dup >= 0 {
		t.Fatalf("row %d received twice", dup)
	}
	want := make([]int64, len(final))
	for i, r := range final {
		id, err := r[0].(json.Number).Int64()
		if err != nil {
			t.Fatal(err)
		}
		want[i] = id
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("received rows differ from the table: got %d rows, table %d", len(ids), len(want))
	}
	events, rows := got.counts()
	t.Logf("%d writes acknowledged; the watcher received %d events holding %d inserts, resuming once after a SIGKILL", acked, events, rows)

	// Determinism: the same index range from every node, byte for byte.
	watched.start(t)
	waitReady(t, c.nodes...)
	last := got.last()
	ref, n, err := history(leader, 1, last)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("empty history")
	}
	for _, node := range followers {
		waitFor(t, waitTimeout, node.name+" to serve the history up to "+strconv.FormatUint(last, 10), func() error {
			b, m, err := history(node, 1, last)
			if err != nil {
				return err
			}
			if m != n {
				return fmt.Errorf("%d events, the leader has %d", m, n)
			}
			if !bytes.Equal(b, ref) {
				t.Fatalf("%s's history differs from the leader's", node.name)
			}
			return nil
		})
	}
}

// isBrokenStream reports whether err is how a stream ends when its server
// dies.
func isBrokenStream(err error) bool {
	return errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "EOF") ||
		strings.Contains(err.Error(), "connection reset")
}

func firstDuplicate(sorted []int64) int64 {
	for i := 1; i < len(sorted); i++ {
		if sorted[i] == sorted[i-1] {
			return sorted[i]
		}
	}
	return -1
}

// Retention trims the history on every node alike, by the log: watching
// from before the window answers 410 compacted with the oldest index still
// there, the same on every node; POST /db/compact (sent to a follower,
// forwarded) trims further.
func TestWatchCompacted(t *testing.T) {
	c := startProcfileCluster(t, "watch-retention", "entries=10")
	leader := c.waitLeader()
	createTable(t, leader)
	for i := 1; i <= 30; i++ {
		if err := insertRow([]*node{leader}, i, waitTimeout); err != nil {
			t.Fatal(err)
		}
	}
	r, err := leader.sql("/db/execute?raft_index", "INSERT INTO t(id, via) VALUES(31, 'last')")
	if err != nil {
		t.Fatal(err)
	}
	applied := r.RaftIndex
	oldest := func(n *node, from uint64) (uint64, error) {
		code, body, err := n.call("GET", fmt.Sprintf("/db/watch?wait=0&from=%d", from), nil, "")
		if err != nil {
			return 0, err
		}
		var e struct {
			Code   string `json:"code"`
			Oldest uint64 `json:"oldest_index"`
		}
		if err := json.Unmarshal(body, &e); err != nil || code != http.StatusGone || e.Code != "compacted" {
			return 0, fmt.Errorf("HTTP %d %s", code, body)
		}
		return e.Oldest, nil
	}
	// entries=10 keeps (at most) the last ten indexes; every node trims
	// at the same entries, so once they have applied the same log they
	// agree.
	waitFor(t, waitTimeout, "every node to trim its history alike", func() error {
		var seen []uint64
		for _, n := range c.nodes {
			o, err := oldest(n, 1)
			if err != nil {
				return fmt.Errorf("%s: %w", n.name, err)
			}
			if o <= 1 || o > applied-9 {
				return fmt.Errorf("%s: oldest index %d, want one in 2..%d", n.name, o, applied-9)
			}
			seen = append(seen, o)
		}
		if slices.Min(seen) != slices.Max(seen) {
			return fmt.Errorf("oldest indexes %v", seen)
		}
		return nil
	})
	follower := c.others(leader)[0]
	if code, body, err := follower.call("POST", fmt.Sprintf("/db/compact?index=%d", applied-2), nil, ""); err != nil || code != http.StatusOK {
		t.Fatalf("compact through a follower: %d %s %v", code, body, err)
	}
	for _, n := range c.nodes {
		waitFor(t, waitTimeout, n.name+" to apply the compaction", func() error {
			o, err := oldest(n, applied-3)
			if err != nil {
				return err
			}
			if o != applied-1 {
				return fmt.Errorf("oldest index %d, want %d", o, applied-1)
			}
			return nil
		})
		if _, events, err := history(n, applied-1, applied); err != nil || events == 0 {
			t.Fatalf("%s: history after the compacted index: %d events, %v", n.name, events, err)
		}
	}
}
