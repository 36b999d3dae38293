package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/raftlite/raftlite/cluster"
	"github.com/raftlite/raftlite/fsm"
	"github.com/raftlite/raftlite/sqlapi"
)

// This file makes `raftlite serve` accept every flag of rqlited (v10,
// cmd/rqlited/config_flags.go) that a deployment script may pass, so that
// such a script runs with raftlite in rqlited's place. A flag with a
// meaning here is implemented (rqlitedFlags); any other is accepted and,
// when set, logged as one WARN line saying why it is ignored
// (ignoredFlags). serve.go defines raftlite's own flags and the ones that
// other work implements (TLS, learners, ...); flagGroups sorts them all
// into the sections of `raftlite serve -h`.

// rqlitedFlags are the rqlited flags raftlite implements beyond those
// serve.go defines. Defaults are raftlite's (its Raft timings are tuned
// for its read lease; see cluster.Config), not rqlited's.
type rqlitedFlags struct {
	showVersion bool

	joinAttempts           int
	joinInterval           time.Duration
	bootstrapExpectTimeout time.Duration

	heartbeatTimeout   time.Duration
	electionTimeout    time.Duration
	leaderLeaseTimeout time.Duration
	commitTimeout      time.Duration
	applyTimeout       time.Duration

	queueCapacity  int
	queueBatchSize int
	queueTimeout   time.Duration
	queueTx        bool

	onDiskPath  string
	allowOrigin string

	discoMode, discoConfig string
	// disco is the DNS discovery -disco-mode asks for; nil without.
	disco *dnsDiscovery

	// ignoredSet holds what ignored flags were given, filled by
	// register's flag.Values.
	ignoredSet map[string]string
}

func (r *rqlitedFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&r.showVersion, "version", false, "print the version and exit")
	fs.IntVar(&r.joinAttempts, "join-attempts", cluster.DefaultJoinAttempts, "number of times a node tries each -join address before giving up")
	fs.DurationVar(&r.joinInterval, "join-interval", cluster.DefaultJoinInterval, "time between join attempts")
	fs.DurationVar(&r.bootstrapExpectTimeout, "bootstrap-expect-timeout", cluster.DefaultBootstrapExpectTimeout, "maximum time to wait for -bootstrap-expect nodes")
	heartbeat := "time a follower waits without contact from the leader before it starts an election"
	fs.DurationVar(&r.heartbeatTimeout, "raft-heartbeat-timeout", cluster.DefaultHeartbeatTimeout, "Raft heartbeat timeout: "+heartbeat)
	fs.DurationVar(&r.heartbeatTimeout, "raft-timeout", cluster.DefaultHeartbeatTimeout, "rqlited's older name of -raft-heartbeat-timeout")
	fs.DurationVar(&r.electionTimeout, "raft-election-timeout", cluster.DefaultElectionTimeout, "Raft election timeout: time a candidate waits before starting a new election")
	fs.DurationVar(&r.leaderLeaseTimeout, "raft-leader-lease-timeout", 0, fmt.Sprintf("how long a leader stays leader without contact with a quorum (0: %s, or the heartbeat timeout if shorter)", cluster.DefaultLeaderLeaseTimeout))
	fs.DurationVar(&r.commitTimeout, "raft-commit-timeout", cluster.DefaultCommitTimeout, "Raft commit timeout")
	fs.DurationVar(&r.applyTimeout, "raft-apply-timeout", cluster.DefaultApplyTimeout, "longest wait for a write's log entry to be committed and applied")
	fs.IntVar(&r.queueCapacity, "write-queue-capacity", sqlapi.DefaultQueueCapacity, "queued write requests (?queue) that may wait before new ones are refused")
	fs.IntVar(&r.queueBatchSize, "write-queue-batch-size", sqlapi.DefaultQueueBatchSize, "queued statements that make one log entry")
	fs.DurationVar(&r.queueTimeout, "write-queue-timeout", sqlapi.DefaultQueueTimeout, "time a queued batch waits to fill before it is sent")
	fs.BoolVar(&r.queueTx, "write-queue-tx", false, "apply each queued batch in one transaction")
	fs.StringVar(&r.onDiskPath, "on-disk-path", "", "path of the SQLite file; its directory holds the database (the file is always named "+fsm.DBFile+")")
	fs.StringVar(&r.allowOrigin, "http-allow-origin", "", "value of the Access-Control-Allow-Origin header on every answer")
	fs.StringVar(&r.discoMode, "disco-mode", "", "find the nodes to bootstrap with (-bootstrap-expect) by DNS: dns (the addresses of a name) or dns-srv (its SRV records); "+
		"the lookup is repeated until the cluster forms. "+dnsResolverEnv+"=host:port sends the lookups to that DNS server")
	fs.StringVar(&r.discoConfig, "disco-config", "", `-disco-mode's settings as JSON: {"name":"raftlite-headless","port":4002} for dns (port: the nodes' Raft port, default 4002), {"name":"raftlite.local","service":"raft"} for dns-srv`)

	r.ignoredSet = map[string]string{}
	for _, ig := range ignoredFlags {
		fs.Var(&ignoredValue{flag: ig, set: r.ignoredSet}, ig.name, "ignored: "+ig.why)
	}
}

