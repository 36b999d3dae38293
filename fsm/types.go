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
	// CmdBatch runs several write requests, each as if it were an entry
	// of its own (its own savepoint, session, response), in one log
	// entry: the leader gathers concurrent writes into one entry so that
	// they share a replication round (see cluster's proposer). Its
	// response is a BatchResponse.
	CmdBatch CommandType = 5
	// CmdChunk carries one part of a command too large for one log entry.
	// The parts of one ID are kept in _raftlite_chunks until the last,
	// which applies the whole command in the same transaction (see
	// chunks.go).
	CmdChunk CommandType = 6
	// CmdCompactWatch trims the change history (see watch.go) up to and
	// including CompactIndex.
	CmdCompactWatch CommandType = 7
)

// Chunk is one part of a command split over several log entries: Data is
// the bytes [Part × size, ...) of the whole command's encoding.
type Chunk struct {
	// ID names the sequence; the leader picks it at random.
	ID uint64
	// Part counts from 0; Total is the number of parts (at least 2).
	Part, Total uint32
	Data        []byte
}

// BatchResponse is the response to a CmdBatch entry: one per request, in
// the entry's order.
type BatchResponse []*api.Response

// Command is one Raft log entry's payload. The leader that proposes it fills
// Timestamp and Seed, so that every replica evaluates time and randomness
// identically and expires sessions at the same index.
type Command struct {
	Type CommandType
	// Timestamp is the proposing leader's clock in Unix nanoseconds.
	Timestamp int64
	// Seed is a random value chosen by the proposing leader.
	Seed     uint64
	Request  *api.Request   // CmdExecute
	Requests []*api.Request // CmdBatch
	Chunk    *Chunk         // CmdChunk
	Node     *NodeMeta      // CmdSetNode, CmdRemoveNode (only ID is used)
	// CompactIndex is the last index CmdCompactWatch trims.
	CompactIndex uint64
}
