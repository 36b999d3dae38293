package cluster

import "github.com/hashicorp/raft"

// noPipeline is the raft.Transport raft runs on: resendAppends without
// pipelined replication, so that raft replicates to each follower with one
// AppendEntries in flight at a time.
//
// Why: hashicorp/raft's pipeline can wedge. After a follower's disk fails
// a write (here: the log store out of space) and the follower restarts,
// the leader's heartbeats reach it but its log entries never do again,
// until the leader restarts (hashicorp/raft#612; Grafana Pyroscope turned
// pipelining off for the same reason). TestDiskFull hit it in about one
// run in fifteen: the restarted node stayed at its old rows with neither
// node logging anything. Without the pipeline, raft batches what
// accumulates while an AppendEntries is in flight into the next one.
type noPipeline struct{ *resendAppends }

func (noPipeline) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}
