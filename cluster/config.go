package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"net"
	"net/url"
	"strings"
	"time"
)

// Defaults for the zero fields of a Config (see WithDefaults).
//
// The timings aim at less than one second of write unavailability when a
// leader dies, on a LAN or loopback. A follower notices a silent leader after
// a randomized HeartbeatTimeout..2*HeartbeatTimeout (hashicorp/raft checks
// last contact on a random timer in that range) and an election over a fast
// network takes milliseconds: with 350 ms, kill -9 of the leader measured
// 0.64-0.88 s of unavailability (median 0.70 s; 1.32 s with 500 ms). The
// leader sends heartbeats every HeartbeatTimeout/10 (35 ms), so a few lost or
// delayed heartbeats, a GC pause or an fsync stall do not cause a spurious
// election: none occurred with three nodes on two cores under 32 writers, nor
// while all three snapshotted a 500 MB database back to back. Going much
// lower trades stability on loaded machines (and under the race detector) for
// little gain. ElectionTimeout equals HeartbeatTimeout (raft
// requires >=); candidates randomize it, which breaks split votes.
// LeaderLeaseTimeout is how long a leader keeps leading without hearing
// from a quorum: 300 ms makes a partitioned old leader step down (failing
// its pending writes as api.ErrLeadershipLost) before a follower can time out
// and elect a new one (no sooner than 350 ms), so two leaders rarely accept
// writes at the same time, yet rides out the whole-machine stalls of
// 60-220 ms measured on two cores under load while large entries are
// written (half the heartbeat timeout, the earlier value, did not: a leader
// stepped down in most runs of 50 MB inserts). CommitTimeout is how long an idle leader waits
// before sending an (empty) AppendEntries that carries the new commit index:
// 20 ms keeps followers within a few tens of milliseconds of the leader
// (follower reads, min_index, read-index waits) at ~50 tiny RPCs/s per
// follower.
const (
	DefaultHeartbeatTimeout   = 350 * time.Millisecond
	DefaultElectionTimeout    = 350 * time.Millisecond
	DefaultLeaderLeaseTimeout = 300 * time.Millisecond
	DefaultCommitTimeout      = 20 * time.Millisecond
	// DefaultSnapshotThreshold is the number of log entries since the last
	// snapshot that makes raft take a new one (and then truncate the log).
	DefaultSnapshotThreshold = 8192
	// DefaultSnapshotInterval is how often raft checks the threshold.
	DefaultSnapshotInterval = 10 * time.Second
	// DefaultSnapshotWALSize is the WAL size that triggers a snapshot.
	DefaultSnapshotWALSize = 64 << 20
	// DefaultSnapshotLogSize is the size of the log entries stored since
	// the last snapshot that triggers one. A restart reads those entries
	// twice (raft scans them, then re-delivers them to the FSM), at a few
	// hundred MB/s from a cold disk: 64 MiB keeps that well under a second
	// while large writes still take a snapshot only every 64 MiB.
	DefaultSnapshotLogSize = 64 << 20
	// DefaultTrailingLogs is how many entries stay in the log after a
	// snapshot, so a briefly lagging follower catches up from the log
	// rather than by a full snapshot install.
	DefaultTrailingLogs = 10240
	// DefaultMaxAppendEntries is the most entries per AppendEntries RPC and
	// per FSM batch (one SQLite transaction), and the depth of the apply
	// queue that lets concurrent writes pipeline. Raft caps it at 1024.
	DefaultMaxAppendEntries = 512
	// DefaultMaxEntryBytes bounds one log entry; a write that encodes to
	// more is proposed in parts of at most this size (fsm.CmdChunk), which
	// the state machine applies whole at the last. hashicorp/raft's
	// network transport decodes an entry's data with go-msgpack, which
	// grows the buffer in 256 KiB steps and copies it at each: the cost on
	// every follower is quadratic in the entry's size (one 50 MB entry
	// allocated about 5 GB there, and the load cost the leader its
	// leadership; 16 MiB entries still did now and then on two loaded
	// cores). A 1 MiB entry costs four small copies; etcd's default is
	// 1.5 MiB.
	DefaultMaxEntryBytes = 1 << 20
	// minMaxEntryBytes is the smallest MaxEntryBytes: room for a part's
	// data beside its header.
	minMaxEntryBytes = 4 << 10
	// DefaultApplyTimeout bounds a write whose context has no deadline.
	DefaultApplyTimeout = 10 * time.Second
	// DefaultJoinAttempts and DefaultJoinInterval: a joining node asks each
	// join address in turn, up to JoinAttempts rounds, sleeping
	// JoinInterval, then doubling up to maxJoinInterval (2+4+8+10 s: about
	// half a minute in all).
	DefaultJoinAttempts = 5
	DefaultJoinInterval = 2 * time.Second
	// DefaultBootstrapExpectTimeout bounds the wait for BootstrapExpect
	// nodes to find each other.
	DefaultBootstrapExpectTimeout = 2 * time.Minute
	// DefaultPromoteMaxLag is how many log entries a learner's database
	// may be behind the leader's and still be promoted to voter. A learner
	// that keeps up with writes is a few entries behind at most; one still
	// installing a snapshot or replaying the log is far more. Promoting a
	// lagging learner is safe but makes it a voter that cannot yet help
	// commit: with one more voter down, writes would stall until it
	// caught up.
	DefaultPromoteMaxLag = 1000
	// DefaultCloseTimeout bounds Raft's shutdown in Close.
	DefaultCloseTimeout = 10 * time.Second
	// DefaultRaftLogLevel: raft's own default is DEBUG, far too chatty.
	DefaultRaftLogLevel = "warn"

	maxJoinInterval = 10 * time.Second
	// logCacheSize and logCacheBytes bound the recent log entries kept in
	// memory in front of the BoltDB log store (replication to followers
	// reads them): 512 small entries, or 32 MiB of large ones.
	logCacheSize  = 512
	logCacheBytes = 32 << 20
	// snapshotRetain is how many snapshots the snapshot store keeps.
	snapshotRetain = 2
	// transportMaxPool is how many idle connections NetworkTransport keeps
	// per peer.
	transportMaxPool = 3
	// transportTimeout is NetworkTransport's I/O deadline (scaled up for
	// snapshot installs by raft).
	transportTimeout = 10 * time.Second
)

