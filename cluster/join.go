package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
)

// joinTargets returns the Join addresses other than this node's own.
func (n *Node) joinTargets() []string { return n.withoutSelf(n.cfg.Join) }

// withoutSelf returns addrs without repeats and without this node's own
// addresses.
func (n *Node) withoutSelf(addrs []string) []string {
	self := map[string]bool{n.advAddr: true, n.cfg.RaftAddr: true}
	if n.mux != nil {
		self[n.mux.ln.Addr().String()] = true
	}
	seen := make(map[string]bool)
	var out []string
	for _, given := range addrs {
		j := joinRaftAddr(given)
		if self[j] || seen[j] {
			continue
		}
		seen[j] = true
		out = append(out, j)
	}
	return out
}

// joinRaftAddr is the Raft address a join address names. rqlite accepts
// join addresses with or without a scheme (its older versions joined
// through the HTTP API), so "http://host:4002" and "host:4002" both name
// the node whose Raft port is host:4002: the scheme is dropped, never
// prepended again.
func joinRaftAddr(given string) string {
	a := strings.TrimSpace(given)
	for _, scheme := range []string{"http://", "https://"} {
		if len(a) > len(scheme) && strings.EqualFold(a[:len(scheme)], scheme) {
			a = a[len(scheme):]
			break
		}
	}
	return strings.TrimSuffix(a, "/")
}

// joinCluster asks each target in turn to add this node, in up to
// JoinAttempts rounds with a doubling pause between rounds. Any member
// receiving the request passes it on to the leader.
func (n *Node) joinCluster(ctx context.Context, targets []string) error {
	req := joinRequest{ID: n.id, RaftAddr: n.advAddr, APIAddr: n.cfg.APIAdvAddr, Voter: !n.cfg.NonVoter}
	delay := n.cfg.JoinInterval
	var lastErr error
	for attempt := 1; ; attempt++ {
		for _, t := range targets {
			if err := n.client.call(ctx, t, pathJoin, 0, req, nil); err != nil {
				lastErr = err
				logCallFailure(n.logger, slog.LevelInfo, "join attempt failed", err, "via", t, "attempt", attempt)
				continue
			}
			n.logger.Info("joined cluster", "via", t, "voter", req.Voter)
			return nil
		}
		if attempt >= n.cfg.JoinAttempts {
			return fmt.Errorf("cluster: join via %v failed after %d attempts: %w", targets, attempt, lastErr)
		}
		if err := sleepCtx(ctx, delay); err != nil {
			return fmt.Errorf("cluster: join via %v: %w (last error: %w)", targets, err, lastErr)
		}
		delay = min(2*delay, maxJoinInterval)
	}
}

// join handles a join request: the leader adds the node, any other member
// passes the request on to the leader.
func (n *Node) join(ctx context.Context, req joinRequest, hops int) error {
	if err := validatePeer(req.ID, req.RaftAddr, req.APIAddr); err != nil {
		return err
	}
	if req.APIAddr == "" {
		return fmt.Errorf("%w: join of %s without an API address", api.ErrBadRequest, req.ID)
	}
	if n.IsLeader() {
		return n.joinLocal(ctx, req)
	}
	return n.forward(ctx, pathJoin, hops, req, nil)
}

