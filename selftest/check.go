package selftest

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

const (
	verdictOK      = "linearizable"
	verdictIllegal = "NOT linearizable"
	verdictTimeout = "unknown (the check timed out)"
)

func verdict(r porcupine.CheckResult) string {
	switch r {
	case porcupine.Ok:
		return verdictOK
	case porcupine.Illegal:
		return verdictIllegal
	default:
		return verdictTimeout
	}
}

// check fills sum in: porcupine's verdict on the history (and on each key,
// to count the violations), the visualisation, and every key's count of
// applied writes against the writes acknowledged (lost) and issued
// (duplicates).
func check(cfg Config, h *history, w *workload, final *finalRead, sum *Summary) {
	ops := h.operations()
	sum.Ops = len(ops)
	for _, op := range ops {
		switch {
		case op.Input.(kvInput).Kind == opRead:
			sum.Reads++
		case op.Output.(kvOutput).Unknown:
			sum.UnknownWrites++
		default:
			sum.Writes++
		}
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(kvModel, ops, cfg.CheckTimeout)
	sum.Verdict = verdict(res)
	cfg.Log.Info("selftest: porcupine", "verdict", sum.Verdict, "ops", len(ops), "took", time.Since(start).Round(time.Millisecond))
	sum.StaleReads, sum.StaleExamples = staleReads(ops, h.nemesisAnnotations(), 5)
	if res == porcupine.Illegal {
		for _, part := range kvModel.Partition(ops) {
			if porcupine.CheckOperationsTimeout(kvModel, part, cfg.CheckTimeout) == porcupine.Illegal {
				sum.Violations++
			}
		}
	}
	if cfg.HTML != "" {
		info.AddAnnotations(h.nemesisAnnotations())
		if err := porcupine.VisualizePath(kvModel, info, cfg.HTML); err != nil {
			sum.Anomalies = append(sum.Anomalies, fmt.Sprintf("writing the visualisation: %v", err))
		}
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	for k, reg := range final.registers {
		if missing := w.acked[k] - reg.Count; missing > 0 {
			sum.Lost += missing
		}
		if extra := reg.Count - w.acked[k] - w.unknown[k]; extra > 0 {
			sum.Duplicates += extra
		}
	}
	sum.Divergent = final.divergent
	sum.Anomalies = append(sum.Anomalies, w.errs...)
	sum.Counts = w.counts
}

// staleReads explains violations in the simplest terms: since every write
// increments a key's count, the counts that reads return can only grow in
// real time. It lists (up to limit) reads that returned a smaller count
// than a read of the same key that had returned before they began, each
// with the earlier read and the fault active then (faults: the nemesis's
// annotations), and returns how many such reads there are.
func staleReads(ops []porcupine.Operation, faults []porcupine.Annotation, limit int) (int, []string) {
	byKey := map[int][]porcupine.Operation{}
	for _, op := range ops {
		if in := op.Input.(kvInput); in.Kind == opRead {
			byKey[in.Key] = append(byKey[in.Key], op)
		}
	}
	byCall := func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) }
	total := 0
	type staleRead struct{ stale, newer porcupine.Operation }
	var firsts []staleRead // per newer read, the first read older than it
	for _, reads := range byKey {
		byReturn := slices.Clone(reads)
		slices.SortFunc(byReturn, func(a, b porcupine.Operation) int { return cmp.Compare(a.Return, b.Return) })
		slices.SortFunc(reads, byCall)
		newest := -1 // in byReturn: the returned read with the highest count
		next := 0
		reported := map[int]bool{}
		for _, r := range reads {
			for ; next < len(byReturn) && byReturn[next].Return < r.Call; next++ {
				if newest < 0 || byReturn[next].Output.(kvOutput).Count > byReturn[newest].Output.(kvOutput).Count {
					newest = next
				}
			}
			if newest < 0 || r.Output.(kvOutput).Count >= byReturn[newest].Output.(kvOutput).Count {
				continue
			}
			total++
			if !reported[newest] {
				reported[newest] = true
				firsts = append(firsts, staleRead{r, byReturn[newest]})
			}
		}
	}
	// The earliest distinct events, in time order.
	slices.SortFunc(firsts, func(a, b staleRead) int { return byCall(a.stale, b.stale) })
	var examples []string
	for _, f := range firsts[:min(limit, len(firsts))] {
		examples = append(examples, describeStale(f.stale, f.newer, faults))
	}
	return total, examples
}

func describeStale(stale, newer porcupine.Operation, faults []porcupine.Annotation) string {
	sm, nm := stale.Metadata.(opMeta), newer.Metadata.(opMeta)
	so, no := stale.Output.(kvOutput), newer.Output.(kvOutput)
	during := "no fault active"
	for _, f := range faults {
		if f.Start <= stale.Call && stale.Call <= f.End {
			during = "during " + f.Description
		}
	}
	return fmt.Sprintf("k%d: read on %s (%s) at %v returned %d (#%d), %v after a read on %s (%s) returned %d (#%d); %s",
		stale.Input.(kvInput).Key, sm.Node, sm.Level, time.Duration(stale.Call).Round(time.Microsecond), so.Value, so.Count,
		time.Duration(stale.Call-newer.Return), nm.Node, nm.Level, no.Value, no.Count, during)
}