// validate checks the values and turns rqlited's conventions into
// raftlite's.
func (r *rqlitedFlags) validate() error {
	if r.joinAttempts < 1 {
		return fmt.Errorf("-join-attempts must be at least 1")
	}
	for name, d := range map[string]time.Duration{
		"-join-interval": r.joinInterval, "-bootstrap-expect-timeout": r.bootstrapExpectTimeout,
		"-raft-heartbeat-timeout": r.heartbeatTimeout, "-raft-election-timeout": r.electionTimeout,
		"-raft-commit-timeout": r.commitTimeout, "-raft-apply-timeout": r.applyTimeout, "-write-queue-timeout": r.queueTimeout,
	} {
		if d <= 0 {
			return fmt.Errorf("%s must be positive", name)
		}
	}
	if r.leaderLeaseTimeout < 0 {
		return fmt.Errorf("-raft-leader-lease-timeout must not be negative")
	}
	if r.queueCapacity < 1 || r.queueBatchSize < 1 {
		return fmt.Errorf("-write-queue-capacity and -write-queue-batch-size must be at least 1")
	}
	var err error
	r.disco, err = newDNSDiscovery(r.discoMode, r.discoConfig, os.Getenv)
	return err
}

// applyCluster sets what these flags mean for the node.
func (r *rqlitedFlags) applyCluster(c *cluster.Config) {
	c.JoinAttempts = r.joinAttempts
	c.JoinInterval = r.joinInterval
	c.BootstrapExpectTimeout = r.bootstrapExpectTimeout
	c.HeartbeatTimeout = r.heartbeatTimeout
	c.ElectionTimeout = r.electionTimeout
	c.LeaderLeaseTimeout = r.leaderLeaseTimeout
	if c.LeaderLeaseTimeout == 0 {
		// Raft refuses a lease longer than the heartbeat timeout.
		c.LeaderLeaseTimeout = min(cluster.DefaultLeaderLeaseTimeout, r.heartbeatTimeout)
	}
	c.CommitTimeout = r.commitTimeout
	c.ApplyTimeout = r.applyTimeout
	if r.disco != nil {
		c.Discover, c.Resolver = r.disco.addrs, r.disco.resolver
	}
}

// applyAPI sets what these flags mean for the HTTP API.
func (r *rqlitedFlags) applyAPI(c *sqlapi.Config) {
	c.QueueCapacity = r.queueCapacity
	c.QueueBatchSize = r.queueBatchSize
	c.QueueTimeout = r.queueTimeout
	c.QueueTx = r.queueTx
	c.AllowOrigin = r.allowOrigin
}