// joinLocal adds a node on the leader. It is idempotent: a member with the
// same ID and address is left alone (but promoted if it asks to vote and
// does not yet); a member with the same ID and another address, or another
// ID and the same address, is removed first (the node was re-addressed or
// re-created). Then the node's API address is recorded in the replicated
// metadata.
func (n *Node) joinLocal(ctx context.Context, req joinRequest) error {
	ctx, servers, release, err := n.lockMembership(ctx)
	if err != nil {
		return err
	}
	defer release()
	member := false
	for _, s := range servers {
		sameID, sameAddr := string(s.ID) == req.ID, string(s.Address) == req.RaftAddr
		switch {
		case sameID && sameAddr:
			member = true
			if req.Voter && s.Suffrage != raft.Voter {
				n.logger.Info("promoting member to voter", "id", req.ID)
				if err := n.configChange(ctx, func(t time.Duration) raft.IndexFuture {
					return n.raft.AddVoter(s.ID, s.Address, 0, t)
				}); err != nil {
					return fmt.Errorf("cluster: promote %s: %w", req.ID, err)
				}
			}
		case sameID || sameAddr:
			if string(s.ID) == n.id {
				return fmt.Errorf("%w: node %s at %s conflicts with the leader %s at %s", api.ErrBadRequest, req.ID, req.RaftAddr, s.ID, s.Address)
			}
			n.logger.Info("removing member before re-adding", "id", s.ID, "addr", s.Address, "joining_id", req.ID, "joining_addr", req.RaftAddr)
			if err := n.configChange(ctx, func(t time.Duration) raft.IndexFuture {
				return n.raft.RemoveServer(s.ID, 0, t)
			}); err != nil {
				return fmt.Errorf("cluster: remove stale member %s: %w", s.ID, err)
			}
			if !sameID {
				if err := n.removeMetaLocked(ctx, string(s.ID)); err != nil {
					n.logger.Warn("forget metadata of replaced member", "id", s.ID, "error", err)
				}
			}
		}
	}
	if !member {
		if err := n.configChange(ctx, func(t time.Duration) raft.IndexFuture {
			if req.Voter {
				return n.raft.AddVoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, t)
			}
			return n.raft.AddNonvoter(raft.ServerID(req.ID), raft.ServerAddress(req.RaftAddr), 0, t)
		}); err != nil {
			return fmt.Errorf("cluster: add %s at %s: %w", req.ID, req.RaftAddr, err)
		}
		n.metrics.joinsHandled.Add(1)
		n.logger.Info("added member", "id", req.ID, "addr", req.RaftAddr, "api_addr", req.APIAddr, "voter", req.Voter)
	}
	if err := n.setMetaLocked(ctx, req.ID, req.APIAddr); err != nil {
		return fmt.Errorf("cluster: record metadata of %s: %w", req.ID, err)
	}
	return nil
}

// configChange runs one Raft configuration change and waits for it to
// commit.
func (n *Node) configChange(ctx context.Context, change func(enqueueTimeout time.Duration) raft.IndexFuture) error {
	deadline, _ := ctx.Deadline()
	if err := n.wait(ctx, change(time.Until(deadline))); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return mapError(err)
	}
	return nil
}

// forward sends a leader-only service request to the leader.
func (n *Node) forward(ctx context.Context, path string, hops int, in, out any) error {
	if n.closed.Load() {
		return api.ErrClosed
	}
	if hops >= maxHops {
		return errTooManyHops
	}
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		return api.ErrNoLeader
	}
	if string(id) == n.id {
		// Raft still names us but we are no longer leader: let the caller
		// retry once the cluster has settled.
		return api.ErrNotLeader
	}
	n.metrics.forwarded.Add(1)
	return n.client.call(ctx, string(addr), path, hops+1, in, out)
}

// validatePeer checks a node identity received from another node. An empty
// apiAddr is allowed here (callers that need one check).
func validatePeer(id, raftAddr, apiAddr string) error {
	if id == "" {
		return fmt.Errorf("%w: missing node id", api.ErrBadRequest)
	}
	if _, _, err := net.SplitHostPort(raftAddr); err != nil {
		return fmt.Errorf("%w: raft address %q: %w", api.ErrBadRequest, raftAddr, err)
	}
	if apiAddr != "" {
		return validateAPIAddr(apiAddr)
	}
	return nil
}

func validateAPIAddr(apiAddr string) error {
	if u, err := url.Parse(apiAddr); err != nil || u.Host == "" {
		return fmt.Errorf("%w: API address %q is not a URL", api.ErrBadRequest, apiAddr)
	}
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
