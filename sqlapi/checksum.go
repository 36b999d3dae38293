package sqlapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/raftlite/raftlite/api"
)

// checksumReply is the body of /db/checksum.
type checksumReply struct {
	Index    uint64 `json:"index"`
	Checksum string `json:"checksum,omitempty"`
	NodeID   string `json:"node_id"`
	Error    string `json:"error,omitempty"`
}

// handleChecksum serves /db/checksum, a raftlite endpoint:
//
//   - GET: this node's checksum of its database as it is now, with the
//     applied index it describes. Cost: one pass over the data.
//   - GET ?index=N: this node's checksum as of checksum marker N, waiting
//     (up to ?timeout) until it has applied N and computed it; 404 when it
//     has none for N (N is not a marker, or the node restarted since).
//   - POST: propose a checksum marker (on the leader; forwarded there from
//     a follower) and answer with its index and the leader's checksum at
//     it. Every member then has its own checksum at that index, for
//     GET ?index=N: that is how `raftlite check` compares replicas at the
//     same point of the log. Appending to the log, it needs the execute
//     permission; the GETs need status.
func (s *Server) handleChecksum(w http.ResponseWriter, r *http.Request, p *params) {
	ctx, cancel := requestContext(r, p)
	defer cancel()
	reply := checksumReply{NodeID: s.store.ID()}
	var err error
	switch {
	case r.Method == http.MethodPost:
		if !s.store.IsLeader() {
			s.toLeader(w, r, p, epChecksum, nil)
			return
		}
		reply.Index, err = s.store.TriggerChecksum(ctx)
		if err != nil && errors.Is(err, api.ErrNotLeader) {
			s.toLeader(w, r, p, epChecksum, nil)
			return
		}
		if err == nil {
			reply.Checksum, err = s.store.ChecksumAt(ctx, reply.Index)
		}
	case r.URL.Query().Has("index"):
		reply.Index, err = strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
		if err != nil {
			writeError(w, api.ErrBadRequest, "invalid index: "+err.Error())
			return
		}
		reply.Checksum, err = s.store.ChecksumAt(ctx, reply.Index)
	default:
		reply.Index, reply.Checksum, err = s.store.Checksum(ctx)
	}
	status := http.StatusOK
	if err != nil {
		reply.Error = err.Error()
		switch {
		case errors.Is(err, api.ErrNoChecksum):
			status = http.StatusNotFound
		case errors.Is(err, context.DeadlineExceeded), ctx.Err() != nil:
			status = http.StatusGatewayTimeout
		default:
			status = classifyStoreError(err).outcome.Status
		}
	}
	body, _ := json.Marshal(reply)
	writeJSONBytes(w, status, body, p.pretty)
}
