package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one `raftlite bench` invocation.
type Report struct {
	Start  time.Time `json:"start"`
	Hosts  []string  `json:"hosts"`
	Spread bool      `json:"spread"`
	// FirstHostRole is "leader" or "follower" as /nodes said before the
	// run ("" if unknown).
	FirstHostRole string        `json:"first_host_role,omitempty"`
	Duration      time.Duration `json:"duration_ns"`
	Warmup        time.Duration `json:"warmup_ns"`
	Repeat        int           `json:"repeat"`
	Floor         *Floor        `json:"floor,omitempty"`
	Results       []Summary     `json:"results"`
	// CompareHosts, CompareFirstHostRole and CompareResults are the
	// -compare target's, measured in the same invocation.
	CompareHosts         []string  `json:"compare_hosts,omitempty"`
	CompareFirstHostRole string    `json:"compare_first_host_role,omitempty"`
	CompareResults       []Summary `json:"compare_results,omitempty"`
	// Interrupted: SIGINT stopped the run; Results holds the workloads
	// that finished.
	Interrupted bool `json:"interrupted,omitempty"`
}

// setRatios fills s's ratios to the floor for workload w.
func setRatios(s *Summary, w Workload, fl *Floor) {
	if fl == nil {
		return
	}
	fig := s.OpsPerSec
	if w.kind == opBatch {
		fig = s.RowsPerS
	}
	if w.throughLog && fl.FsyncPerSec > 0 {
		s.FsyncRatio = fig / fl.FsyncPerSec
	}
	switch w.kind {
	case opWrite, opBatch:
		if fl.SQLiteOffPerSec > 0 {
			s.SQLiteRatio = s.RowsPerS / fl.SQLiteOffPerSec
		}
	case opRead:
		if fl.SQLiteSelectPerSec > 0 {
			s.SQLiteRatio = s.OpsPerSec / fl.SQLiteSelectPerSec
		}
	}
}

// WriteJSON writes r as indented JSON.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes r as a human-readable table: the workloads' medians,
// then the floor.
func WriteTable(w io.Writer, r *Report) error {
	target := "all clients to the first host"
	if r.FirstHostRole != "" {
		target += ", the " + r.FirstHostRole
	}
	if r.Spread {
		target = "clients spread over the hosts"
	}
	fmt.Fprintf(w, "raftlite bench %s  hosts: %s (%s)\n", r.Start.Format(time.RFC3339), strings.Join(r.Hosts, ","), target)
	fmt.Fprintf(w, "each workload: %s warm-up + %s measured, %d run(s); figures are medians of the runs, errors the total\n",
		r.Warmup, r.Duration, r.Repeat)
	if r.Interrupted {
		fmt.Fprintln(w, "INTERRUPTED: only the workloads that finished are shown")
	}
	fmt.Fprintln(w)
	if err := writeResults(w, r.Results, r.Repeat); err != nil {
		return err
	}
	if r.CompareHosts != nil {
		role := ""
		if r.CompareFirstHostRole != "" {
			role = ", the " + r.CompareFirstHostRole
		}
		fmt.Fprintf(w, "\ncompare: %s (all clients to the first host%s), run for run in turn with the above\n\n", strings.Join(r.CompareHosts, ","), role)
		if err := writeResults(w, r.CompareResults, r.Repeat); err != nil {
			return err
		}
		if err := writeComparison(w, r.Results, r.CompareResults); err != nil {
			return err
		}
	}
	return writeFloor(w, r)
}

