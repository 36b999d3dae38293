package client

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// wireResponse is the top level of a /db/execute, /db/query or /db/request
// response body.
type wireResponse struct {
	Results        []wireResult `json:"results"`
	Error          string       `json:"error"`
	Code           string       `json:"code"`
	Time           float64      `json:"time"`
	RaftIndex      uint64       `json:"raft_index"`
	SequenceNumber int64        `json:"sequence_number"`
	Deduplicated   bool         `json:"deduplicated"`
}

type wireResult struct {
	Columns      []string `json:"columns"`
	Types        []string `json:"types"`
	Values       [][]any  `json:"values"`
	LastInsertID int64    `json:"last_insert_id"`
	RowsAffected int64    `json:"rows_affected"`
	Error        string   `json:"error"`
	Time         float64  `json:"time"`
}

// decodeWire parses a database endpoint's body, keeping numbers exact.
func decodeWire(body []byte) (*wireResponse, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var w wireResponse
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("invalid response body: %w", err)
	}
	return &w, nil
}

// requestError returns the request-level failure a 2xx body reports: its
// top-level error, or a session error a server put in a statement's slot.
func (w *wireResponse) requestError() (msg, code string) {
	if w.Error != "" {
		return w.Error, w.Code
	}
	for i := range w.Results {
		if o := sessionOutcome(w.Results[i].Error); o != nil {
			return o.Error(), o.Code
		}
	}
	return "", ""
}

// response converts a successful body into a Response for stmts.
func (w *wireResponse) response(stmts []Statement) *Response {
	r := &Response{
		Results:        make([]Result, len(w.Results)),
		RaftIndex:      w.RaftIndex,
		Deduplicated:   w.Deduplicated,
		SequenceNumber: w.SequenceNumber,
		Time:           seconds(w.Time),
		stmts:          stmts,
	}
	for i := range w.Results {
		wr := &w.Results[i]
		res := &r.Results[i]
		res.Columns = wr.Columns
		res.Types = wr.Types
		res.LastInsertID = wr.LastInsertID
		res.RowsAffected = wr.RowsAffected
		res.Error = wr.Error
		res.Time = seconds(wr.Time)
		if wr.Values != nil {
			res.Values = make([][]any, len(wr.Values))
			for j, row := range wr.Values {
				for k, v := range row {
					t := ""
					if k < len(wr.Types) {
						t = wr.Types[k]
					}
					row[k] = convertValue(v, t)
				}
				res.Values[j] = row
			}
		}
	}
	return r
}

// convertValue turns a decoded JSON value into the Go value of the SQLite
// value it carries. Numbers become int64, or float64 when the column has
// REAL affinity or the number is not an integer. Arrays are BLOBs (the
// client always asks for blob_array).
func convertValue(v any, colType string) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !realAffinity(colType) {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i
			}
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return f
		}
		return s
	case []any:
		b := make([]byte, len(x))
		for i, e := range x {
			n, ok := e.(json.Number)
			if !ok {
				return v
			}
			c, err := strconv.ParseUint(string(n), 10, 8)
			if err != nil {
				return v
			}
			b[i] = byte(c)
		}
		return b
	}
	return v
}

// realAffinity reports whether a declared column type has SQLite's REAL
// affinity (and not INTEGER's, which takes precedence).
func realAffinity(t string) bool {
	t = strings.ToLower(t)
	if strings.Contains(t, "int") {
		return false
	}
	return strings.Contains(t, "real") || strings.Contains(t, "floa") || strings.Contains(t, "doub")
}

// errorFromBody extracts the failure text of a non-2xx body: a JSON object's
// "error" (and "code"), or else the body's trimmed text.
func errorFromBody(body []byte) (msg, code string) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		var e struct {
			Error string `json:"error"`
			Code  string `json:"code"`
		}
		if json.Unmarshal(trimmed, &e) == nil && (e.Error != "" || e.Code != "") {
			return e.Error, e.Code
		}
	}
	const maxLen = 512
	if len(trimmed) > maxLen {
		trimmed = append(trimmed[:maxLen:maxLen], "..."...)
	}
	return string(trimmed), ""
}

// wireNode is a member object of /nodes and /leader.
type wireNode struct {
	ID        string  `json:"id"`
	APIAddr   string  `json:"api_addr"`
	Addr      string  `json:"addr"`
	Version   string  `json:"version"`
	Voter     bool    `json:"voter"`
	Reachable bool    `json:"reachable"`
	Leader    bool    `json:"leader"`
	Time      float64 `json:"time"`
	Error     string  `json:"error"`
	// raftlite's own fields
	AppliedIndex *uint64 `json:"applied_index"`
	Lag          *uint64 `json:"lag"`
}

func (w *wireNode) node() Node {
	return Node{
		ID: w.ID, APIAddr: w.APIAddr, Addr: w.Addr, Version: w.Version,
		Voter: w.Voter, Reachable: w.Reachable, Leader: w.Leader,
		Time: seconds(w.Time), Error: w.Error,
		AppliedIndex: w.AppliedIndex, Lag: w.Lag,
	}
}

// decodeNodes parses /nodes in either form: {"nodes":[...]} (ver=2) or the
// legacy map keyed by node id. The result is sorted by id.
func decodeNodes(body []byte) ([]Node, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("invalid /nodes body: %w", err)
	}
	var wns []wireNode
	if raw, ok := top["nodes"]; ok && len(bytes.TrimSpace(raw)) > 0 && bytes.TrimSpace(raw)[0] == '[' {
		if err := json.Unmarshal(raw, &wns); err != nil {
			return nil, fmt.Errorf("invalid /nodes body: %w", err)
		}
	} else {
		for id, raw := range top {
			var wn wireNode
			if err := json.Unmarshal(raw, &wn); err != nil {
				return nil, fmt.Errorf("invalid /nodes entry %q: %w", id, err)
			}
			if wn.ID == "" {
				wn.ID = id
			}
			wns = append(wns, wn)
		}
	}
	nodes := make([]Node, len(wns))
	for i := range wns {
		nodes[i] = wns[i].node()
	}
	slices.SortFunc(nodes, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return nodes, nil
}

// decodeNode parses /leader: a member object, or one wrapped as
// {"leader": {...}}.
func decodeNode(body []byte) (Node, error) {
	var wrapped struct {
		Leader json.RawMessage `json:"leader"`
	}
	if err := json.Unmarshal(body, &wrapped); err != nil {
		return Node{}, fmt.Errorf("invalid /leader body: %w", err)
	}
	if inner := bytes.TrimSpace(wrapped.Leader); len(inner) > 0 && inner[0] == '{' {
		body = inner
	}
	var wn wireNode
	if err := json.Unmarshal(body, &wn); err != nil {
		return Node{}, fmt.Errorf("invalid /leader body: %w", err)
	}
	if wn.ID == "" && wn.APIAddr == "" && wn.Addr == "" {
		return Node{}, errors.New("empty /leader body")
	}
	return wn.node(), nil
}
