package bench

import (
	"math"
	"slices"
	"time"
)

// Percentile returns the p-th percentile (0 < p ≤ 100) of sorted, a slice
// of latencies in ascending order, by the nearest-rank method: the smallest
// value such that at least p% of the values are less than or equal to it.
// It never interpolates, so the answer is always a latency that was
// observed. An empty slice gives 0; p ≤ 0 gives the minimum and p ≥ 100 the
// maximum.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if p <= 0 {
		return sorted[0]
	}
	if p >= 100 {
		return sorted[n-1]
	}
	// rank = ceil(p/100 × n), 1-based. The tiny tolerance keeps a product
	// such as 0.999 × 1000 = 999.0000000000001 from rounding up one rank.
	rank := int(math.Ceil(p/100*float64(n) - 1e-9))
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	return sorted[rank-1]
}

// Median returns the median of xs: the middle value, or the mean of the two
// middle values when len(xs) is even. xs is not modified. An empty slice
// gives 0.
func Median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// medianDuration is Median for durations.
func medianDuration(ds []time.Duration) time.Duration {
	fs := make([]float64, len(ds))
	for i, d := range ds {
		fs[i] = float64(d)
	}
	return time.Duration(math.Round(Median(fs)))
}

// Latencies summarises a run's latency distribution.
type Latencies struct {
	P50  time.Duration `json:"p50_ns"`
	P90  time.Duration `json:"p90_ns"`
	P99  time.Duration `json:"p99_ns"`
	P999 time.Duration `json:"p999_ns"`
	Max  time.Duration `json:"max_ns"`
}

// summarize sorts lat in place and returns its percentiles.
func summarize(lat []time.Duration) Latencies {
	slices.Sort(lat)
	return Latencies{
		P50:  Percentile(lat, 50),
		P90:  Percentile(lat, 90),
		P99:  Percentile(lat, 99),
		P999: Percentile(lat, 99.9),
		Max:  Percentile(lat, 100),
	}
}

// RunResult is what one timed run of a workload measured.
type RunResult struct {
	// Ops is the number of requests that succeeded within the measured
	// window (after the warm-up); Rows the rows they wrote or read.
	Ops  int64 `json:"ops"`
	Rows int64 `json:"rows"`
	// Errors counts requests that failed within the window: a transport
	// error, a per-request timeout, a non-200 status or an "error" in the
	// response body.
	Errors int64 `json:"errors"`
	// Elapsed is the measured window's length.
	Elapsed   time.Duration `json:"elapsed_ns"`
	OpsPerSec float64       `json:"ops_per_sec"`
	RowsPerS  float64       `json:"rows_per_sec"`
	Latencies
	// Rounds is what the nodes' metrics say about the window (nil for a
	// target without them).
	Rounds *Rounds `json:"rounds,omitempty"`
	// MembersCPU is the CPU time the members used in the window, summed
	// (process_cpu_seconds_total; 0 for a target without it).
	MembersCPU time.Duration `json:"members_cpu_ns,omitempty"`
}

// Summary is the median, metric by metric, of a workload's runs.
type Summary struct {
	Workload string `json:"workload"`
	Clients  int    `json:"clients"`
	Runs     int    `json:"runs"`
	// OpsPerSec, RowsPerS and the latencies are medians over the runs,
	// each taken separately. Errors is the total over all runs.
	OpsPerSec float64 `json:"ops_per_sec"`
	RowsPerS  float64 `json:"rows_per_sec"`
	Latencies
	Errors int64 `json:"errors"`
	// FsyncRatio is OpsPerSec (RowsPerS for batched writes) divided by the
	// floor's append+fsync rate, for workloads that go through the log; 0
	// when not meaningful or no floor was measured.
	FsyncRatio float64 `json:"fsync_ratio,omitempty"`
	// SQLiteRatio divides the same figure by the floor's raw SQLite rate
	// for that kind of operation (1-row transactions with synchronous=OFF
	// for writes, point SELECTs for reads).
	SQLiteRatio float64 `json:"sqlite_ratio,omitempty"`
	// Rounds holds the medians of the runs' Rounds (nil: none measured).
	Rounds *Rounds `json:"rounds,omitempty"`
	// CPUPerOp is the median over the runs of the members' CPU time per
	// successful request (0: not measured). The machine's cores divided by
	// it bound the ops/s the members can serve, whatever the disk.
	CPUPerOp time.Duration `json:"cpu_per_op_ns,omitempty"`
	// ErrorSamples are a few distinct error messages, for diagnosis.
	ErrorSamples []string    `json:"error_samples,omitempty"`
	Each         []RunResult `json:"each"`
}

// summarizeRuns takes the per-metric median of runs.
func summarizeRuns(name string, clients int, runs []RunResult) Summary {
	s := Summary{Workload: name, Clients: clients, Runs: len(runs), Each: runs}
	var ops, rows []float64
	var p50, p90, p99, p999, mx, cpu []time.Duration
	for _, r := range runs {
		if r.MembersCPU > 0 && r.Ops > 0 {
			cpu = append(cpu, r.MembersCPU/time.Duration(r.Ops))
		}
		ops = append(ops, r.OpsPerSec)
		rows = append(rows, r.RowsPerS)
		p50 = append(p50, r.P50)
		p90 = append(p90, r.P90)
		p99 = append(p99, r.P99)
		p999 = append(p999, r.P999)
		mx = append(mx, r.Max)
		s.Errors += r.Errors
	}
	s.OpsPerSec = Median(ops)
	s.RowsPerS = Median(rows)
	s.P50 = medianDuration(p50)
	s.P90 = medianDuration(p90)
	s.P99 = medianDuration(p99)
	s.P999 = medianDuration(p999)
	s.Max = medianDuration(mx)
	s.Rounds = medianRounds(runs)
	if len(cpu) > 0 {
		s.CPUPerOp = medianDuration(cpu)
	}
	return s
}
