package api

import (
	"fmt"
	"strings"
)

// The operations a change event reports, as they appear on the wire.
const (
	OpInsert = "insert"
	OpUpdate = "update"
	OpDelete = "delete"
)

// ChangeEvent is what one committed log entry changed in user tables: the
// unit a watcher receives (/db/watch). Its Index is the entry's Raft index
// and doubles as the event id, so a watcher that saw index N resumes
// exactly with from=N+1. Every change of one entry (a multi-statement
// request, or rows touched by triggers) is in the same event, in the order
// SQLite made them.
type ChangeEvent struct {
	Index uint64 `json:"index"`
	// Time is the proposing leader's timestamp of the entry (RFC 3339,
	// UTC): the same on every node.
	Time    string   `json:"time"`
	Changes []Change `json:"changes"`
}

// Change is one row inserted, updated or deleted.
type Change struct {
	Table string `json:"table"`
	// Op is OpInsert, OpUpdate or OpDelete.
	Op string `json:"op"`
	// Rowid is the row's rowid (its new one for an update); nil for a
	// WITHOUT ROWID table.
	Rowid *int64 `json:"rowid,omitempty"`
	// PK holds the declared primary key columns and their values (of
	// the new row, or the old one for a delete); nil when the table
	// declares none (the rowid is the key then).
	PK map[string]Value `json:"pk,omitempty"`
	// New is the row after the change (nil for a delete), Old the row
	// before it (for updates and deletes, only when the watcher asked
	// for prev).
	New map[string]Value `json:"new,omitempty"`
	Old map[string]Value `json:"old,omitempty"`
}

// WatchRequest is what a watcher asks for.
type WatchRequest struct {
	// From is the first index wanted; 0 means the next entry this node
	// applies (changes from now on).
	From uint64
	// Tables, when not empty, keeps the changes to these tables only
	// (names compare case-insensitively, as SQLite's do).
	Tables []string
	// Ops, when not empty, keeps these operations only.
	Ops []string
	// Where, when not empty, is an SQL expression evaluated against each
	// change's row (the new row; the old one for a delete) on a read-only
	// connection: only changes for which it is true are kept.
	Where string
	// Prev asks for the old row of updates and deletes.
	Prev bool
	// Limit bounds the events of one page (0: a default).
	Limit int
}

// Validate checks the request's operations.
func (r *WatchRequest) Validate() error {
	for _, op := range r.Ops {
		switch op {
		case OpInsert, OpUpdate, OpDelete:
		default:
			return ErrBadRequest.New(fmt.Sprintf("unknown operation %q: want %s", op, strings.Join([]string{OpInsert, OpUpdate, OpDelete}, ", ")))
		}
	}
	if r.Limit < 0 {
		return ErrBadRequest.New("negative limit")
	}
	return nil
}

// WatchPage is one answer to a watcher: the events found, and Next, the
// index to ask for next (one past the last entry this page covers, whether
// or not it held a matching change).
type WatchPage struct {
	Events []ChangeEvent `json:"events"`
	Next   uint64        `json:"next"`
}

// CompactedError says that the history a watcher asked for is gone: the
// outcome ErrCompacted, with the oldest index still available.
type CompactedError struct {
	Requested uint64
	Oldest    uint64
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("required index %d has been compacted; the oldest available index is %d", e.Requested, e.Oldest)
}

// Is makes a CompactedError match ErrCompacted.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// Unwrap lets OutcomeOf find the outcome.
func (e *CompactedError) Unwrap() error { return ErrCompacted.New(e.Error()) }
