package bench

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

func ms(x float64) time.Duration { return time.Duration(x * float64(time.Millisecond)) }

// seq returns 1..n milliseconds, sorted.
func seq(n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = time.Duration(i+1) * time.Millisecond
	}
	return out
}

func TestPercentile(t *testing.T) {
	tests := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single p50", seq(1), 50, ms(1)},
		{"single p99.9", seq(1), 99.9, ms(1)},
		{"p0 is min", seq(10), 0, ms(1)},
		{"negative is min", seq(10), -5, ms(1)},
		{"p100 is max", seq(10), 100, ms(10)},
		{"above 100 is max", seq(10), 150, ms(10)},
		// Nearest rank: ceil(p/100 × n).
		{"10 p50", seq(10), 50, ms(5)},
		{"10 p51", seq(10), 51, ms(6)},
		{"10 p90", seq(10), 90, ms(9)},
		{"10 p99", seq(10), 99, ms(10)},
		{"100 p50", seq(100), 50, ms(50)},
		{"100 p90", seq(100), 90, ms(90)},
		{"100 p99", seq(100), 99, ms(99)},
		{"100 p99.9", seq(100), 99.9, ms(100)},
		// 0.999 × 1000 is 999.0000000000001 in floating point: must not
		// round up to rank 1000.
		{"1000 p99.9", seq(1000), 99.9, ms(999)},
		{"1000 p99", seq(1000), 99, ms(990)},
		{"1001 p99.9", seq(1001), 99.9, ms(1000)},
		{"3 p50", seq(3), 50, ms(2)},
		{"2 p50", seq(2), 50, ms(1)},
		{"tiny p", seq(1000), 0.0001, ms(1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.in, tt.p); got != tt.want {
				t.Errorf("Percentile(n=%d, %v) = %v, want %v", len(tt.in), tt.p, got, tt.want)
			}
		})
	}
}

func TestPercentileIsObserved(t *testing.T) {
	// Every answer is one of the inputs and percentiles are monotonic.
	in := []time.Duration{3, 3, 7, 100, 101, 5000}
	prev := time.Duration(0)
	for p := 0.0; p <= 100; p += 0.1 {
		got := Percentile(in, p)
		if !slices.Contains(in, got) {
			t.Fatalf("p%v = %v: not an observed value", p, got)
		}
		if got < prev {
			t.Fatalf("p%v = %v < previous %v", p, got, prev)
		}
		prev = got
	}
}

func TestSummarize(t *testing.T) {
	lat := seq(1000)
	// Shuffle deterministically: summarize must sort.
	slices.Reverse(lat)
	lat[0], lat[500] = lat[500], lat[0]
	got := summarize(lat)
	want := Latencies{P50: ms(500), P90: ms(900), P99: ms(990), P999: ms(999), Max: ms(1000)}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if (summarize(nil) != Latencies{}) {
		t.Errorf("summarize(nil) not zero")
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{7}, 7},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{10, 10, 1000}, 10},
		{[]float64{5, 1}, 3},
	}
	for _, tt := range tests {
		in := slices.Clone(tt.in)
		if got := Median(in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !slices.Equal(in, tt.in) {
			t.Errorf("Median modified its input: %v", in)
		}
	}
}

func TestSummarizeRuns(t *testing.T) {
	runs := []RunResult{
		{OpsPerSec: 100, RowsPerS: 1000, Errors: 1, Latencies: Latencies{P50: ms(1), P90: ms(9), P99: ms(30), P999: ms(50), Max: ms(90)}},
		{OpsPerSec: 300, RowsPerS: 3000, Errors: 0, Latencies: Latencies{P50: ms(3), P90: ms(4), P99: ms(10), P999: ms(70), Max: ms(80)}},
		{OpsPerSec: 200, RowsPerS: 2000, Errors: 2, Latencies: Latencies{P50: ms(2), P90: ms(5), P99: ms(20), P999: ms(60), Max: ms(1000)}},
	}
	s := summarizeRuns("w", 4, runs)
	if s.OpsPerSec != 200 || s.RowsPerS != 2000 {
		t.Errorf("rates %v %v, want medians 200 2000", s.OpsPerSec, s.RowsPerS)
	}
	want := Latencies{P50: ms(2), P90: ms(5), P99: ms(20), P999: ms(60), Max: ms(90)}
	if s.Latencies != want {
		t.Errorf("latencies %+v, want per-metric medians %+v", s.Latencies, want)
	}
	if s.Errors != 3 || s.Runs != 3 || s.Clients != 4 || s.Workload != "w" || len(s.Each) != 3 {
		t.Errorf("summary %+v", s)
	}
}

