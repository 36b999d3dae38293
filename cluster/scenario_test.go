package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/raftlite/raftlite/api"
)

// settleTimeout bounds every wait of a scenario command that has no
// within= argument: long enough for an election and a catch-up under the
// race detector on a loaded two-core machine.
const settleTimeout = 10 * time.Second

// unreachableAddr is a Raft address nothing listens on (join via=unreachable).
const unreachableAddr = "127.0.0.1:1"

// TestScenarios runs the cluster scenarios in testdata/scenarios, one
// in-process cluster per file: real Raft over loopback TCP, real SQLite.
// The commands are described on scenario.run; go test -run TestScenarios
// -rewrite regenerates the expected output.
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		s := &scenario{t: t, nodes: map[string]*testNode{}, names: map[string]string{}, aliases: map[string]string{}}
		datadriven.RunTest(t, path, s.run)
	})
}

// scenario is the state of one scenario file: its cluster and the names
// the script gave to nodes it picked by role (as=).
type scenario struct {
	t      *testing.T
	logger *slog.Logger
	g      *group               // every incarnation of every node
	nodes  map[string]*testNode // by node ID, the latest incarnation
	// names maps a node ID to the name the script bound it to, aliases
	// the other way. Output shows a node by its name, so that it does not
	// depend on which node an election picked.
	names   map[string]string
	aliases map[string]string
}

// run executes one command. Nodes are referred to by ID (node1, ...), by a
// name bound with as=, or by role: "leader" (waits until the live nodes
// agree on one) or "follower" (the live non-leader with the lowest ID).
//
//	start n=3                     a cluster of node1..nodeN (bootstrap-expect)
//	leader [as=NAME]              wait until the live nodes agree on a leader
//	stop node=REF [as=NAME]       close a node (no hand-over)
//	restart node=REF [api=URL]    open a stopped node on its directory and address
//	write [for=DURATION]          input lines: one request, one entry, on the
//	                              leader (retried on a new one: keep it idempotent);
//	                              for= repeats it that long
//	read node=REF [level=none|linearizable]   input: one query; prints its rows
//	wait-applied [node=REF] [within=DURATION] every live node (or REF) has
//	                              applied everything and holds the leader's data
//	members [node=REF]            the membership once all live nodes agree on it
//	join node=ID via=(REF, ...) [api=URL] [take-addr-of=REF]  a new node with an
//	                              empty directory joins through via
//	                              ("unreachable" is an address nobody serves)
//	join-again node=REF           the node sends its join request once more
//	remove node=ID [via=REF]      remove a member through via (default: the
//	                              leader), and stop it if it runs
func (s *scenario) run(t *testing.T, td *datadriven.TestData) string {
	command, ok := scenarioCommands[td.Cmd]
	if !ok {
		td.Fatalf(t, "unknown command %q", td.Cmd)
	}
	return command(s, td)
}

// scenarioCommands are the commands run knows, by name.
var scenarioCommands = map[string]func(*scenario, *datadriven.TestData) string{
	"start":        (*scenario).start,
	"leader":       (*scenario).leader,
	"stop":         (*scenario).stop,
	"restart":      (*scenario).restart,
	"write":        (*scenario).write,
	"read":         (*scenario).read,
	"wait-applied": (*scenario).waitApplied,
	"members":      (*scenario).members,
	"join":         (*scenario).join,
	"join-again":   (*scenario).joinAgain,
	"remove":       (*scenario).remove,
}

func (s *scenario) start(td *datadriven.TestData) string {
	var n int
	td.ScanArgs(s.t, "n", &n)
	nodes := startCluster(s.t, n, nil)
	s.g, s.logger = nodes[0].g, nodes[0].logger
	var ids []string
	for _, tn := range nodes {
		s.nodes[tn.id] = tn
		ids = append(ids, tn.id)
	}
	return "started " + strings.Join(ids, " ")
}

func (s *scenario) leader(td *datadriven.TestData) string {
	leader, err := findLeader(s.g.live()...)
	if err != nil {
		return "error: " + err.Error()
	}
	s.bind(td, leader)
	return fmt.Sprintf("%d live nodes agree on a leader", len(s.g.live()))
}

func (s *scenario) stop(td *datadriven.TestData) string {
	tn := s.node(td, s.arg(td, "node"))
	s.bind(td, tn)
	tn.stop()
	return "stopped " + s.name(tn)
}

