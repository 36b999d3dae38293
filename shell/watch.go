package shell

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/client"
)

// cmdWatch follows the committed changes of a table (.watch TABLE [from
// INDEX]), printing one line per changed row as it arrives, until Ctrl-C
// (or the end of the shell's context). Without from it starts with the
// changes committed from now on. It fails over between the shell's nodes
// like everything else, resuming after the last index printed.
func (s *session) cmdWatch(ctx context.Context, args []string) error {
	opts := client.WatchOptions{Tables: []string{args[0]}, Prev: true}
	switch len(args) {
	case 1:
	case 3:
		if !strings.EqualFold(args[1], "from") {
			return &usageError{findCommand("watch"), fmt.Sprintf("unexpected %q", args[1])}
		}
		from, err := strconv.ParseUint(args[2], 10, 64)
		if err != nil || from == 0 {
			return fmt.Errorf("from %q: want a log index (1 or more)", args[2])
		}
		opts.From = from
	default:
		return &usageError{findCommand("watch"), "want TABLE, or TABLE from INDEX"}
	}
	if s.interactive {
		s.note("watching %s; Ctrl-C stops", args[0])
	}
	for ev := range s.c.Watch(ctx, opts) {
		if ev.Err != nil {
			s.checkFailover()
			return ev.Err
		}
		for i := range ev.Changes {
			fmt.Fprintln(s.out, changeLine(ev.Index, &ev.Changes[i]))
		}
	}
	s.checkFailover()
	return nil
}

// changeLine formats one change: index, operation, table, key, and the new
// row (the old one too for an update or a delete), rows as JSON objects.
func changeLine(index uint64, ch *api.Change) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s %s", index, ch.Op, ch.Table)
	switch {
	case ch.PK != nil:
		fmt.Fprintf(&b, " pk=%s", rowJSON(ch.PK))
	case ch.Rowid != nil:
		fmt.Fprintf(&b, " rowid=%d", *ch.Rowid)
	}
	if ch.New != nil {
		fmt.Fprintf(&b, " %s", rowJSON(ch.New))
	}
	if ch.Old != nil {
		fmt.Fprintf(&b, " (was %s)", rowJSON(ch.Old))
	}
	return b.String()
}

func rowJSON(row map[string]api.Value) string {
	out, err := json.Marshal(row)
	if err != nil {
		return fmt.Sprint(row)
	}
	return string(out)
}