func TestSetRatios(t *testing.T) {
	fl := &Floor{FsyncPerSec: 1000, SQLiteOffPerSec: 50000, SQLiteSelectPerSec: 40000}
	byName := func(name string) Workload {
		ws, err := lookupWorkloads(name)
		if err != nil {
			t.Fatal(err)
		}
		return ws[0]
	}
	s := Summary{OpsPerSec: 500, RowsPerS: 500}
	setRatios(&s, byName("write-c1"), fl)
	if s.FsyncRatio != 0.5 || s.SQLiteRatio != 0.01 {
		t.Errorf("write-c1 ratios %v %v", s.FsyncRatio, s.SQLiteRatio)
	}
	s = Summary{OpsPerSec: 80, RowsPerS: 8000}
	setRatios(&s, byName("batch-100-c8"), fl)
	if s.FsyncRatio != 8 || s.SQLiteRatio != 0.16 {
		t.Errorf("batch ratios %v %v (want rows/s based)", s.FsyncRatio, s.SQLiteRatio)
	}
	s = Summary{OpsPerSec: 20000, RowsPerS: 20000}
	setRatios(&s, byName("read-none-c8"), fl)
	if s.FsyncRatio != 0 || s.SQLiteRatio != 0.5 {
		t.Errorf("read-none ratios %v %v", s.FsyncRatio, s.SQLiteRatio)
	}
	s = Summary{OpsPerSec: 2000, RowsPerS: 2000}
	setRatios(&s, byName("read-strong-c8"), fl)
	if s.FsyncRatio != 2 {
		t.Errorf("read-strong goes through the log: fsync ratio %v, want 2", s.FsyncRatio)
	}
	s = Summary{OpsPerSec: 2000}
	setRatios(&s, byName("write-c1"), nil)
	if s.FsyncRatio != 0 || s.SQLiteRatio != 0 {
		t.Errorf("no floor: ratios %v %v", s.FsyncRatio, s.SQLiteRatio)
	}
}

func TestFormat(t *testing.T) {
	rates := map[float64]string{
		0: "0", -1: "0", 2.345: "2.3", 10: "10", 999.4: "999", 999.6: "1,000",
		12345.4: "12,345", 1234567: "1,234,567", 100000: "100,000",
	}
	for in, want := range rates {
		if got := fmtRate(in); got != want {
			t.Errorf("fmtRate(%v) = %q, want %q", in, got, want)
		}
	}
	durs := map[time.Duration]string{
		0: "-", 420 * time.Microsecond: "0.42ms", ms(3.216): "3.22ms", ms(17.04): "17.0ms",
		ms(123.4): "123ms", ms(3900): "3900ms", 12 * time.Second: "12.0s",
	}
	for in, want := range durs {
		if got := fmtDur(in); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", in, got, want)
		}
	}
	ratios := map[float64]string{0: "-", 0.123: "0.12x", 2.5: "2.50x", 28.91: "28.9x"}
	for in, want := range ratios {
		if got := fmtRatio(in); got != want {
			t.Errorf("fmtRatio(%v) = %q, want %q", in, got, want)
		}
	}
}

