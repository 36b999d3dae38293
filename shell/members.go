package shell

import (
	"fmt"
	"io"

	"github.com/raftlite/raftlite/client"
)

// WriteMembers prints the cluster's membership for `raftlite members`, in
// the style of `etcdctl member list`: a table like the shell's (format
// "table") or a JSON array with one object per member ("json"). Unlike
// .nodes it calls non-voters learners and shows how far each member's
// database is: its applied index and its lag, in entries, behind the
// leader's committed index (blank or null when unknown). The table has an
// error column only when a member is unreachable.
func WriteMembers(w io.Writer, nodes []client.Node, format string) error {
	var mode outputMode
	switch format {
	case "table":
		mode = modeTable
	case "json":
		mode = modeJSON
	default:
		return fmt.Errorf("unknown output format %q, want table or json", format)
	}
	return render(w, nodesResult(nodes, true, mode == modeJSON), renderOptions{mode: mode, headers: true})
}