// arg returns a required single-valued argument.
func (s *scenario) arg(td *datadriven.TestData, key string) string {
	var v string
	td.ScanArgs(s.t, key, &v)
	return v
}

// optArg returns an optional single-valued argument, or def.
func (s *scenario) optArg(td *datadriven.TestData, key, def string) string {
	v := def
	td.MaybeScanArgs(s.t, key, &v)
	return v
}

// duration returns an optional duration argument, or def.
func (s *scenario) duration(td *datadriven.TestData, key string, def time.Duration) time.Duration {
	v := s.optArg(td, key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		td.Fatalf(s.t, "%s=%s: %v", key, v, err)
	}
	return d
}

// node resolves a node reference (see run).
func (s *scenario) node(td *datadriven.TestData, ref string) *testNode {
	switch ref {
	case "leader", "follower":
		leader, err := findLeader(s.g.live()...)
		if err != nil {
			td.Fatalf(s.t, "%s: %v", ref, err)
		}
		if ref == "leader" {
			return leader
		}
		live := s.g.live()
		slices.SortFunc(live, func(a, b *testNode) int { return strings.Compare(a.id, b.id) })
		for _, tn := range live {
			if tn != leader {
				return tn
			}
		}
		td.Fatalf(s.t, "no live follower")
	}
	id := ref
	if bound, ok := s.aliases[ref]; ok {
		id = bound
	}
	tn, ok := s.nodes[id]
	if !ok {
		td.Fatalf(s.t, "unknown node %q", ref)
	}
	return tn
}

// bind gives tn the name in the command's as= argument, if any.
func (s *scenario) bind(td *datadriven.TestData, tn *testNode) {
	name := s.optArg(td, "as", "")
	if name == "" {
		return
	}
	if old, ok := s.aliases[name]; ok {
		delete(s.names, old)
	}
	delete(s.aliases, s.names[tn.id])
	s.aliases[name] = tn.id
	s.names[tn.id] = name
}

// name is how output shows a node: by its bound name, else its ID.
func (s *scenario) name(tn *testNode) string {
	return s.nameOf(tn.id)
}

func (s *scenario) nameOf(id string) string {
	if name, ok := s.names[id]; ok {
		return name
	}
	return id
}

func (s *scenario) restart(td *datadriven.TestData) string {
	tn := s.node(td, s.arg(td, "node"))
	if api := s.optArg(td, "api", ""); api != "" {
		tn.cfg.APIAdvAddr = api
	}
	s.nodes[tn.id] = tn.restart()
	return "restarted " + s.name(tn)
}

func (s *scenario) write(td *datadriven.TestData) string {
	sqls := inputLines(td)
	if len(sqls) == 0 {
		td.Fatalf(s.t, "write: no statements")
	}
	repeatFor := s.duration(td, "for", 0)
	start := time.Now()
	for {
		out, err := runSQL(s.node(td, "leader"), sqls, "")
		if err != nil {
			return "error: " + err.Error()
		}
		if time.Since(start) >= repeatFor {
			return out
		}
	}
}

func (s *scenario) read(td *datadriven.TestData) string {
	tn := s.node(td, s.arg(td, "node"))
	sqls := inputLines(td)
	if len(sqls) != 1 {
		td.Fatalf(s.t, "read: want one query, got %d lines", len(sqls))
	}
	level := s.optArg(td, "level", "none")
	if level != "none" && level != "linearizable" {
		td.Fatalf(s.t, "read: unknown level %q", level)
	}
	out, err := runSQL(tn, sqls, level)
	if err != nil {
		return "error: " + err.Error()
	}
	return out
}