// dbDir is the database's directory: -on-disk-path's, else dataDir/db.
func (r *rqlitedFlags) dbDir(dataDir string) string {
	if r.onDiskPath == "" {
		return filepath.Join(dataDir, "db")
	}
	return filepath.Dir(r.onDiskPath)
}

// warnings are the one-line WARN messages of the flags given that raftlite
// ignores or reads differently, in flag order.
func (r *rqlitedFlags) warnings() []string {
	var out []string
	names := make([]string, 0, len(r.ignoredSet))
	for name := range r.ignoredSet {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, fmt.Sprintf("flag -%s ignored: %s", name, ignoredWhy(name)))
	}
	if r.onDiskPath != "" && filepath.Base(r.onDiskPath) != fsm.DBFile {
		out = append(out, fmt.Sprintf("flag -on-disk-path: the database file is %s (raftlite names it %s)",
			filepath.Join(filepath.Dir(r.onDiskPath), fsm.DBFile), fsm.DBFile))
	}
	return out
}

// ignoredFlag is an rqlited flag with no meaning in raftlite.
type ignoredFlag struct {
	name string
	bool bool // takes no value (-name alone is true)
	why  string
}

// Reasons shared by several ignored flags.
const (
	whyOTLP    = "OpenTelemetry export is not supported; scrape /metrics (Prometheus)"
	whyDisco   = "discovery through Consul or etcd is not supported; use -disco-mode dns or dns-srv, or -join with -bootstrap-expect"
	whyProfile = "profiles are served at /debug/pprof"
)

// ignoredFlags are rqlited's flags that raftlite accepts and ignores, with
// why.
var ignoredFlags = []ignoredFlag{
	{name: "extensions-path", why: "SQLite extensions cannot be loaded into raftlite's pure-Go SQLite"},
	{name: "http-verify-common-name", why: "client certificate common names are not checked"},
	{name: "node-verify-common-name", why: "peer certificate common names are not checked"},
	{name: "join-as", why: "joining uses the Raft port, which takes no HTTP credentials"},
	{name: "cluster-connect-timeout", why: "inter-node connections use the Raft transport's own timeouts"},
	{name: "compress-snap-transport", bool: true, why: "snapshots are always sent compressed"},
	{name: "disco-key", why: whyDisco},
	{name: "raft-remove-shutdown", bool: true, why: "a removed node stops taking part in Raft by itself"},
	{name: "db-max-ro-conns", why: "the read connection pool is sized by raftlite"},
	{name: "auto-optimize-int", why: "PRAGMA optimize is not run automatically"},
	{name: "auto-backup", why: "automatic backups to cloud storage are not supported; use GET /db/backup"},
	{name: "auto-restore", why: "automatic restores from cloud storage are not supported; use POST /db/load"},
	{name: "cdc-config", why: "change data capture is not supported"},
	{name: "otlp-endpoint", why: whyOTLP},
	{name: "otlp-metrics-interval", why: whyOTLP},
	{name: "otlp-insecure", bool: true, why: whyOTLP},
	{name: "otlp-no-verify", bool: true, why: whyOTLP},
	{name: "otlp-ca-cert", why: whyOTLP},
	{name: "otlp-cert", why: whyOTLP},
	{name: "otlp-key", why: whyOTLP},
	{name: "cpu-profile", why: whyProfile},
	{name: "mem-profile", why: whyProfile},
	{name: "trace-profile", why: whyProfile},
}

func ignoredWhy(name string) string {
	for _, ig := range ignoredFlags {
		if ig.name == name {
			return ig.why
		}
	}
	return ""
}

// ignoredValue accepts any value for an ignored flag and remembers that it
// was given.
type ignoredValue struct {
	flag ignoredFlag
	set  map[string]string
}

func (v *ignoredValue) String() string { return "" }

func (v *ignoredValue) Set(s string) error {
	if v.flag.bool && s == "" {
		s = "true"
	}
	v.set[v.flag.name] = s
	return nil
}

// IsBoolFlag lets a boolean rqlited flag be given without a value.
func (v *ignoredValue) IsBoolFlag() bool { return v.flag.bool }

