package fsm

import "github.com/raftlite/raftlite/api"

// NodeMeta is what the cluster remembers about a member beyond Raft's own
// configuration: where its HTTP API listens. It is replicated state, so any
// node can find the leader's API address to forward a request.
type NodeMeta struct {
	ID      string
	APIAddr string // URL, e.g. "http://127.0.0.1:4001"
}

// CommandType says what a log entry asks the state machine to do.
type CommandType uint8

// The command types. Values are part of the log format: never renumber.
const (
	// CmdExecute runs a Request's statements.
	CmdExecute CommandType = 1
	// CmdSetNode records (or replaces) a member's NodeMeta.
	CmdSetNode CommandType = 2
	// CmdRemoveNode forgets a member's NodeMeta.
	CmdRemoveNode CommandType = 3
	// CmdChecksum is a checksum marker: every replica takes the checksum
	// of its database as of this entry's index (see FSM.ChecksumAt).
	CmdChecksum CommandType = 4
	// CmdCompactWatch trims the change history (see watch.go) up to and
	// including CompactIndex.
	CmdCompactWatch CommandType = 5
)

// Command is one Raft log entry's payload. The leader that proposes it fills
// Timestamp and Seed, so that every replica evaluates time and randomness
// identically and expires sessions at the same index.
type Command struct {
	Type CommandType
	// Timestamp is the proposing leader's clock in Unix nanoseconds.
	Timestamp int64
	// Seed is a random value chosen by the proposing leader.
	Seed    uint64
	Request *api.Request // CmdExecute
	Node    *NodeMeta    // CmdSetNode, CmdRemoveNode (only ID is used)
	// CompactIndex is the last index CmdCompactWatch trims.
	CompactIndex uint64
}
