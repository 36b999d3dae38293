package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

const (
	// notifyInterval is the pause between rounds of bootstrap
	// notifications.
	notifyInterval = 500 * time.Millisecond
	notifyTimeout  = 3 * time.Second
	// refusalLogInterval is how often a node waiting to bootstrap repeats
	// its ERROR about a running cluster it refuses to join: often enough
	// to be seen in a scrolling terminal or journal while it lasts, not a
	// line per notification round.
	refusalLogInterval = 5 * time.Second
)

// bootState is what a node without Raft state has learnt from bootstrap
// notifications: the nodes (itself included) that want to form a cluster.
type bootState struct {
	mu    sync.Mutex
	peers map[string]peerInfo // by node ID
	wake  chan struct{}       // signalled when peers grows
	// discovered are the addresses Config.Discover last found.
	discovered []string
	// lastDiscoverErr is when a failed discovery was last logged.
	lastDiscoverErr time.Time
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
		n.setFormStatus(fmt.Sprintf("joining a cluster via %v", n.cfg.Join))
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
// identity. If a target reports a running cluster that the listed nodes
// formed (see refuseCluster) and that does not include this node, it joins
// that cluster instead. Any other running cluster it refuses and keeps
// waiting, saying so loudly: an ERROR every refusalLogInterval, and the
// reason in Ready.
func (n *Node) bootstrapExpect(ctx context.Context, targets []string) error {
	want := n.cfg.BootstrapExpect
	if len(targets) == 0 && n.cfg.Discover == nil {
		return fmt.Errorf("cluster: bootstrap-expect %d: no other node to notify in the join list", want)
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.BootstrapExpectTimeout)
	defer cancel()
	n.addBootPeer(n.self())
	n.logger.Info("waiting for nodes to bootstrap a cluster", "expect", want, "notify", targets)

	var lastRefusalLog, lastTLSRefusalLog time.Time
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
		var refusals []refusal
		memberOf := "" // a target reporting the listed nodes' cluster, with this node in it
		for _, t := range n.roundTargets(ctx, targets) {
			resp, err := n.sendNotify(ctx, t)
			if err != nil {
				// A TLS refusal is a warning, repeated every refusalLogInterval
				// rather than at every notification.
				if !tlsRefused(err) || time.Since(lastTLSRefusalLog) >= refusalLogInterval {
					if tlsRefused(err) {
						lastTLSRefusalLog = time.Now()
					}
					logCallFailure(n.logger, slog.LevelDebug, "bootstrap notify failed", err, "to", t)
				}
				continue
			}
			if !resp.Bootstrapped {
				continue
			}
			if why := n.refuseCluster(ctx, resp.Servers); why != "" {
				refusals = append(refusals, refusal{via: t, why: why})
				continue
			}
			if slices.ContainsFunc(resp.Servers, func(s configServer) bool { return s.ID == n.id }) {
				memberOf = t
				continue
			}
			if resp.LeaderID != "" {
				n.logger.Info("the listed nodes' cluster is already running: joining it", "via", t, "leader_id", resp.LeaderID)
				n.setFormStatus("joining the running cluster of the listed nodes via " + t)
				return n.joinCluster(ctx, voterAddrs(resp.Servers, n.advAddr))
			}
		}
		status := fmt.Sprintf("waiting for %d nodes to bootstrap a cluster, found %d %v", want, len(n.bootPeers()), peerIDs(n.bootPeers()))
		if memberOf != "" {
			// Its data was wiped: the leader will replicate to it.
			status = fmt.Sprintf("a member of the running cluster reported by %s, waiting for its leader to replicate to this node", memberOf)
		}
		if len(refusals) > 0 {
			status = joinRefusals(refusals) + "; " + status
			if time.Since(lastRefusalLog) >= refusalLogInterval {
				lastRefusalLog = time.Now()
				for _, r := range refusals {
					n.logger.Error("refusing to join a running cluster: it is not the one the join list and bootstrap-expect describe",
						"via", r.via, "reason", r.why, "hint", refusalHint)
				}
			}
		}
		n.setFormStatus(status)
		if len(n.bootPeers()) >= want {
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: bootstrap-expect %d: %s: %w", want, status, ctx.Err())
		case <-ticker.C:
		case <-n.boot.wake:
		}
	}
}

// refusalHint tells an operator what to do about a refused cluster.
const refusalHint = "a node at a join address runs a cluster of its own (e.g. a single-node 'raftlite serve' left running): " +
	"stop it, or correct the join list; see the README's troubleshooting section"

