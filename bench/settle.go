package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// settle waits until every member of the cluster has applied the log up to
// the highest commit index any of them reports, so that a run does not
// compete with followers still applying the previous run's writes (on a
// small machine the nodes share the cores). Members come from /nodes on
// the first host, falling back to cfg.Hosts. It gives up after timeout,
// returning an error the caller reports as a warning. It works against
// rqlite too: /status there has store.raft.{commit,applied}_index as
// strings.
func settle(ctx context.Context, cfg *Config, timeout time.Duration) (time.Duration, error) {
	start := time.Now()
	hosts := memberHosts(ctx, cfg)
	clients := make([]*client, len(hosts))
	for i, h := range hosts {
		clients[i] = newClient(h, 5*time.Second, cfg)
		defer clients[i].close()
	}
	var target uint64
	for _, c := range clients {
		if commit, _, err := raftIndexes(ctx, c); err == nil {
			target = max(target, commit)
		}
	}
	if target == 0 {
		return 0, nil // nothing known to wait for
	}
	deadline := start.Add(timeout)
	for i := 0; i < len(clients); {
		_, applied, err := raftIndexes(ctx, clients[i])
		if err == nil && applied >= target {
			i++
			continue
		}
		if time.Now().After(deadline) {
			if err != nil {
				return time.Since(start), fmt.Errorf("%s: %w", clients[i].base, err)
			}
			return time.Since(start), fmt.Errorf("%s applied index %d, want %d after %s", clients[i].base, applied, target, timeout)
		}
		select {
		case <-ctx.Done():
			return time.Since(start), ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// raftIndexes reads store.raft.commit_index and applied_index from a
// node's /status.
func raftIndexes(ctx context.Context, c *client) (commit, applied uint64, err error) {
	b, err := c.doRaw(ctx, "GET", "/status", nil)
	if err != nil {
		return 0, 0, err
	}
	var st struct {
		Store struct {
			Raft map[string]any `json:"raft"`
		} `json:"store"`
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return 0, 0, fmt.Errorf("decode /status: %w", err)
	}
	var ok1, ok2 bool
	commit, ok1 = toUint(st.Store.Raft["commit_index"])
	applied, ok2 = toUint(st.Store.Raft["applied_index"])
	if !ok1 || !ok2 {
		return 0, 0, fmt.Errorf("/status lacks store.raft.commit_index or applied_index")
	}
	return commit, applied, nil
}

// toUint reads a JSON number or a decimal string.
func toUint(v any) (uint64, bool) {
	switch x := v.(type) {
	case float64:
		if x < 0 {
			return 0, false
		}
		return uint64(x), true
	case string:
		n, err := strconv.ParseUint(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}
