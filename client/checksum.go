package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
)

// ChecksumReport is a node's checksum of its database content
// (/db/checksum, a raftlite endpoint).
type ChecksumReport struct {
	// Index is the log index the checksum describes.
	Index uint64 `json:"index"`
	// Checksum is the hex SHA-256 of the content.
	Checksum string `json:"checksum"`
	// NodeID is the node that computed it.
	NodeID string `json:"node_id"`
}

// TriggerChecksum proposes a checksum marker (POST /db/checksum): every
// member takes the checksum of its database as of the marker's index. It
// returns the index and the leader's checksum. Retrying is harmless (a
// second marker only adds another checkpoint), so it is retried like a
// read.
func (c *Client) TriggerChecksum(ctx context.Context) (ChecksumReport, error) {
	rq := c.adminRequest(http.MethodPost, "/db/checksum", nil)
	rq.retryAmbiguous = true
	return c.checksum(ctx, rq)
}

// Checksum returns the checksum of the first node that answers (GET
// /db/checksum): with index 0 of its database as it is now, otherwise as of
// the checksum marker at index (waiting for the node to apply it). To ask a
// particular node, use a Client whose Nodes lists only it.
func (c *Client) Checksum(ctx context.Context, index uint64) (ChecksumReport, error) {
	rq := c.adminRequest(http.MethodGet, "/db/checksum", nil)
	rq.retryAmbiguous = true
	if index > 0 {
		rq.query.set("index", strconv.FormatUint(index, 10))
	}
	return c.checksum(ctx, rq)
}

func (c *Client) checksum(ctx context.Context, rq *request) (ChecksumReport, error) {
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return ChecksumReport{}, err
	}
	var r ChecksumReport
	if err := json.Unmarshal(rep.body, &r); err != nil {
		return ChecksumReport{}, fmt.Errorf("raftlite client: invalid /db/checksum body: %w", err)
	}
	return r, nil
}

// ReplicaChecksum is one member's part in a replica check.
type ReplicaChecksum struct {
	NodeID  string
	APIAddr string
	Leader  bool
	// Checksum is the member's checksum at the check's index; Err is why
	// there is none.
	Checksum string
	Err      error
	// Differs is set when Checksum is not the reference checksum.
	Differs bool
}

// ReplicaCheck is the outcome of CheckReplicas.
type ReplicaCheck struct {
	// Index is the checksum marker's log index: every checksum describes
	// the database as of it.
	Index uint64
	// Reference is the checksum most members have (the leader's on a tie).
	Reference string
	// Replicas are the members, sorted by node ID.
	Replicas []ReplicaChecksum
}

// Failed returns the IDs of the members that differ from the reference or
// did not answer; empty when every replica is identical.
func (r *ReplicaCheck) Failed() []string {
	var ids []string
	for _, m := range r.Replicas {
		if m.Err != nil || m.Differs {
			ids = append(ids, m.NodeID)
		}
	}
	return ids
}

// CheckReplicas compares every member's database content at the same log
// index: it lists the members (GET /nodes), proposes a checksum marker
// (TriggerChecksum) and asks each member for its checksum at the marker's
// index, concurrently. An error means the check could not be made at all;
// a member that cannot answer has its Err set instead.
func (c *Client) CheckReplicas(ctx context.Context) (*ReplicaCheck, error) {
	members, err := c.Nodes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	marker, err := c.TriggerChecksum(ctx)
	if err != nil {
		return nil, fmt.Errorf("propose checksum marker: %w", err)
	}
	rc := &ReplicaCheck{Index: marker.Index, Replicas: make([]ReplicaChecksum, len(members))}
	var wg sync.WaitGroup
	for i, m := range members {
		r := &rc.Replicas[i]
		r.NodeID, r.APIAddr, r.Leader = m.ID, m.APIAddr, m.Leader
		if m.APIAddr == "" {
			r.Err = errors.New("API address unknown")
			continue
		}
		nc, err := c.onNode(m.APIAddr)
		if err != nil {
			r.Err = err
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rep, err := nc.Checksum(ctx, marker.Index)
			r.Checksum, r.Err = rep.Checksum, err
		}()
	}
	wg.Wait()
	sort.Slice(rc.Replicas, func(i, j int) bool { return rc.Replicas[i].NodeID < rc.Replicas[j].NodeID })

	votes := map[string]int{}
	leaderSum := ""
	for _, r := range rc.Replicas {
		if r.Err == nil {
			votes[r.Checksum]++
			if r.Leader {
				leaderSum = r.Checksum
			}
		}
	}
	best := -1
	better := func(sum string, n int) bool {
		switch {
		case n != best:
			return n > best
		case sum == leaderSum:
			return true
		case rc.Reference == leaderSum:
			return false
		default:
			return sum < rc.Reference
		}
	}
	for sum, n := range votes {
		if better(sum, n) {
			rc.Reference, best = sum, n
		}
	}
	for i := range rc.Replicas {
		r := &rc.Replicas[i]
		r.Differs = r.Err == nil && r.Checksum != rc.Reference
	}
	return rc, nil
}

// onNode returns a Client that sends to apiAddr only, with c's HTTP
// client, credentials and retry settings.
func (c *Client) onNode(apiAddr string) (*Client, error) {
	nd, err := parseNode(apiAddr)
	if err != nil {
		return nil, err
	}
	k := &core{
		nodes:          []node{nd},
		hc:             c.core.hc,
		userAgent:      c.core.userAgent,
		user:           c.core.user,
		password:       c.core.password,
		attemptTimeout: c.core.attemptTimeout,
		maxRetries:     c.core.maxRetries,
		backoff:        c.core.backoff,
		maxBackoff:     c.core.maxBackoff,
		log:            c.core.log,
	}
	return &Client{core: k, opts: c.opts}, nil
}

// WriteReport prints the check as a table (node, index, checksum, status)
// and a closing verdict line, and reports whether every member agreed.
func (rc *ReplicaCheck) WriteReport(w io.Writer) (ok bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tINDEX\tCHECKSUM\tSTATUS")
	for _, r := range rc.Replicas {
		status := "ok"
		switch {
		case r.Err != nil:
			status = "error: " + r.Err.Error()
		case r.Differs:
			status = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", r.NodeID, rc.Index, r.Checksum, status)
	}
	tw.Flush()
	if bad := rc.Failed(); len(bad) > 0 {
		fmt.Fprintf(w, "replicas differ or did not answer at index %d: %s\n", rc.Index, strings.Join(bad, ", "))
		return false
	}
	fmt.Fprintf(w, "all %d members identical at index %d\n", len(rc.Replicas), rc.Index)
	return true
}
