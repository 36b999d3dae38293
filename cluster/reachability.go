package cluster

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
)

// followerReachability turns the leader's stream of failures to reach a
// follower into one line per change of state: WARN "follower unreachable"
// when a follower stops answering, INFO "follower reachable again" when it
// answers again. hashicorp/raft logs an ERROR for every failed heartbeat
// and AppendEntries (six or more a second while a follower is down) and a
// WARN for each lost lease contact; those lines go to DEBUG instead
// (slogHCLog.Log), so nothing is lost at -raft-log-level debug.
//
// The same record tells reaping (ops.go) how long a member has been
// unreachable. A follower is unreachable from its first failure until a heartbeat to it
// succeeds again (raft's ResumedHeartbeatObservation) or an AppendEntries
// being resent gets through (resendAppends). A change of leader forgets
// every follower's state: the new term's replication starts afresh.
type followerReachability struct {
	logger *slog.Logger
	// raft resolves a follower's ID from its address and back (raft's
	// latest configuration); nil until raft has started.
	raft atomic.Pointer[raft.Raft]

	mu   sync.Mutex
	down map[raft.ServerID]time.Time // unreachable followers, since when
}

func newFollowerReachability(logger *slog.Logger) *followerReachability {
	return &followerReachability{logger: logger, down: map[raft.ServerID]time.Time{}}
}

// replicationFailures are hashicorp/raft's messages for a failure to reach
// a follower, with the key of the attribute naming it.
var replicationFailures = map[string]string{
	"failed to heartbeat to":                  "peer",
	"failed to appendEntries to":              "peer",
	"failed to pipeline appendEntries":        "peer",
	"failed to start pipeline replication to": "peer",
	"failed to contact":                       "server-id",
}

// observeRaftLine looks at a line hashicorp/raft logs. When it reports a
// failure to reach a follower it records the failure and returns true: the
// caller logs the line itself at DEBUG only.
func (f *followerReachability) observeRaftLine(msg string, args []any) bool {
	key, ok := replicationFailures[msg]
	if !ok {
		return false
	}
	var peer any
	var cause any
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case key:
			peer = args[i+1]
		case "error":
			cause = args[i+1]
		}
	}
	id, addr := f.identify(peer)
	if cause == nil {
		cause = msg
	}
	f.failed(id, addr, fmt.Sprint(cause))
	return true
}

// identify finds a follower's ID and address from what raft's line names:
// a raft.Server, its address or its ID.
func (f *followerReachability) identify(peer any) (raft.ServerID, raft.ServerAddress) {
	var id raft.ServerID
	var addr raft.ServerAddress
	switch p := peer.(type) {
	case raft.Server:
		return p.ID, p.Address
	case raft.ServerID:
		id = p
	case raft.ServerAddress:
		addr = p
	default:
		addr = raft.ServerAddress(fmt.Sprint(p))
	}
	if r := f.raft.Load(); r != nil {
		if fut := r.GetConfiguration(); fut.Error() == nil {
			for _, s := range fut.Configuration().Servers {
				if s.ID == id || s.Address == addr {
					return s.ID, s.Address
				}
			}
		}
	}
	if id == "" {
		id = raft.ServerID(addr) // not in the configuration: name it by address
	}
	return id, addr
}

// failed records that the follower did not answer, and logs it if it was
// reachable until now.
func (f *followerReachability) failed(id raft.ServerID, addr raft.ServerAddress, cause string) {
	f.mu.Lock()
	_, already := f.down[id]
	if !already {
		f.down[id] = time.Now()
	}
	f.mu.Unlock()
	if !already {
		f.logger.Warn("follower unreachable", "peer", string(id), "addr", string(addr), "error", cause)
	}
}

// answered records that the follower answered, and logs it if it was
// unreachable until now.
func (f *followerReachability) answered(id raft.ServerID) {
	f.mu.Lock()
	since, was := f.down[id]
	delete(f.down, id)
	f.mu.Unlock()
	if was {
		_, addr := f.identify(id)
		f.logger.Info("follower reachable again", "peer", string(id), "addr", string(addr),
			"unreachable_for", time.Since(since).Round(time.Millisecond))
	}
}

// since returns since when the follower has been unreachable (its first
// failure in this term), false if it is reachable: reaping goes by it.
// The clock restarts with every leader, as rqlite's does.
func (f *followerReachability) since(id raft.ServerID) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.down[id]
	return t, ok
}

// forgetPeer drops the state of a follower that is no longer a member.
func (f *followerReachability) forgetPeer(id raft.ServerID) {
	f.mu.Lock()
	delete(f.down, id)
	f.mu.Unlock()
}

// forget drops every follower's state, when the leadership changes.
func (f *followerReachability) forget() {
	f.mu.Lock()
	clear(f.down)
	f.mu.Unlock()
}
