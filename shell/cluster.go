package shell

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raftlite/raftlite/client"
)

func (s *session) cmdNodes(ctx context.Context, _ []string) error {
	nodes, err := s.c.Nodes(ctx)
	s.checkFailover()
	if err != nil {
		return err
	}
	rs := nodesResult(nodes, false, false)
	return render(s.out, rs, s.renderOptions())
}

// nodesResult is the membership as a result set: id, addresses, role
// (voter or learner), leader and reachable, then with progress the applied
// index and lag (NULL when unknown), then an error column when a member has
// an error, or always with errorColumn.
func nodesResult(nodes []client.Node, progress, errorColumn bool) resultSet {
	rs := resultSet{columns: []string{"id", "address", "raft_address", "role", "leader", "reachable"}}
	if progress {
		rs.columns = append(rs.columns, "applied_index", "lag")
	}
	errorColumn = errorColumn || slices.ContainsFunc(nodes, func(n client.Node) bool { return n.Error != "" })
	if errorColumn {
		rs.columns = append(rs.columns, "error")
	}
	for _, n := range nodes {
		role := "voter"
		if !n.Voter {
			role = "learner"
		}
		row := []any{n.ID, n.APIAddr, n.Addr, role, n.Leader, n.Reachable}
		if progress {
			row = append(row, optionalIndex(n.AppliedIndex), optionalIndex(n.Lag))
		}
		if errorColumn {
			row = append(row, shortError(n.Error))
		}
		rs.rows = append(rs.rows, row)
	}
	return rs
}

// optionalIndex is a log index as a result value: NULL when unknown.
func optionalIndex(i *uint64) any {
	if i == nil {
		return nil
	}
	return int64(*i)
}

// shortError keeps the last part of a chain of error messages: "Get
// \"http://...\": dial tcp ...: connect: connection refused" becomes
// "connection refused".
func shortError(msg string) string {
	if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
		return msg[i+2:]
	}
	return msg
}

func describeNode(n client.Node) string {
	return fmt.Sprintf("node %s at %s (raft %s)", n.ID, n.APIAddr, n.Addr)
}

func (s *session) cmdLeader(ctx context.Context, _ []string) error {
	n, err := s.c.Leader(ctx)
	s.checkFailover()
	if err != nil {
		return err
	}
	fmt.Fprintln(s.out, describeNode(n))
	return nil
}

func (s *session) cmdStatus(ctx context.Context, args []string) error {
	st, err := s.c.Status(ctx)
	s.checkFailover()
	if err != nil {
		return err
	}
	var v any = st
	if len(args) == 1 {
		for _, k := range strings.Split(args[0], ".") {
			m, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("no key %q in the status", args[0])
			}
			if v, ok = m[k]; !ok {
				return fmt.Errorf("no key %q in the status", args[0])
			}
		}
	}
	switch v := v.(type) {
	case string:
		fmt.Fprintln(s.out, v)
	case nil, bool, float64:
		b, _ := json.Marshal(v)
		fmt.Fprintln(s.out, string(b))
	default:
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return err
		}
		fmt.Fprintln(s.out, string(b))
	}
	return nil
}

func (s *session) cmdReady(ctx context.Context, _ []string) error {
	err := s.c.Ready(ctx, false)
	s.checkFailover()
	var apiErr *client.APIError
	if errors.As(err, &apiErr) && apiErr.Status == 503 {
		return fmt.Errorf("%s is not ready: %s", apiErr.Node, strings.ReplaceAll(apiErr.Message, "\n", ", "))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(s.out, "%s is ready\n", s.c.CurrentNode())
	return nil
}

// cmdCheck compares every member's database content at one log index, as
// `raftlite check` does; differing members are an error.
func (s *session) cmdCheck(ctx context.Context, _ []string) error {
	rc, err := s.c.CheckReplicas(ctx)
	s.checkFailover()
	if err != nil {
		return err
	}
	if !rc.WriteReport(s.out) {
		return errors.New("replicas differ")
	}
	return nil
}

// cmdRemove removes a member. The shell checks the id first, so that a
// typo is answered with the members' ids (the server answers 404).
func (s *session) cmdRemove(ctx context.Context, args []string) error {
	nodes, err := s.c.Nodes(ctx)
	if err != nil {
		s.checkFailover()
		return err
	}
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	if !slices.Contains(ids, args[0]) {
		return fmt.Errorf("no member has id %q (members: %s)", args[0], strings.Join(ids, ", "))
	}
	err = s.c.Remove(ctx, args[0])
	s.checkFailover()
	if err != nil {
		return err
	}
	s.info("removed node %s", args[0])
	return nil
}

// cmdStepDown asks the leader to step down, then waits a little for the
// cluster to name its successor and reports it.
func (s *session) cmdStepDown(ctx context.Context, args []string) error {
	target := ""
	if len(args) == 1 {
		target = args[0]
	}
	old, err := s.c.Leader(ctx)
	if err != nil {
		s.checkFailover()
		return err
	}
	if target == old.ID {
		s.info("node %s is the leader already", old.ID)
		return nil
	}
	err = s.c.StepDown(ctx, target)
	s.checkFailover()
	if err != nil {
		return err
	}
	// Poll with a client of its own, which tries each host once: while the
	// leadership moves, nodes answer "leader not found", which must not
	// make the session's client fail over.
	retries := len(s.cfg.Hosts) - 1
	if retries == 0 {
		retries = -1 // none
	}
	poll, err := client.New(client.Config{Nodes: s.cfg.Hosts, User: s.cfg.User, Password: s.cfg.Password, TLS: s.cfg.TLS,
		Timeout: time.Second, MaxRetries: retries})
	if err != nil {
		return err
	}
	defer poll.Close()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		n, err := poll.Leader(wait)
		if err == nil && n.ID != old.ID {
			s.info("node %s stepped down; the leader is now %s", old.ID, describeNode(n))
			return nil
		}
		select {
		case <-wait.Done():
			s.info("node %s stepped down; no new leader is known yet", old.ID)
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cmdSnapshot has the node take a snapshot now, keeping TRAILING log
// entries behind it when given.
func (s *session) cmdSnapshot(ctx context.Context, args []string) error {
	var trailing uint64
	if len(args) == 1 {
		n, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil {
			return &usageError{findCommand("snapshot"), fmt.Sprintf("TRAILING must be a number of log entries, not %q", args[0])}
		}
		trailing = n
	}
	err := s.c.Snapshot(ctx, trailing)
	s.checkFailover()
	if err != nil {
		return err
	}
	s.info("snapshot taken on %s", s.c.CurrentNode())
	return nil
}

// cmdReap has the leader remove the members it has not reached for
// DURATION (default 10s).
func (s *session) cmdReap(ctx context.Context, args []string) error {
	minDown := 10 * time.Second
	if len(args) == 1 {
		d, err := time.ParseDuration(args[0])
		if err != nil || d < 0 {
			return &usageError{findCommand("reap"), fmt.Sprintf("DURATION must be a duration such as 30s, not %q", args[0])}
		}
		minDown = d
	}
	reaped, err := s.c.Reap(ctx, minDown)
	s.checkFailover()
	if err != nil {
		return err
	}
	if len(reaped) == 0 {
		s.info("no member has been unreachable that long: none reaped")
	}
	for _, r := range reaped {
		s.info("reaped node %s (unreachable for %s)", r.ID, r.Unreachable.Round(time.Millisecond))
	}
	return nil
}