// inputLines returns the command's non-empty input lines.
func inputLines(td *datadriven.TestData) []string {
	var out []string
	for line := range strings.SplitSeq(td.Input, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// runSQL is the scenarios' one use of the statement and result types: with
// level "" it executes sqls in one request on the leader tn (tryExec), else
// it queries tn at that level, and it renders the results.
func runSQL(tn *testNode, sqls []string, level string) (string, error) {
	stmts := make([]api.Statement, len(sqls))
	for i, sql := range sqls {
		stmts[i] = stmt(sql)
	}
	var results []api.Result
	if level == "" {
		resp, err := tryExec(tn, stmts...)
		if err != nil {
			return "", err
		}
		results = resp.Results
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
		defer cancel()
		if level == "linearizable" {
			var index uint64
			err := retryElections(ctx, func() (err error) {
				index, err = tn.ReadIndex(ctx)
				return err
			})
			if err != nil {
				return "", fmt.Errorf("read index: %w", err)
			}
			if err := tn.WaitApplied(ctx, index); err != nil {
				return "", fmt.Errorf("wait for the read index: %w", err)
			}
		}
		var err error
		if results, err = tn.Query(ctx, &api.Request{Statements: stmts}); err != nil {
			return "", err
		}
	}
	var b strings.Builder
	for _, r := range results {
		switch {
		case r.Error != "":
			fmt.Fprintf(&b, "error: %s\n", r.Error)
		case r.IsQuery():
			b.WriteString(strings.Join(r.Columns, " | ") + "\n")
			for _, row := range r.Rows {
				vals := make([]string, len(row))
				for i, v := range row {
					vals[i] = formatValue(v)
				}
				b.WriteString(strings.Join(vals, " | ") + "\n")
			}
		case r.RowsAffected == 1:
			b.WriteString("1 row affected\n")
		default:
			fmt.Fprintf(&b, "%d rows affected\n", r.RowsAffected)
		}
	}
	return b.String(), nil
}

func formatValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "NULL"
	case []byte:
		return fmt.Sprintf("x'%x'", v)
	default:
		return fmt.Sprint(v)
	}
}

// waitApplied proposes a checksum marker on the leader and waits until the
// nodes have applied it and taken their checksum there: equal checksums
// mean equal databases as of everything written so far.
func (s *scenario) waitApplied(td *datadriven.TestData) string {
	within := s.duration(td, "within", settleTimeout)
	start := time.Now()
	targets := s.g.live()
	if ref := s.optArg(td, "node", ""); ref != "" {
		targets = []*testNode{s.node(td, ref)}
	}
	leader, index, err := s.checksumMarker(td)
	if err != nil {
		return "error: " + err.Error()
	}
	ctx, cancel := context.WithDeadline(context.Background(), start.Add(within))
	defer cancel()
	want, err := leader.ChecksumAt(ctx, index)
	if err != nil {
		return "error: leader checksum: " + err.Error()
	}
	var behind, differ []string
	for _, tn := range targets {
		got, err := tn.ChecksumAt(ctx, index)
		switch {
		case err != nil:
			tn.logger.Warn("scenario: not applied", "node", tn.id, "applied", tn.AppliedIndex(), "want", index, "error", err)
			behind = append(behind, s.name(tn))
		case got != want:
			differ = append(differ, s.name(tn))
		}
	}
	s.t.Logf("wait-applied: %s", time.Since(start).Round(time.Millisecond))
	slices.Sort(behind)
	slices.Sort(differ)
	var b strings.Builder
	if len(behind) > 0 {
		fmt.Fprintf(&b, "not applied within %s: %s\n", within, strings.Join(behind, " "))
	}
	if len(differ) > 0 {
		fmt.Fprintf(&b, "data differs from the leader's: %s\n", strings.Join(differ, " "))
	}
	if b.Len() > 0 {
		return b.String()
	}
	if len(targets) == 1 {
		return s.name(targets[0]) + " has applied every write and holds the leader's data"
	}
	return fmt.Sprintf("%d live nodes have applied every write and hold the same data", len(targets))
}

// checksumMarker proposes a checksum marker on the current leader,
// following leadership should it move.
func (s *scenario) checksumMarker(td *datadriven.TestData) (leader *testNode, index uint64, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	err = retryElections(ctx, func() (err error) {
		leader = s.node(td, "leader")
		index, err = leader.TriggerChecksum(ctx)
		return err
	})
	return leader, index, err
}