// refusal is a running cluster a bootstrap-expect node will not join: the
// target that reported it, and why.
type refusal struct{ via, why string }

func joinRefusals(rs []refusal) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("refusing to join the cluster of the node at %s: %s", r.via, r.why)
	}
	return strings.Join(parts, "; ")
}

// refuseCluster returns why a bootstrap-expect node must not join the
// running cluster whose configuration is servers, or "" if it may. It may
// when every voter is at an address of the join list (or this node's own)
// and there are at least BootstrapExpect voters: then it is the cluster the
// listed nodes formed, which a listed node whose data was wiped rejoins. A
// single node left running at a listed address (the README's quick start,
// say) has too few voters; another cluster's nodes are not all listed.
// Addresses are compared as written, so the join list must name nodes by
// their advertised Raft addresses.
func (n *Node) refuseCluster(ctx context.Context, servers []configServer) string {
	listed := map[string]bool{n.advAddr: true}
	for _, given := range n.cfg.Join {
		a := joinRaftAddr(given)
		listed[a] = true
	}
	discovered := n.discoveredAddrs()
	for _, a := range discovered {
		listed[a] = true
	}
	var voters, unlisted []string
	for _, s := range servers {
		if !s.Voter {
			continue
		}
		voter := s.ID + " at " + s.RaftAddr
		voters = append(voters, voter)
		if !listed[s.RaftAddr] && !n.resolvesToListed(ctx, s.RaftAddr, listed) {
			unlisted = append(unlisted, voter)
		}
	}
	switch {
	case len(unlisted) > 0:
		return fmt.Sprintf("its voters %s are not in the join list %v", strings.Join(unlisted, ", "), append(slices.Clone(n.cfg.Join), discovered...))
	case len(voters) < n.cfg.BootstrapExpect:
		return fmt.Sprintf("it has %d voter(s) [%s], fewer than bootstrap-expect %d", len(voters), strings.Join(voters, ", "), n.cfg.BootstrapExpect)
	}
	return ""
}

// voterAddrs returns the Raft addresses of the voters among servers, except
// self.
func voterAddrs(servers []configServer, self string) []string {
	var out []string
	for _, s := range servers {
		if s.Voter && s.RaftAddr != self {
			out = append(out, s.RaftAddr)
		}
	}
	return out
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
			resp.Servers = append(resp.Servers, configServer{ID: string(s.ID), RaftAddr: string(s.Address), Voter: s.Suffrage == raft.Voter})
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

// roundTargets returns the addresses to notify in one round: the join
// list's and, with Config.Discover, those it finds now. A failed lookup
// keeps the addresses found before (DNS may lag the nodes' start) and is
// logged at most every refusalLogInterval.
func (n *Node) roundTargets(ctx context.Context, listed []string) []string {
	if n.cfg.Discover == nil {
		return listed
	}
	found, err := n.cfg.Discover(ctx)
	n.boot.mu.Lock()
	if err == nil {
		n.boot.discovered = found
	} else if time.Since(n.boot.lastDiscoverErr) >= refusalLogInterval {
		n.boot.lastDiscoverErr = time.Now()
		n.logger.Warn("discovery failed: notifying the nodes found before", "error", err, "found_before", n.boot.discovered)
	}
	found = n.boot.discovered
	n.boot.mu.Unlock()
	return n.withoutSelf(append(slices.Clone(listed), found...))
}

// discoveredAddrs returns the addresses Config.Discover last found.
func (n *Node) discoveredAddrs() []string {
	n.boot.mu.Lock()
	defer n.boot.mu.Unlock()
	return slices.Clone(n.boot.discovered)
}

// resolvesToListed reports whether the host name of addr resolves to an
// address that, with addr's port, is listed: a voter advertising a
// stable name (a StatefulSet pod's) that DNS discovery found by its IP.
// Only with Config.Discover; an IP address or a failed lookup is not.
func (n *Node) resolvesToListed(ctx context.Context, addr string, listed map[string]bool) bool {
	host, port, err := net.SplitHostPort(addr)
	if n.cfg.Discover == nil || err != nil || net.ParseIP(host) != nil {
		return false
	}
	resolver := n.cfg.Resolver
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	defer cancel()
	ips, err := resolver.LookupHost(ctx, host)
	if err != nil {
		n.logger.Debug("resolving a voter's host name failed", "addr", addr, "error", err)
		return false
	}
	return slices.ContainsFunc(ips, func(ip string) bool { return listed[net.JoinHostPort(ip, port)] })
}