// Config is what a Node needs to run. Zero fields take the documented
// defaults (Default* constants); see WithDefaults and Validate.
type Config struct {
	// NodeID is this node's unique, stable Raft server ID. Required.
	NodeID string
	// RaftAddr is the TCP address to bind for Raft and the cluster service,
	// e.g. "127.0.0.1:4002". Required unless Listener is set.
	RaftAddr string
	// RaftAdvAddr is the Raft address other nodes use to reach this one.
	// Default: RaftAddr as actually bound (so port 0 resolves to the chosen
	// port). Required when RaftAddr binds all interfaces (0.0.0.0, ::).
	RaftAdvAddr string
	// APIAdvAddr is the URL of this node's HTTP API as other nodes and
	// clients reach it, e.g. "http://127.0.0.1:4001". Required: it is
	// replicated so that any node can forward requests to the leader.
	APIAdvAddr string
	// Dir is the node's data directory; Raft state lives in Dir/raft
	// (raft.db, snapshots/). Required.
	Dir string
	// Listener, when set, is used instead of binding RaftAddr (the node
	// takes ownership and closes it). Useful for tests and socket
	// activation; RaftAddr is then ignored.
	Listener net.Listener

	// ServerTLS, when set, makes the Raft port accept TLS connections only,
	// with this configuration (its ClientAuth decides whether other nodes
	// must present a trusted certificate). Raft, joins, notifications,
	// read indexes, forwarded membership changes and snapshots all travel
	// on that port. Set ClientTLS with it.
	ServerTLS *tls.Config
	// ClientTLS returns the TLS configuration of a connection this node
	// opens to the Raft port of the node at addr (host:port). It is called
	// for every connection, so that it can follow certificate files
	// replaced while the node runs. Required with ServerTLS.
	ClientTLS func(addr string) *tls.Config

	// Join lists Raft addresses of (prospective) cluster members. Without
	// BootstrapExpect, a new node asks them to add it. It may include this
	// node's own address, which is skipped. Ignored when Raft state exists.
	Join []string
	// BootstrapExpect, when > 1, makes new nodes exchange notifications with
	// the Join addresses until BootstrapExpect distinct nodes (this one
	// included) have found each other, and then bootstrap a cluster of
	// exactly those nodes. A running cluster reported at a Join address is
	// joined only if every voter is at a Join address and it has at least
	// BootstrapExpect voters; any other is refused (see Node.Form).
	BootstrapExpect int
	// BootstrapExpectTimeout bounds that wait. Default 2m.
	BootstrapExpectTimeout time.Duration
	// Discover, when set, finds the join addresses anew at each round of
	// bootstrap notifications, beside Join (which may then be empty): DNS
	// discovery, where the nodes' addresses appear in DNS as they start.
	// It needs BootstrapExpect. A running cluster is joined when its
	// voters are at addresses Join lists or Discover found, by name or
	// by the addresses Resolver finds for the name.
	Discover func(ctx context.Context) ([]string, error)
	// Resolver resolves the host names of a running cluster's voters for
	// that comparison; nil: net.DefaultResolver.
	Resolver *net.Resolver
	// JoinAttempts and JoinInterval control the join retry loop. Defaults 5
	// and 2s (doubling, capped at 10s).
	JoinAttempts int
	JoinInterval time.Duration
	// NonVoter joins this node as a read-only member (it replicates but does
	// not vote). Only used when joining.
	NonVoter bool
	// PromoteMaxLag is how many entries a learner may lag the leader's
	// committed index and still be promoted (Promote).
	PromoteMaxLag uint64

	// Raft timings; see the Default* constants for the reasoning.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration

	// SnapshotThreshold, SnapshotInterval, TrailingLogs: log compaction.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	TrailingLogs      uint64
	// SnapshotWALSize also triggers a snapshot, and then truncates the
	// WAL, when the database's WAL file grows past this many bytes
	// (default DefaultSnapshotWALSize; negative: never).
	SnapshotWALSize int64
	// SnapshotLogSize also triggers a snapshot when the log entries stored
	// since the last snapshot pass this many bytes (default
	// DefaultSnapshotLogSize; negative: never). SnapshotThreshold counts
	// entries whatever their size, so without it a few hundred large
	// writes make a log of hundreds of megabytes that every restart reads
	// through before the node can serve.
	SnapshotLogSize int64
	// MaxAppendEntries: 1..1024.
	MaxAppendEntries int
	// MaxEntryBytes bounds the encoded size of one log entry: a larger
	// write is proposed in parts (at most 1024; beyond, it fails with
	// api.ErrEntryTooLarge before anything is proposed), and concurrent
	// writes are gathered into entries of at most this size. Default
	// DefaultMaxEntryBytes.
	MaxEntryBytes int

	// AutoVacuumInterval, when positive, makes the leader propose a VACUUM
	// that often (rqlited's -auto-vacuum-int). Zero: never.
	AutoVacuumInterval time.Duration

	// ApplyTimeout bounds Execute (and other proposals) when the context
	// has no deadline. Default 10s.
	ApplyTimeout time.Duration
	// CloseTimeout bounds Raft's shutdown in Close. Default 10s.
	CloseTimeout time.Duration
	// ReadLease lets the leader answer read-index requests (linearizable
	// reads) without a quorum round for leaseFraction of HeartbeatTimeout
	// after a round succeeded (see readLease for why that is safe). It
	// assumes the monotonic clocks of the nodes run at nearly the same rate,
	// which holds on one machine and, to a far finer degree than the lease's
	// margin, between machines. Off (the zero value), every read index
	// costs a round, batched with concurrent ones.
	ReadLease bool
	// ReapTimeout and ReapReadOnlyTimeout make the leader remove voters and
	// non-voters that its heartbeats have not reached for longer (rqlite's
	// -raft-reap-node-timeout and -raft-reap-read-only-node-timeout); zero
	// never. The clock restarts with every new leader, so set them on every
	// voter.
	ReapTimeout         time.Duration
	ReapReadOnlyTimeout time.Duration
	// StepDownOnClose makes a leader hand leadership to another voter
	// before shutting down, which shortens the unavailability of a planned
	// restart from an election timeout to a round trip.
	StepDownOnClose bool

	// Startup, when set, is kept up to date by Open with how far the start
	// has got, so that the caller can report it while Open runs.
	Startup *Startup

	// Metrics is where the node registers its Prometheus metrics (see
	// metrics.go); nil registers them nowhere. One node per registry.
	Metrics prometheus.Registerer

	// RaftLogLevel is the minimum level of hashicorp/raft's own log lines
	// passed on to the node's slog logger: "trace", "debug", "info",
	// "warn" (default) or "error".
	RaftLogLevel string
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&c.HeartbeatTimeout, DefaultHeartbeatTimeout)
	setDur(&c.ElectionTimeout, DefaultElectionTimeout)
	setDur(&c.LeaderLeaseTimeout, DefaultLeaderLeaseTimeout)
	setDur(&c.CommitTimeout, DefaultCommitTimeout)
	setDur(&c.SnapshotInterval, DefaultSnapshotInterval)
	setDur(&c.ApplyTimeout, DefaultApplyTimeout)
	setDur(&c.CloseTimeout, DefaultCloseTimeout)
	setDur(&c.JoinInterval, DefaultJoinInterval)
	setDur(&c.BootstrapExpectTimeout, DefaultBootstrapExpectTimeout)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = DefaultSnapshotThreshold
	}
	if c.SnapshotWALSize == 0 {
		c.SnapshotWALSize = DefaultSnapshotWALSize
	}
	if c.SnapshotLogSize == 0 {
		c.SnapshotLogSize = DefaultSnapshotLogSize
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = DefaultTrailingLogs
	}
	if c.MaxAppendEntries == 0 {
		c.MaxAppendEntries = DefaultMaxAppendEntries
	}
	if c.MaxEntryBytes == 0 {
		c.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if c.JoinAttempts == 0 {
		c.JoinAttempts = DefaultJoinAttempts
	}
	if c.PromoteMaxLag == 0 {
		c.PromoteMaxLag = DefaultPromoteMaxLag
	}
	if c.RaftLogLevel == "" {
		c.RaftLogLevel = DefaultRaftLogLevel
	}
	if c.Listener != nil {
		c.RaftAddr = c.Listener.Addr().String()
	}
	if c.RaftAdvAddr == "" {
		c.RaftAdvAddr = c.RaftAddr
	}
	return c
}

