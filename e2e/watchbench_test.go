//go:build linux

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/raftlite/raftlite/api"
	"github.com/raftlite/raftlite/bench"
)

// lagLog records, for each change event a watcher receives, how long after
// the leader stamped its entry it arrived (one clock: every process runs
// on this machine).
type lagLog struct {
	mu   sync.Mutex
	lags []time.Duration
	rows int
}

func (l *lagLog) add(ev api.ChangeEvent) error {
	stamped, err := time.Parse(time.RFC3339Nano, ev.Time)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lags = append(l.lags, time.Since(stamped))
	l.rows += len(ev.Changes)
	return nil
}

func (l *lagLog) take() (lags []time.Duration, rows int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	lags, rows = l.lags, l.rows
	l.lags, l.rows = nil, 0
	return lags, rows
}

// benchWriteC32 runs raftlite bench's write-c32 workload against n for d
// and returns its rate (writes per second).
func benchWriteC32(b *testing.B, n *node, d time.Duration) float64 {
	b.Helper()
	var out, errOut bytes.Buffer
	args := []string{"-H", n.url(""), "-workload", "write-c32", "-duration", d.String(), "-warmup", "1s",
		"-repeat", "1", "-no-floor", "-json"}
	if code := bench.Main(args, &out, &errOut); code != 0 {
		b.Fatalf("bench %v: exit %d: %s", args, code, errOut.String())
	}
	var rep bench.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil || len(rep.Results) != 1 {
		b.Fatalf("bench report: %v: %s", err, out.String())
	}
	if e := rep.Results[0].Errors; e > 0 {
		b.Fatalf("bench: %d errors: %v", e, rep.Results[0].ErrorSamples)
	}
	return rep.Results[0].OpsPerSec
}

// BenchmarkWatchCapture measures what change capture costs and how far
// behind a watcher runs under load: raftlite bench's write-c32 workload
// (32 clients, one single-row INSERT each per request) against two
// three-node clusters of the Procfile in the same run, one with
// -watch-retention off and one with capture on (the default), the runs
// alternating so that both see the same machine. The capture cluster runs
// twice per iteration: without a watcher (the cost of capture alone), and
// with a watcher following every change on a follower over Server-Sent
// Events (capture plus serving it); the watcher's lag is the time from
// the leader stamping an entry to its event reaching the watcher.
// Reported: writes/s off, on and on with the watcher, the ratios to off,
// and the lag's p50 and p99. Run it with
//
//	go test ./e2e -run '^$' -bench WatchCapture -benchtime 2x
//
// (each iteration is one run of each kind).
func BenchmarkWatchCapture(b *testing.B) {
	const runTime = 5 * time.Second
	off := startProcfileCluster(b, "watch-retention", "off")
	on := startProcfileCluster(b)
	offLeader, onLeader := off.waitLeader(), on.waitLeader()
	watched := on.others(onLeader)[0]

	var offRates, onRates, watchedRates []float64
	var allLags []time.Duration
	received := 0
	for range b.N {
		offRates = append(offRates, benchWriteC32(b, offLeader, runTime))
		onRates = append(onRates, benchWriteC32(b, onLeader, runTime))

		var lags lagLog
		ctx, cancel := context.WithCancel(context.Background())
		streamErr := make(chan error, 1)
		go func() { streamErr <- followLag(ctx, watched, &lags) }()
		watchedRates = append(watchedRates, benchWriteC32(b, onLeader, runTime))
		cancel()
		if err := <-streamErr; err != nil && !isBrokenStream(err) {
			b.Fatalf("watch stream: %v", err)
		}
		l, rows := lags.take()
		allLags = append(allLags, l...)
		received += rows
	}
	if len(allLags) == 0 {
		b.Fatal("the watcher received nothing")
	}
	slices.Sort(allLags)
	p := func(q float64) time.Duration { return allLags[int(q*float64(len(allLags)-1))] }
	offRate, onRate, watchedRate := medianRate(offRates), medianRate(onRates), medianRate(watchedRates)
	b.ReportMetric(offRate, "writes/s-off")
	b.ReportMetric(onRate, "writes/s-on")
	b.ReportMetric(watchedRate, "writes/s-watched")
	b.ReportMetric(onRate/offRate, "on/off")
	b.ReportMetric(watchedRate/offRate, "watched/off")
	b.ReportMetric(float64(p(0.50).Microseconds())/1000, "lag-p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "lag-p99-ms")
	b.Logf("write-c32: %.0f writes/s with capture off, %.0f on (%.2f), %.0f on with a watcher (%.2f); watcher on a follower: %d events, %d rows, lag p50 %v p99 %v max %v",
		offRate, onRate, onRate/offRate, watchedRate, watchedRate/offRate, len(allLags), received, p(0.50), p(0.99), allLags[len(allLags)-1])
}

// followLag follows every change on n from now on, recording lags.
func followLag(ctx context.Context, n *node, lags *lagLog) error {
	var sink watchLog
	err := streamEvents(ctx, n, "/db/watch", 0, func(ev api.ChangeEvent) error {
		sink.add(ev)
		return lags.add(ev)
	})
	if err == nil && sink.err != nil {
		return fmt.Errorf("watch %s: %w", n.name, sink.err)
	}
	return err
}

func medianRate(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