// The sections of `raftlite serve -h`, in order. A flag not listed in
// flagGroups is shown under groupOther.
const (
	groupNode   = "Node"
	groupHTTP   = "HTTP"
	groupRaft   = "Raft"
	groupClust  = "Cluster"
	groupTLS    = "TLS"
	groupCompat = "rqlited compatibility (accepted, ignored with a WARN when set)"
	groupOther  = "Other"
)

var groupOrder = []string{groupNode, groupHTTP, groupRaft, groupClust, groupTLS, groupOther, groupCompat}

// flagGroups sorts flags into the sections of -h. It names flags defined
// elsewhere too (serve.go, the TLS and membership work), so that each
// slots in where an rqlited user looks for it.
var flagGroups = map[string]string{
	"node-id": groupNode, "version": groupNode, "log-level": groupNode, "log-format": groupNode, "on-disk-path": groupNode,
	"session-ttl": groupNode, "watch-retention": groupNode, "fk": groupNode, "auto-vacuum-int": groupNode,

	"http-addr": groupHTTP, "http-adv-addr": groupHTTP, "auth": groupHTTP, "http-allow-origin": groupHTTP,
	"load-max-bytes": groupHTTP, "write-queue-capacity": groupHTTP, "write-queue-batch-size": groupHTTP,
	"write-queue-timeout": groupHTTP, "write-queue-tx": groupHTTP,

	"raft-addr": groupRaft, "raft-adv-addr": groupRaft, "raft-log-level": groupRaft, "raft-snap": groupRaft,
	"raft-snap-int": groupRaft, "raft-snap-wal-size": groupRaft, "raft-snap-log-size": groupRaft,
	"raft-max-entry-bytes": groupRaft, "raft-heartbeat-timeout": groupRaft, "raft-timeout": groupRaft,
	"raft-election-timeout": groupRaft, "raft-leader-lease-timeout": groupRaft, "raft-commit-timeout": groupRaft,
	"raft-apply-timeout": groupRaft, "read-lease": groupRaft, "raft-shutdown-stepdown": groupRaft,

	"join": groupClust, "join-attempts": groupClust, "join-interval": groupClust, "bootstrap-expect": groupClust,
	"bootstrap-expect-timeout": groupClust, "disco-mode": groupClust, "disco-config": groupClust, "raft-non-voter": groupClust, "raft-reap-node-timeout": groupClust,
	"raft-reap-read-only-node-timeout": groupClust, "raft-cluster-remove-shutdown": groupClust,

	"http-cert": groupTLS, "http-key": groupTLS, "http-ca-cert": groupTLS, "http-verify-client": groupTLS,
	"node-cert": groupTLS, "node-key": groupTLS, "node-ca-cert": groupTLS, "node-no-verify": groupTLS,
	"node-verify-client": groupTLS, "node-verify-server-name": groupTLS,
}

func groupOf(name string) string {
	if g, ok := flagGroups[name]; ok {
		return g
	}
	for _, ig := range ignoredFlags {
		if ig.name == name {
			return groupCompat
		}
	}
	return groupOther
}

// printGroupedUsage prints fs's flags in the sections of groupOrder, each
// as flag.PrintDefaults prints them.
func printGroupedUsage(fs *flag.FlagSet, w io.Writer) {
	byGroup := map[string][]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { byGroup[groupOf(f.Name)] = append(byGroup[groupOf(f.Name)], f) })
	for _, g := range groupOrder {
		if len(byGroup[g]) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, f := range byGroup[g] {
			kind, usage := flag.UnquoteUsage(f)
			line := "  -" + f.Name
			if kind != "" {
				line += " " + kind
			}
			usage = strings.ReplaceAll(usage, "\n", "\n    \t")
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
				usage += fmt.Sprintf(" (default %s)", f.DefValue)
			}
			fmt.Fprintf(w, "%s\n    \t%s\n", line, usage)
		}
	}
}
