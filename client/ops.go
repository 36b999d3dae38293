package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Snapshot asks the node to take a snapshot now (POST /snapshot), keeping
// trailing log entries behind it (0: the node's configured number). Each
// node snapshots itself: to snapshot a particular node, use a Client whose
// Nodes lists only it.
func (c *Client) Snapshot(ctx context.Context, trailing uint64) error {
	rq := c.adminRequest(http.MethodPost, "/snapshot", nil)
	if trailing > 0 {
		rq.query.set("trailing", strconv.FormatUint(trailing, 10))
	}
	_, _, err := c.core.roundTrip(ctx, rq)
	return err
}

// ReapedNode is a member the leader removed because it could not reach it.
type ReapedNode struct {
	ID    string
	Voter bool
	// Unreachable is how long the leader had not reached it.
	Unreachable time.Duration
}

// Reap asks the leader to remove every member it has not reached for at
// least minUnreachable (POST /reap?min_unreachable=...) and returns them.
// It is not retried after an ambiguous failure; such an error wraps
// ErrUnknownOutcome.
func (c *Client) Reap(ctx context.Context, minUnreachable time.Duration) ([]ReapedNode, error) {
	rq := c.adminRequest(http.MethodPost, "/reap", nil)
	rq.query.set("min_unreachable", minUnreachable.String())
	rq.write = true
	rep, _, err := c.core.roundTrip(ctx, rq)
	if err != nil {
		return nil, err
	}
	var body struct {
		Reaped []struct {
			ID          string  `json:"id"`
			Voter       bool    `json:"voter"`
			Unreachable float64 `json:"unreachable"`
		} `json:"reaped"`
	}
	if err := json.Unmarshal(rep.body, &body); err != nil {
		return nil, fmt.Errorf("raftlite client: invalid /reap body: %w", err)
	}
	out := make([]ReapedNode, 0, len(body.Reaped))
	for _, r := range body.Reaped {
		out = append(out, ReapedNode{ID: r.ID, Voter: r.Voter, Unreachable: time.Duration(r.Unreachable * float64(time.Second))})
	}
	return out, nil
}

// Boot replaces the database of a node that is the whole cluster with the
// SQLite file data (POST /boot), bypassing the log; a node of a larger
// cluster refuses. It is not retried after an ambiguous failure.
func (c *Client) Boot(ctx context.Context, data []byte) error {
	if !bytes.HasPrefix(data, sqliteFileHeader) {
		return errors.New("raftlite client: Boot: not an SQLite database file")
	}
	rq := c.adminRequest(http.MethodPost, "/boot", data)
	rq.write = true
	rq.contentType = "application/octet-stream"
	_, _, err := c.core.roundTrip(ctx, rq)
	return err
}