func sampleReport() *Report {
	return &Report{
		Start:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Hosts:    []string{"http://127.0.0.1:4001"},
		Duration: 10 * time.Second,
		Warmup:   2 * time.Second,
		Repeat:   3,
		Floor: &Floor{Dir: "/data", FsyncPerSec: 2500, FsyncLatency: 400 * time.Microsecond,
			SQLiteOffPerSec: 48000, SQLiteFullPerSec: 3400, SQLiteSelectPerSec: 60000},
		Results: []Summary{
			{Workload: "write-c1", Clients: 1, Runs: 3, OpsPerSec: 412.4, RowsPerS: 412.4, Errors: 0, FsyncRatio: 0.165, SQLiteRatio: 0.0086,
				Latencies: Latencies{P50: ms(2.31), P90: ms(3), P99: ms(9.5), P999: ms(31), Max: ms(48)}},
			{Workload: "batch-100-c8", Clients: 8, Runs: 3, OpsPerSec: 87, RowsPerS: 8700, Errors: 2, FsyncRatio: 3.48,
				ErrorSamples: []string{"HTTP 503: leader not found"},
				Latencies:    Latencies{P50: ms(80), P90: ms(120), P99: ms(300), P999: ms(450), Max: ms(1200)}},
			{Workload: "read-linearizable-c8", Clients: 8, Runs: 3, OpsPerSec: 12000, RowsPerS: 12000, SQLiteRatio: 0.2,
				Latencies: Latencies{P50: ms(0.5), P90: ms(1), P99: ms(4), P999: ms(9), Max: ms(20)}},
		},
	}
}

func TestWriteTable(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteTable(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	t.Log("\n" + out)
	for _, want := range []string{
		"hosts: http://127.0.0.1:4001 (all clients to the first host)",
		"2s warm-up + 10s measured, 3 run(s)",
		"4 KiB append+fsync", "2,500/s", "(0.40ms each)",
		"synchronous=OFF", "48,000/s", "synchronous=FULL", "3,400/s", "60,000/s",
		"batch-100-c8 error: HTTP 503: leader not found",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "INTERRUPTED") {
		t.Errorf("not interrupted, but says so")
	}

	// The table: a header and one row per workload, every row the same
	// width, cells right-aligned under their headers.
	lines := strings.Split(out, "\n")
	hdr := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), "workload ") })
	if hdr < 0 {
		t.Fatalf("no header line")
	}
	header := lines[hdr]
	rows := lines[hdr+1 : hdr+4]
	wantCells := [][]string{
		{"write-c1", "1", "412", "412", "2.31ms", "3.00ms", "9.50ms", "31.0ms", "48.0ms", "0", "0.17x", "0.01x"},
		{"batch-100-c8", "8", "87", "8,700", "80.0ms", "120ms", "300ms", "450ms", "1200ms", "2", "3.48x", "-"},
		{"read-linearizable-c8", "8", "12,000", "12,000", "0.50ms", "1.00ms", "4.00ms", "9.00ms", "20.0ms", "0", "-", "0.20x"},
	}
	headers := []string{"workload", "clients", "ops/s", "rows/s", "p50", "p90", "p99", "p99.9", "max", "errors", "vs fsync", "vs sqlite"}
	for i, row := range rows {
		if len(row) != len(header) {
			t.Errorf("row %d width %d, header %d:\n%s\n%s", i, len(row), len(header), header, row)
		}
		if !strings.HasPrefix(strings.TrimSpace(row), wantCells[i][0]+" ") {
			t.Errorf("row %d does not start with its name: %q", i, row)
		}
		// Each numeric cell ends where its header ends.
		for j := 1; j < len(headers); j++ {
			end := strings.Index(header, headers[j]) + len(headers[j])
			cell := wantCells[i][j]
			if end > len(row) || row[end-len(cell):end] != cell {
				t.Errorf("row %d: %q not right-aligned under %q:\n%s\n%s", i, cell, headers[j], header, row)
			}
		}
	}
}

func TestWriteTableInterrupted(t *testing.T) {
	r := sampleReport()
	r.Interrupted = true
	r.Floor = nil
	r.Spread = true
	r.Results[2].Runs = 1
	var buf bytes.Buffer
	if err := WriteTable(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"INTERRUPTED", "clients spread over the hosts", "read-linearizable-c8 (1 of 3 runs)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "floor") {
		t.Errorf("no floor measured, but printed:\n%s", out)
	}
}

func TestWriteJSON(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJSON(&buf, sampleReport()); err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, buf.String())
	}
	if len(back.Results) != 3 || back.Results[1].RowsPerS != 8700 || back.Results[0].P50 != ms(2.31) ||
		back.Floor.FsyncPerSec != 2500 || back.Repeat != 3 {
		t.Errorf("round trip lost data: %+v", back)
	}
	if !strings.Contains(buf.String(), `"p99_ns"`) || !strings.Contains(buf.String(), `"sqlite_wal_full_txn_per_sec"`) {
		t.Errorf("field names missing:\n%s", buf.String())
	}
}