// writeResults writes one target's table of workloads and their stages.
func writeResults(w io.Writer, results []Summary, repeat int) error {
	// Right-aligned columns, but names padded to one width so that they
	// read left-aligned.
	names := make([]string, len(results))
	nameW := len("workload")
	for i, s := range results {
		names[i] = s.Workload
		if s.Runs != repeat {
			names[i] += fmt.Sprintf(" (%d of %d runs)", s.Runs, repeat)
		}
		nameW = max(nameW, len(names[i]))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tclients\tops/s\trows/s\tp50\tp90\tp99\tp99.9\tmax\terrors\tvs fsync\tvs sqlite\tentries/rnd\treqs/entry\tfsyncs/rnd\tcpu/op\t\n", nameW, "workload")
	for i, s := range results {
		cpu := "-"
		if s.CPUPerOp > 0 {
			cpu = fmtDur(s.CPUPerOp)
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\t\n",
			nameW, names[i], s.Clients, fmtRate(s.OpsPerSec), fmtRate(s.RowsPerS),
			fmtDur(s.P50), fmtDur(s.P90), fmtDur(s.P99), fmtDur(s.P999), fmtDur(s.Max),
			s.Errors, fmtRatio(s.FsyncRatio), fmtRatio(s.SQLiteRatio), fmtRounds(s.Rounds), cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if err := writeStages(w, results, nameW); err != nil {
		return err
	}
	for _, s := range results {
		for _, e := range s.ErrorSamples {
			fmt.Fprintf(w, "  %s error: %s\n", s.Workload, e)
		}
	}
	return nil
}

// writeComparison writes, per workload both targets ran, the ratios of
// the first target's figures to the compared one's.
func writeComparison(w io.Writer, mine, theirs []Summary) error {
	fmt.Fprintln(w, "\nratios, -H ÷ -compare (throughput: above 1 is -H faster; latency: below 1 is -H faster):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "workload\tops/s\trows/s\tp50\tp99\t\n")
	for _, m := range mine {
		for _, o := range theirs {
			if o.Workload != m.Workload {
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", m.Workload, fmtRatio(ratio(m.OpsPerSec, o.OpsPerSec)),
				fmtRatio(ratio(m.RowsPerS, o.RowsPerS)), fmtRatio(ratio(float64(m.P50), float64(o.P50))), fmtRatio(ratio(float64(m.P99), float64(o.P99))))
		}
	}
	return tw.Flush()
}

// ratio is a ÷ b, or 0 when b is not positive.
func ratio(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// writeFloor writes the floor measured in the run, if any, and what the
// ratio columns mean.
func writeFloor(w io.Writer, r *Report) error {
	if fl := r.Floor; fl != nil {
		fmt.Fprintf(w, "\nfloor (same run, %s, median of %d):\n", fl.Dir, r.Repeat)
		if fl.OnTmpfs {
			fmt.Fprintln(w, "  WARNING: the floor directory is on tmpfs, so fsync costs nothing there; use -floor-dir on the nodes' disk")
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintf(tw, "  4 KiB append+fsync\t%s/s\t(%s each)\n", fmtRate(fl.FsyncPerSec), fmtDur(fl.FsyncLatency))
		fmt.Fprintf(tw, "  SQLite WAL 1-row txn, synchronous=OFF\t%s/s\n", fmtRate(fl.SQLiteOffPerSec))
		fmt.Fprintf(tw, "  SQLite WAL 1-row txn, synchronous=FULL\t%s/s\n", fmtRate(fl.SQLiteFullPerSec))
		fmt.Fprintf(tw, "  SQLite point SELECT\t%s/s\n", fmtRate(fl.SQLiteSelectPerSec))
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "vs fsync: ops/s (rows/s for batches) ÷ append+fsync rate, for requests that go through the Raft log.")
		fmt.Fprintln(w, "vs sqlite: rows/s ÷ raw SQLite synchronous=OFF txn rate (writes), ops/s ÷ raw point-SELECT rate (reads).")
		fmt.Fprintln(w, "entries/rnd: log entries per leader log append (a round); reqs/entry: write requests per entry;")
		fmt.Fprintln(w, "fsyncs/rnd: the log stores' fdatasyncs on all members per round (from the nodes' /metrics).")
		fmt.Fprintln(w, "cpu/op: the members' CPU time per request, summed over the members (process_cpu_seconds_total);")
		fmt.Fprintln(w, "  the cores the members may use, divided by it, bound ops/s whatever the disk.")
	}
	return nil
}

// fmtRounds formats a summary's round figures as three cells.
func fmtRounds(r *Rounds) string {
	if r == nil {
		return "-\t-\t-"
	}
	reqs := "-"
	if r.RequestsPerEntry > 0 {
		reqs = strconv.FormatFloat(r.RequestsPerEntry, 'f', 1, 64)
	}
	return strconv.FormatFloat(r.EntriesPerRound, 'f', 1, 64) + "\t" + reqs + "\t" + strconv.FormatFloat(r.FsyncsPerRound, 'f', 1, 64)
}

// writeStages writes the mean time of each stage of a write, from the
// nodes' metrics, for the workloads that have them.
func writeStages(w io.Writer, results []Summary, nameW int) error {
	var rows []Summary
	for _, s := range results {
		if s.Rounds != nil && len(s.Rounds.Stages) > 0 {
			rows = append(rows, s)
		}
	}
	if len(rows) == 0 {
		return nil
	}
	fmt.Fprintln(w, "\nstages (nodes' metrics, mean per observation; store/replicate/apply are per round or batch):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\t%s\t\n", nameW, "workload", strings.Join(StageNames(), "\t"))
	for _, s := range rows {
		cells := make([]string, 0, len(stageSeries))
		for _, name := range StageNames() {
			cells = append(cells, fmtDur(s.Rounds.Stages[name]))
		}
		fmt.Fprintf(tw, "%-*s\t%s\t\n", nameW, s.Workload, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// fmtRate formats a rate with thousands separators and no decimals (one
// decimal below 10).
func fmtRate(x float64) string {
	if x <= 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return "0"
	}
	if x < 10 {
		return strconv.FormatFloat(x, 'f', 1, 64)
	}
	return groupThousands(strconv.FormatInt(int64(math.Round(x)), 10))
}

func groupThousands(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	pre := len(digits) % 3
	if pre > 0 {
		b.WriteString(digits[:pre])
	}
	for i := pre; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}

// fmtDur formats a latency in milliseconds with about three significant
// figures, or in seconds from 10 s up.
func fmtDur(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch {
	case d <= 0:
		return "-"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case ms < 100:
		return strconv.FormatFloat(ms, 'f', 1, 64) + "ms"
	case ms < 10000:
		return strconv.FormatFloat(ms, 'f', 0, 64) + "ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	}
}

// fmtRatio formats a ratio to the floor; 0 means none.
func fmtRatio(x float64) string {
	switch {
	case x <= 0 || math.IsNaN(x) || math.IsInf(x, 0):
		return "-"
	case x < 10:
		return strconv.FormatFloat(x, 'f', 2, 64) + "x"
	default:
		return strconv.FormatFloat(x, 'f', 1, 64) + "x"
	}
}