// retryElections runs op until it succeeds, fails with an error that an
// election does not explain (one a client would not retry), or ctx ends:
// on a loaded machine a spurious election is legitimate.
func retryElections(ctx context.Context, op func() error) error {
	for {
		err := op()
		if err == nil || !(errors.Is(err, api.ErrNotLeader) || errors.Is(err, api.ErrNoLeader) || errors.Is(err, api.ErrLeadershipTransfer) || api.IsAmbiguous(err)) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// members waits until every live node reports the same, complete
// membership (see membersView) and prints it; after settleTimeout it
// prints each node's view instead.
func (s *scenario) members(td *datadriven.TestData) string {
	only := ""
	if ref := s.optArg(td, "node", ""); ref != "" {
		only = s.node(td, ref).id
	}
	var views map[string]string
	settled := eventually(settleTimeout, func() bool {
		views = make(map[string]string)
		agreed := true
		for _, tn := range s.g.live() {
			view, complete := s.membersView(tn, only)
			views[s.name(tn)] = view
			agreed = agreed && complete
		}
		for _, v := range views {
			agreed = agreed && v == views[s.name(s.g.live()[0])]
		}
		return agreed
	})
	if settled {
		return views[s.name(s.g.live()[0])]
	}
	var b strings.Builder
	fmt.Fprintf(&b, "not settled after %s:\n", settleTimeout)
	for _, name := range slices.Sorted(maps.Keys(views)) {
		fmt.Fprintf(&b, "%s sees:\n%s", name, views[name])
	}
	return b.String()
}

// membersView renders tn's view of the membership (of member only, if
// set), one line per member, and whether it is complete: every member has
// its API address, the nodes the scenario started have the API and Raft
// addresses they were last started with, and no metadata is left of
// non-members (shown as lines too).
func (s *scenario) membersView(tn *testNode, only string) (view string, complete bool) {
	ms, err := tn.Members()
	if err != nil {
		return "error: " + err.Error() + "\n", false
	}
	complete = true
	var lines []string
	isMember := make(map[string]bool)
	for _, m := range ms {
		isMember[m.ID] = true
		if only != "" && m.ID != only {
			continue
		}
		line := s.nameOf(m.ID) + " voter"
		if !m.Voter {
			line = s.nameOf(m.ID) + " nonvoter"
		}
		line += " api=" + m.APIAddr
		complete = complete && m.APIAddr != ""
		if known, ok := s.nodes[m.ID]; ok {
			if known.cfg.APIAdvAddr != m.APIAddr {
				line += " (api is stale)"
				complete = false
			}
			if known.RaftAddr() != m.RaftAddr {
				line += " (raft address is stale)"
				complete = false
			}
		}
		lines = append(lines, line)
	}
	for id := range tn.fsm.Nodes() {
		if !isMember[id] && (only == "" || id == only) {
			lines = append(lines, "metadata left of non-member "+s.nameOf(id))
			complete = false
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n") + "\n", complete
}

func (s *scenario) join(td *datadriven.TestData) string {
	id := s.arg(td, "node")
	if old, ok := s.nodes[id]; ok && slices.Contains(s.g.live(), old) {
		td.Fatalf(s.t, "join: %s is running", id)
	}
	var via []string
	td.ScanArgs(s.t, "via", &via)
	var targets []string
	for _, ref := range via {
		if ref == "unreachable" {
			targets = append(targets, unreachableAddr)
			continue
		}
		targets = append(targets, s.node(td, ref).RaftAddr())
	}
	var ln net.Listener
	if ref := s.optArg(td, "take-addr-of", ""); ref != "" {
		ln = rebind(s.t, s.node(td, ref).RaftAddr())
	} else {
		ln = listen(s.t)
	}
	cfg := testConfig(s.t, id, ln)
	cfg.Join = targets
	cfg.APIAdvAddr = s.optArg(td, "api", cfg.APIAdvAddr)
	tn, err := tryStart(s.t, cfg, s.logger)
	if err != nil {
		return "error: " + err.Error()
	}
	s.g.add(tn)
	s.nodes[id] = tn
	return s.name(tn) + " joined"
}

// joinAgain sends a running member's join request once more and reports
// whether the leader's configuration changed.
func (s *scenario) joinAgain(td *datadriven.TestData) string {
	tn := s.node(td, s.arg(td, "node"))
	leader := s.node(td, "leader")
	before := leader.raft.GetConfiguration()
	if err := before.Error(); err != nil {
		return "error: " + err.Error()
	}
	req := joinRequest{ID: tn.id, RaftAddr: tn.RaftAddr(), APIAddr: tn.cfg.APIAdvAddr, Voter: true}
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := tn.join(ctx, req, 0); err != nil {
		return "error: " + err.Error()
	}
	after := leader.raft.GetConfiguration()
	if err := after.Error(); err != nil {
		return "error: " + err.Error()
	}
	if after.Index() != before.Index() {
		return "configuration changed"
	}
	return "configuration unchanged"
}

func (s *scenario) remove(td *datadriven.TestData) string {
	id := s.arg(td, "node")
	via := s.node(td, s.optArg(td, "via", "leader"))
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	if err := via.Remove(ctx, id); err != nil {
		return "error: " + err.Error()
	}
	if tn, ok := s.nodes[id]; ok {
		tn.stop()
	}
	return "removed " + s.nameOf(id)
}
