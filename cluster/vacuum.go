package cluster

import (
	"context"
	"errors"

	"github.com/raftlite/raftlite/api"
)

// watchAutoVacuum makes the leader propose a VACUUM every
// Config.AutoVacuumInterval (rqlited's -auto-vacuum-int). It goes through
// the log like a client's VACUUM, so every replica rebuilds its file at the
// same log position (see fsm/vacuum.go). Every node ticks; only the one
// leading when its tick fires proposes, so a leadership change neither
// doubles nor skips more than one interval.
func (n *Node) watchAutoVacuum() {
	defer n.wg.Done()
	interval := n.cfg.AutoVacuumInterval
	if interval <= 0 {
		return
	}
	tick(n.ctx.Done(), interval, func() bool {
		if !n.IsLeader() {
			return true
		}
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.ApplyTimeout)
		defer cancel()
		resp, err := n.Execute(ctx, &api.Request{Statements: []api.Statement{{SQL: "VACUUM"}}})
		switch {
		case errors.Is(err, api.ErrClosed):
			return false
		case err != nil:
			n.logger.Warn("automatic VACUUM not applied", "error", err)
		case resp.Err != nil || resp.Results[0].Error != "":
			n.logger.Warn("automatic VACUUM failed", "error", resp.Err, "result", resp.Results[0].Error)
		default:
			n.logger.Info("automatic VACUUM applied", "index", resp.Index)
		}
		return true
	})
}
