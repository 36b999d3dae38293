package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// notifyInterval is the pause between rounds of bootstrap
	// notifications.
	notifyInterval = 500 * time.Millisecond
	notifyTimeout  = 3 * time.Second
)

// bootState is what a node without Raft state has learnt from bootstrap
// notifications: the nodes (itself included) that want to form a cluster.
type bootState struct {
	mu    sync.Mutex
	peers map[string]peerInfo // by node ID
	wake  chan struct{}       // signalled when peers grows
}

func (n *Node) self() peerInfo {
	return peerInfo{ID: n.id, RaftAddr: n.advAddr, APIAddr: n.cfg.APIAdvAddr}
}

// form makes a node without Raft state part of a cluster: by bootstrapping
// one with the nodes it expects, by joining one, or by bootstrapping a
// single-node cluster.
func (n *Node) form(ctx context.Context) error {
	targets := n.joinTargets()
	switch {
	case n.cfg.BootstrapExpect > 1:
		return n.bootstrapExpect(ctx, targets)
	case len(targets) > 0:
		return n.joinCluster(ctx, targets)
	default:
		n.logger.Info("bootstrapping single-node cluster")
		return n.bootstrap(raft.Configuration{Servers: []raft.Server{
			{Suffrage: raft.Voter, ID: raft.ServerID(n.id), Address: raft.ServerAddress(n.advAddr)},
		}})
	}
}

// bootstrap writes the initial configuration. Several nodes may do so with
// identical configurations; raft accepts that. If this node acquired state in
// the meantime (another node's leader reached it first), there is nothing to
// do.
func (n *Node) bootstrap(cfg raft.Configuration) error {
	err := n.raft.BootstrapCluster(cfg).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		n.logger.Info("raft state appeared meanwhile: not bootstrapping")
		return nil
	}
	if err != nil {
		return fmt.Errorf("cluster: bootstrap: %w", err)
	}
	return nil
}

// bootstrapExpect notifies the targets of this node, again and again, until
// BootstrapExpect distinct nodes (this one included) know of each other, and
// then bootstraps a cluster of exactly those nodes. Every node ends with the
// same set, as each notification is answered with the responder's own
// identity. If a target reports a running cluster that does not include this
// node, it joins that cluster instead.
func (n *Node) bootstrapExpect(ctx context.Context, targets []string) error {
	want := n.cfg.BootstrapExpect
	if len(targets) == 0 {
		return fmt.Errorf("cluster: bootstrap-expect %d: no other node to notify in the join list", want)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.BootstrapExpectTimeout)
	defer cancel()
	n.addBootPeer(n.self())
	n.logger.Info("waiting for nodes to bootstrap a cluster", "expect", want, "notify", targets)

	ticker := time.NewTicker(notifyInterval)
	defer ticker.Stop()
	for {
		if servers, err := n.servers(); err == nil && len(servers) > 0 {
			n.logger.Info("cluster bootstrapped by another node", "servers", len(servers))
			return nil
		}
		if peers := n.bootPeers(); len(peers) >= want {
			if len(peers) > want {
				n.logger.Warn("more nodes than expected are bootstrapping; including all", "expect", want, "found", len(peers))
			}
			servers := make([]raft.Server, 0, len(peers))
			for _, p := range peers {
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
			}
			n.logger.Info("bootstrapping cluster", "servers", fmt.Sprintf("%v", servers))
			return n.bootstrap(raft.Configuration{Servers: servers})
		}
		for _, t := range targets {
			resp, err := n.sendNotify(ctx, t)
			if err != nil {
				n.logger.Debug("bootstrap notify failed", "to", t, "error", err)
				continue
			}
			if resp.Bootstrapped && resp.LeaderID != "" && !slices.Contains(resp.Members, n.id) {
				n.logger.Info("a cluster is already running: joining it", "via", t, "leader_id", resp.LeaderID)
				return n.joinCluster(ctx, targets)
			}
		}
		if len(n.bootPeers()) >= want {
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: bootstrap-expect %d: found only %d node(s) %v: %w", want, len(n.bootPeers()), peerIDs(n.bootPeers()), ctx.Err())
		case <-ticker.C:
		case <-n.boot.wake:
		}
	}
}

func (n *Node) sendNotify(ctx context.Context, target string) (notifyResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	var resp notifyResponse
	if err := n.client.call(ctx, target, pathNotify, 0, n.self(), &resp); err != nil {
		return resp, err
	}
	if resp.ID != "" && !resp.Bootstrapped && validatePeer(resp.ID, resp.RaftAddr, resp.APIAddr) == nil {
		n.addBootPeer(resp.peerInfo)
	}
	return resp, nil
}

// notify handles a bootstrap notification: it records the sender and answers
// with this node's identity and whether it already belongs to a cluster.
func (n *Node) notify(req peerInfo) notifyResponse {
	n.metrics.notifiesReceived.Add(1)
	resp := notifyResponse{peerInfo: n.self()}
	if servers, err := n.servers(); err == nil && len(servers) > 0 {
		resp.Bootstrapped = true
		for _, s := range servers {
			resp.Members = append(resp.Members, string(s.ID))
		}
		resp.LeaderID = n.LeaderID()
		return resp
	}
	if validatePeer(req.ID, req.RaftAddr, req.APIAddr) == nil {
		n.addBootPeer(req)
	}
	return resp
}

// addBootPeer records p, replacing any entry with its ID or its address.
func (n *Node) addBootPeer(p peerInfo) {
	n.boot.mu.Lock()
	defer n.boot.mu.Unlock()
	if old, ok := n.boot.peers[p.ID]; ok && old == p {
		return
	}
	for id, q := range n.boot.peers {
		if q.RaftAddr == p.RaftAddr && id != p.ID {
			delete(n.boot.peers, id)
		}
	}
	n.boot.peers[p.ID] = p
	select {
	case n.boot.wake <- struct{}{}:
	default:
	}
}

// bootPeers returns the known bootstrap peers sorted by ID.
func (n *Node) bootPeers() []peerInfo {
	n.boot.mu.Lock()
	defer n.boot.mu.Unlock()
	out := make([]peerInfo, 0, len(n.boot.peers))
	for _, p := range n.boot.peers {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func peerIDs(ps []peerInfo) []string {
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}
