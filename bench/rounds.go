package bench

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// Rounds is what the nodes' own metrics (/metrics, summed over every
// member) say about a run's measured window: how the writes were grouped
// into Raft rounds and how long each stage took. A round is one append to
// the leader's log (raftlite_raft_append_entries{role="leader"}): the
// entries it holds then travel to the followers in one AppendEntries each.
// A target without raftlite's metrics (rqlite) has none.
type Rounds struct {
	// Rounds is the number of leader log appends in the window.
	Rounds float64 `json:"rounds"`
	// EntriesPerRound: log entries per leader append.
	EntriesPerRound float64 `json:"entries_per_round"`
	// RequestsPerEntry: write requests per proposed log entry (the leader
	// gathers concurrent writes into one entry).
	RequestsPerEntry float64 `json:"requests_per_entry,omitempty"`
	// FsyncsPerRound: the log stores' fdatasyncs on all members per round.
	FsyncsPerRound float64 `json:"fsyncs_per_round"`
	// Stages are mean durations per observation, by stage name (see
	// stageSeries), for the stages observed in the window.
	Stages map[string]time.Duration `json:"stages_ns,omitempty"`
}

// stageSeries are the per-stage histograms bench reads, in the order of a
// write's path, each with the label that selects its series ("" for none).
var stageSeries = []struct{ stage, metric, label string }{
	{"decode", "raftlite_http_decode_seconds", "endpoint=execute"},
	{"propose-wait", "raftlite_cluster_propose_wait_seconds", ""},
	{"store-leader", "raftlite_raft_store_logs_seconds", "role=leader"},
	{"replicate", "raftlite_raft_replicate_seconds", ""},
	{"store-follower", "raftlite_raft_store_logs_seconds", "role=follower"},
	{"commit+apply", "raftlite_raft_commit_seconds", ""},
	{"apply-batch", "raftlite_fsm_apply_batch_seconds", ""},
	{"respond", "raftlite_http_respond_seconds", "endpoint=execute"},
}

// StageNames lists the stages in path order (for tables).
func StageNames() []string {
	out := make([]string, len(stageSeries))
	for i, s := range stageSeries {
		out[i] = s.stage
	}
	return out
}

// sample is a scrape of every member: sums and counts of histograms and
// counter values, keyed by metric name and label ("name{label}"), summed
// over the members.
type sample map[string]float64

// scrapeMembers reads /metrics from every member (from /nodes, else
// cfg.Hosts) and sums what bench uses. ok is false when no member has
// raftlite's round metrics.
func scrapeMembers(ctx context.Context, cfg *Config) (s sample, ok bool) {
	hosts := memberHosts(ctx, cfg)
	s = sample{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newClient(h, 5*time.Second, cfg)
			defer c.close()
			b, err := c.doRaw(ctx, "GET", "/metrics", nil)
			if err != nil {
				return
			}
			one, err := parseSample(b)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range one {
				s[k] += v
			}
		}()
	}
	wg.Wait()
	_, ok = s["raftlite_raft_append_entries{role=leader}_count"]
	return s, ok
}

// parseSample keeps the series bench uses from a Prometheus text page.
func parseSample(page []byte) (sample, error) {
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	s := sample{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			for _, key := range seriesKeys(name, m) {
				switch {
				case m.GetHistogram() != nil:
					s[key+"_sum"] += m.GetHistogram().GetSampleSum()
					s[key+"_count"] += float64(m.GetHistogram().GetSampleCount())
				case m.GetCounter() != nil:
					s[key] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return s, nil
}

// seriesKeys names a series by its metric alone and by each of its labels:
// "name" and "name{label=value}".
func seriesKeys(name string, m *dto.Metric) []string {
	keys := []string{name}
	for _, l := range m.GetLabel() {
		keys = append(keys, fmt.Sprintf("%s{%s=%s}", name, l.GetName(), l.GetValue()))
	}
	return keys
}

// roundsBetween computes a window's Rounds from the samples at its start
// and end; nil when the leader appended nothing in it.
func roundsBetween(before, after sample) *Rounds {
	delta := func(key string) float64 { return after[key] - before[key] }
	rounds := delta("raftlite_raft_append_entries{role=leader}_count")
	if rounds <= 0 {
		return nil
	}
	r := &Rounds{
		Rounds:          rounds,
		EntriesPerRound: delta("raftlite_raft_append_entries{role=leader}_sum") / rounds,
		FsyncsPerRound:  delta("raftlite_raft_log_syncs_total") / rounds,
		Stages:          map[string]time.Duration{},
	}
	if n := delta("raftlite_cluster_proposal_requests_count"); n > 0 {
		r.RequestsPerEntry = delta("raftlite_cluster_proposal_requests_sum") / n
	}
	for _, st := range stageSeries {
		key := st.metric
		if st.label != "" {
			key += "{" + st.label + "}"
		}
		if n := delta(key + "_count"); n > 0 {
			r.Stages[st.stage] = time.Duration(delta(key+"_sum") / n * float64(time.Second))
		}
	}
	return r
}

// cpuBetween is the CPU time the members used between two samples.
func cpuBetween(before, after sample) time.Duration {
	const key = "process_cpu_seconds_total"
	return time.Duration((after[key] - before[key]) * float64(time.Second))
}

// medianRounds takes the per-figure median of the runs' Rounds (nil ones
// skipped).
func medianRounds(runs []RunResult) *Rounds {
	var rounds, entries, reqs, syncs []float64
	stages := map[string][]float64{}
	for _, rr := range runs {
		r := rr.Rounds
		if r == nil {
			continue
		}
		rounds = append(rounds, r.Rounds)
		entries = append(entries, r.EntriesPerRound)
		reqs = append(reqs, r.RequestsPerEntry)
		syncs = append(syncs, r.FsyncsPerRound)
		for k, d := range r.Stages {
			stages[k] = append(stages[k], float64(d))
		}
	}
	if len(rounds) == 0 {
		return nil
	}
	m := &Rounds{Rounds: Median(rounds), EntriesPerRound: Median(entries), RequestsPerEntry: Median(reqs),
		FsyncsPerRound: Median(syncs), Stages: map[string]time.Duration{}}
	for k, ds := range stages {
		m.Stages[k] = time.Duration(Median(ds))
	}
	return m
}

// memberHosts returns the members' API base URLs from /nodes on the first
// host, or cfg.Hosts when /nodes does not answer.
func memberHosts(ctx context.Context, cfg *Config) []string {
	ni, err := getNodes(ctx, cfg)
	if err != nil || len(ni) == 0 {
		return cfg.Hosts
	}
	var hosts []string
	for _, n := range ni {
		if u, err := baseURL(n.APIAddr); err == nil {
			hosts = append(hosts, u)
		}
	}
	return hosts
}
