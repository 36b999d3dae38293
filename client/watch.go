package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/raftlite/raftlite/api"
)

// DefaultWatchWait is how long one of Watch's long polls waits for a change
// when WatchOptions.Wait is zero.
const DefaultWatchWait = 25 * time.Second

// WatchOptions says which changes Watch follows (GET /db/watch).
type WatchOptions struct {
	// Tables, when not empty, follows these tables only.
	Tables []string
	// Ops, when not empty, follows these operations only (api.OpInsert,
	// api.OpUpdate, api.OpDelete).
	Ops []string
	// Where, when not empty, is an SQL expression over the changed row's
	// columns (the new row; the old one for a delete): only changes for
	// which it is true are delivered.
	Where string
	// Prev asks for the old row of updates and deletes.
	Prev bool
	// From is the first log index wanted: resume with the last index seen
	// plus one. 0 means the changes committed from now on.
	From uint64
	// Wait is how long one long poll waits for a change before it asks
	// again; zero means DefaultWatchWait.
	Wait time.Duration
}

// Event is what Watch delivers: the changes one log entry made, or, as the
// channel's last value, Err, why the watch stopped for good (the index
// asked for was compacted: errors.Is(Err, api.ErrCompacted), and the
// *APIError's OldestIndex says where history resumes; a bad filter; no
// permission). A watch ended by its context closes the channel with no
// error event.
type Event struct {
	api.ChangeEvent
	Err error
}

// Watch follows committed changes (GET /db/watch) and delivers them on the
// returned channel in log index order, one Event per index, until ctx ends
// or a definite failure (Event.Err). It long-polls whichever node answers,
// starting with the one that last answered, and when a node fails (killed,
// unreachable, restarting) it carries on at the next one from the index
// after the last event delivered: no change is delivered twice or skipped,
// and none that is not committed (only applied entries have changes). The
// channel is unbuffered: a slow reader slows the polling, never loses
// events.
func (c *Client) Watch(ctx context.Context, opts WatchOptions) <-chan Event {
	out := make(chan Event)
	go func() {
		defer close(out)
		wait := opts.Wait
		if wait <= 0 {
			wait = DefaultWatchWait
		}
		from := opts.From
		failures := 0
		for ctx.Err() == nil {
			page, err := c.watchPage(ctx, &opts, from, wait)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				var ae *APIError
				if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
					select {
					case out <- Event{Err: err}:
					case <-ctx.Done():
					}
					return
				}
				// Every node failed for now: wait, then start over.
				c.core.log.Debug("raftlite client: watch poll failed, retrying", "from", from, "err", err)
				t := time.NewTimer(c.core.backoffDelay(failures))
				failures++
				select {
				case <-ctx.Done():
					t.Stop()
					return
				case <-t.C:
				}
				continue
			}
			failures = 0
			for _, ev := range page.Events {
				select {
				case out <- Event{ChangeEvent: ev}:
				case <-ctx.Done():
					return
				}
			}
			from = page.Next
		}
	}()
	return out
}

// watchPage sends one long poll.
func (c *Client) watchPage(ctx context.Context, opts *WatchOptions, from uint64, wait time.Duration) (*api.WatchPage, error) {
	rq := c.adminRequest(http.MethodGet, "/db/watch", nil)
	rq.retryAmbiguous = true // a read
	if rq.timeout > 0 {
		rq.timeout += wait // the poll may hold the whole wait
	}
	rq.query.set("wait", wait.String())
	if from > 0 {
		rq.query.set("from", strconv.FormatUint(from, 10))
	}
	if len(opts.Tables) > 0 {
		rq.query.set("tables", strings.Join(opts.Tables, ","))
	}
	if len(opts.Ops) > 0 {
		rq.query.set("ops", strings.Join(opts.Ops, ","))
	}
	if opts.Where != "" {
		rq.query.set("where", opts.Where)
	}
	if opts.Prev {
		rq.query.flag("prev")
	}
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return nil, err
	}
	var page api.WatchPage
	dec := json.NewDecoder(bytes.NewReader(rep.body))
	dec.UseNumber()
	if err := dec.Decode(&page); err != nil {
		return nil, fmt.Errorf("raftlite client: invalid /db/watch body: %w", err)
	}
	for i := range page.Events {
		for j := range page.Events[i].Changes {
			ch := &page.Events[i].Changes[j]
			for _, row := range []map[string]api.Value{ch.PK, ch.New, ch.Old} {
				numbersToValues(row)
			}
		}
	}
	if from > 0 && page.Next < from {
		return nil, fmt.Errorf("raftlite client: /db/watch went back from index %d to %d", from, page.Next)
	}
	return &page, nil
}

// numbersToValues turns the JSON numbers of a row into int64 (integers)
// or float64. JSON does not keep SQLite's types: a REAL with an integral
// value arrives as an int64, and a BLOB as its base64 text.
func numbersToValues(row map[string]api.Value) {
	for k, v := range row {
		n, ok := v.(json.Number)
		if !ok {
			continue
		}
		if i, err := n.Int64(); err == nil {
			row[k] = i
		} else if f, err := n.Float64(); err == nil {
			row[k] = f
		}
	}
}

// oldestIndex reads oldest_index from a "compacted" error body.
func oldestIndex(body []byte) uint64 {
	var e struct {
		Oldest uint64 `json:"oldest_index"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Oldest
}
