package cluster

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/hashicorp/raft"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/fsm"
)

const (
	// chunkOverhead bounds what a CmdChunk entry adds to its part of the
	// data, so that every entry stays within MaxEntryBytes.
	chunkOverhead = 64
	// maxChunks bounds the parts of one write: 1024 parts of the default
	// 1 MiB entry.
	maxChunks = 1024
	// chunkWindow is how many parts may be proposed and not yet applied at
	// a time: enough to keep replication busy, few enough that one
	// AppendEntries carries a few megabytes rather than the whole write.
	chunkWindow = 4
)

// proposeChunked proposes data, an encoded command larger than one entry
// may be, as fsm.CmdChunk entries of at most MaxEntryBytes, and returns the
// FSM's response to the last one: the whole command's (see fsm/chunks.go).
//
// Until the last part is proposed, a failure means the write was not
// applied and never will be (no one else proposes its last part), so it is
// reported as api.ErrNotLeader when leadership moved: the caller may send
// it to the new leader. After that, failures are ambiguous as for any
// entry.
func (n *Node) proposeChunked(ctx context.Context, ts int64, data []byte) (any, error) {
	size := n.cfg.MaxEntryBytes - chunkOverhead
	if size <= 0 {
		return nil, fmt.Errorf("cluster: MaxEntryBytes %d leaves no room for a part", n.cfg.MaxEntryBytes)
	}
	total := (len(data) + size - 1) / size
	if total > maxChunks {
		return nil, fmt.Errorf("%w: it encodes to %d bytes, more than %d log entries of %d bytes (-raft-max-entry-bytes)",
			api.ErrEntryTooLarge, len(data), maxChunks, n.cfg.MaxEntryBytes)
	}
	n.chunkMu.Lock()
	defer n.chunkMu.Unlock()
	id := rand.Uint64()
	var inflight []raft.ApplyFuture
	var res any
	for part := range total {
		chunk := &fsm.Command{Type: fsm.CmdChunk, Timestamp: ts, Seed: rand.Uint64(), Chunk: &fsm.Chunk{
			ID: id, Part: uint32(part), Total: uint32(total), Data: data[part*size : min(len(data), (part+1)*size)]}}
		enc, err := fsm.EncodeCommand(chunk)
		if err != nil {
			return nil, fmt.Errorf("cluster: encode part %d of %d: %w", part, total, err)
		}
		inflight = append(inflight, n.applyAsync(ctx, enc))
		lastProposed := part == total-1
		for len(inflight) >= chunkWindow || (lastProposed && len(inflight) > 0) {
			res, err = n.applied(ctx, inflight[0])
			if err != nil {
				return nil, unappliedIfBefore(lastProposed, err)
			}
			if resp, ok := res.(*api.Response); ok && resp.Err != nil && !lastProposed {
				return nil, fmt.Errorf("cluster: part %d of %d: %w", part, total, resp.Err)
			}
			inflight = inflight[1:]
		}
	}
	return res, nil
}

// unappliedIfBefore maps a part's failure: before the last part was
// proposed, a lost leadership means the write will never apply.
func unappliedIfBefore(lastProposed bool, err error) error {
	if !lastProposed && (errors.Is(err, api.ErrLeadershipLost) || errors.Is(err, api.ErrLeadershipTransfer)) {
		return fmt.Errorf("%w: leadership moved before the write's last part was proposed; it was not applied", api.ErrNotLeader)
	}
	return err
}
