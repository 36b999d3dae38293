package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/client"
)

// client.Watch against a real cluster: it follows a follower, carries on
// at the next node when that follower dies, and delivers every committed
// insert once, in index order.
func TestClientWatchFailsOver(t *testing.T) {
	nodes := startAPICluster(t, 3, nil)
	leader := waitLeader(t, nodes)
	fs := followers(nodes, leader)
	writer, err := client.New(client.Config{Nodes: []string{leader.url}})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	created, err := writer.Execute(ctx, client.SQL("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
	if err != nil {
		t.Fatal(err)
	}
	watcher, err := client.New(client.Config{Nodes: []string{fs[0].url, fs[1].url}, RetryBackoff: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Close()
	events := watcher.Watch(ctx, client.WatchOptions{Tables: []string{"t"}, From: created.RaftIndex + 1, Wait: 2 * time.Second})

	const rows = 40
	go func() {
		for i := 1; i <= rows; i++ {
			if _, err := writer.Execute(ctx, client.SQL("INSERT INTO t (id) VALUES (?)", i)); err != nil {
				t.Errorf("insert %d: %v", i, err)
				return
			}
			if i == rows/2 {
				fs[0].kill()
			}
		}
	}()
	var ids []int64
	var last uint64
	for len(ids) < rows {
		ev, ok := <-events
		if !ok || ev.Err != nil {
			t.Fatalf("watch ended after %d rows: %v", len(ids), ev.Err)
		}
		if ev.Index <= last {
			t.Fatalf("event %d after %d", ev.Index, last)
		}
		last = ev.Index
		for _, ch := range ev.Changes {
			ids = append(ids, ch.New["id"].(int64))
		}
	}
	want := make([]int64, rows)
	for i := range want {
		want[i] = int64(i + 1)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("rows %v", ids)
	}

	// History the cluster trimmed ends the watch with compacted.
	a := call(t, "POST", leader.url+fmt.Sprintf("/db/compact?index=%d", last), "", "", "")
	var reply struct{ Index uint64 }
	if err := json.Unmarshal([]byte(a.body), &reply); a.status != 200 || err != nil {
		t.Fatalf("compact: %d %s", a.status, a.body)
	}
	if err := fs[1].node.WaitApplied(ctx, reply.Index); err != nil {
		t.Fatal(err)
	}
	ev := <-watcher.Watch(ctx, client.WatchOptions{From: 1})
	var ae *client.APIError
	if !errors.Is(ev.Err, api.ErrCompacted) || !errors.As(ev.Err, &ae) || ae.OldestIndex != last+1 {
		t.Fatalf("watch from 1 after compacting: %+v", ev)
	}
}