// Validate reports the first problem with c (after defaults are applied).
func (c Config) Validate() error {
	c = c.WithDefaults()
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	if strings.TrimSpace(c.NodeID) == "" {
		bad("node ID is required")
	} else if strings.ContainsAny(c.NodeID, " \t\r\n") || len(c.NodeID) > 256 {
		bad("node ID %q must be at most 256 characters without whitespace", c.NodeID)
	}
	if c.Dir == "" {
		bad("data directory is required")
	}
	if c.Listener == nil {
		if _, _, err := net.SplitHostPort(c.RaftAddr); err != nil {
			bad("raft address %q: %w", c.RaftAddr, err)
		}
	}
	// The advertised address is resolved against the bound port in Open when
	// it is left empty; here only an explicit one can be checked.
	if host, port, err := net.SplitHostPort(c.RaftAdvAddr); err != nil {
		bad("raft advertise address %q: %w", c.RaftAdvAddr, err)
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		bad("raft advertise address %q is not reachable by other nodes: set an explicit advertise address", c.RaftAdvAddr)
	} else if port == "0" && c.Listener == nil && c.RaftAdvAddr != c.RaftAddr {
		bad("raft advertise address %q needs a port", c.RaftAdvAddr)
	}
	if c.APIAdvAddr == "" {
		bad("API advertise address is required")
	} else if u, err := url.Parse(c.APIAdvAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("API advertise address %q must be an http(s) URL such as http://127.0.0.1:4001", c.APIAdvAddr)
	}
	for _, j := range c.Join {
		if host, port, err := net.SplitHostPort(joinRaftAddr(j)); err != nil {
			bad("join address %q: %w", j, err)
		} else if host == "" || port == "" {
			bad("join address %q must name a host and the Raft port, e.g. 10.0.0.1:4002", j)
		}
	}
	if (c.ServerTLS == nil) != (c.ClientTLS == nil) {
		bad("node TLS needs both a server and a client configuration")
	}
	if c.BootstrapExpect < 0 {
		bad("bootstrap-expect must not be negative")
	}
	if c.Discover != nil && c.BootstrapExpect < 2 {
		bad("discovery needs bootstrap-expect of at least 2")
	}
	if c.BootstrapExpect > 1 && len(c.Join) == 0 && c.Discover == nil {
		bad("bootstrap-expect %d needs join addresses of the other nodes", c.BootstrapExpect)
	}
	if c.NonVoter && (len(c.Join) == 0 || c.BootstrapExpect > 0) {
		bad("a non-voter joins a running cluster: it needs join addresses and no bootstrap-expect")
	}
	if c.HeartbeatTimeout < 5*time.Millisecond || c.ElectionTimeout < 5*time.Millisecond ||
		c.LeaderLeaseTimeout < 5*time.Millisecond || c.CommitTimeout < time.Millisecond {
		bad("raft timeouts are too low (heartbeat, election, lease >= 5ms; commit >= 1ms)")
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("leader lease timeout %s must not exceed heartbeat timeout %s", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		bad("election timeout %s must be at least the heartbeat timeout %s", c.ElectionTimeout, c.HeartbeatTimeout)
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		bad("snapshot interval %s is too low", c.SnapshotInterval)
	}
	if c.MaxEntryBytes < minMaxEntryBytes {
		bad("max entry bytes %d must be at least %d", c.MaxEntryBytes, minMaxEntryBytes)
	}
	if c.MaxAppendEntries < 1 || c.MaxAppendEntries > 1024 {
		bad("max append entries %d must be within 1..1024", c.MaxAppendEntries)
	}
	if c.ApplyTimeout < 0 || c.CloseTimeout < 0 || c.JoinInterval < 0 || c.BootstrapExpectTimeout < 0 {
		bad("timeouts must not be negative")
	}
	if c.ReapTimeout < 0 || c.ReapReadOnlyTimeout < 0 {
		bad("reap timeouts must not be negative")
	}
	if c.JoinAttempts < 0 {
		bad("join attempts must not be negative")
	}
	if _, ok := parseRaftLogLevel(c.RaftLogLevel); !ok {
		bad("raft log level %q must be trace, debug, info, warn or error", c.RaftLogLevel)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cluster config: %w", errors.Join(errs...))
	}
	return nil
}
