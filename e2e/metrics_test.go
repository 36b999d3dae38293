package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape fetches a node's /metrics and parses it as Prometheus does.
func (n *node) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	code, body, err := n.call("GET", "/metrics", nil, "")
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s: GET /metrics: %d %v\n%s", n.name, code, err, body)
	}
	var p expfmt.TextParser
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s: parse /metrics: %v", n.name, err)
	}
	return families
}

// histogram returns the histogram of family name whose labels include
// labels (name, value pairs), failing the test if there is none.
func histogram(t *testing.T, who string, families map[string]*dto.MetricFamily, name string, labels ...string) *dto.Histogram {
	t.Helper()
	mf := families[name]
	if mf == nil || mf.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("%s: /metrics has no histogram %s", who, name)
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		match := true
		for i := 0; i+1 < len(labels); i += 2 {
			match = match && have[labels[i]] == labels[i+1]
		}
		if match {
			return m.GetHistogram()
		}
	}
	t.Fatalf("%s: histogram %s has no series %v", who, name, labels)
	return nil
}

// checkHistogram requires at least minCount observations with a mean in
// [lo, hi].
func checkHistogram(t *testing.T, who string, families map[string]*dto.MetricFamily, name string, minCount uint64, lo, hi float64, labels ...string) {
	t.Helper()
	h := histogram(t, who, families, name, labels...)
	count := h.GetSampleCount()
	if count < minCount {
		t.Errorf("%s: %s%v count = %d, want >= %d", who, name, labels, count, minCount)
		return
	}
	if mean := h.GetSampleSum() / float64(count); mean < lo || mean > hi {
		t.Errorf("%s: %s%v mean = %g over %d, want within [%g, %g]", who, name, labels, mean, count, lo, hi)
	}
}

// counterOrGauge returns the value of the unlabelled series name.
func counterOrGauge(t *testing.T, who string, families map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	mf := families[name]
	if mf == nil || len(mf.GetMetric()) != 1 {
		t.Fatalf("%s: /metrics has no single series %s", who, name)
	}
	m := mf.GetMetric()[0]
	if c := m.GetCounter(); c != nil {
		return c.GetValue()
	}
	return m.GetGauge().GetValue()
}

// TestMetricsUnderWorkload runs concurrent writes through every node and
// linearizable reads on leader and followers, then scrapes each node's
// /metrics and checks that the raft and fsm histograms, registered beside
// the code that measures, saw that traffic with plausible values. Snapshots
// are taken every 50 entries, so that theirs see some too.
func TestMetricsUnderWorkload(t *testing.T) {
	c := startProcfileCluster(t, snapOften...)
	leader := c.waitLeader()
	waitReady(t, c.nodes...)
	createTable(t, leader)

	const writers, perWriter = 8, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if err := insertRow(c.nodes, 1+w*perWriter+i, 20*time.Second); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	const readsPerNode = 10
	for _, n := range c.nodes {
		for range readsPerNode {
			if _, err := n.rows("linearizable", "SELECT COUNT(*) FROM t"); err != nil {
				t.Fatalf("%s: linearizable read: %v", n.name, err)
			}
		}
	}
	writes := uint64(writers * perWriter)
	waitIdentical(t, int(writes), c.nodes...)

	var families map[string]*dto.MetricFamily
	waitFor(t, waitTimeout, leader.name+" having persisted a snapshot", func() error {
		families = leader.scrape(t)
		if n := histogram(t, leader.name, families, "raftlite_fsm_snapshot_seconds").GetSampleCount(); n == 0 {
			return fmt.Errorf("no snapshot yet")
		}
		return nil
	})
	checkHistogram(t, leader.name, families, "raftlite_fsm_snapshot_seconds", 1, 1e-6, 10)
	checkHistogram(t, leader.name, families, "raftlite_fsm_snapshot_bytes", 1, 512, 1<<30)

	readIndexes := 0.0
	for _, n := range c.nodes {
		who := n.name
		families := n.scrape(t)
		logMeans(t, who, families)
		// Every node applies every entry (the leader gathers concurrent
		// writes into entries, so there may be fewer than writes), in
		// batches of at least one entry, each within (0, 1 s) on average.
		checkHistogram(t, who, families, "raftlite_fsm_apply_batch_seconds", 1, 1e-7, 1)
		h := histogram(t, who, families, "raftlite_fsm_batch_entries")
		if h.GetSampleCount() == 0 || h.GetSampleSum() < float64(h.GetSampleCount()) {
			t.Errorf("%s: raftlite_fsm_batch_entries: %d batches of %g entries in all, want batches of >= 1",
				who, h.GetSampleCount(), h.GetSampleSum())
		}
		// Leader and followers append every entry to their logs (the
		// series are by role, and a node may have had both).
		role := "follower"
		if n == leader {
			role = "leader"
		}
		checkHistogram(t, who, families, "raftlite_raft_store_logs_seconds", 1, 1e-7, 1, "role", role)
		appended := 0.0
		for _, m := range families["raftlite_raft_append_entries"].GetMetric() {
			appended += m.GetHistogram().GetSampleSum()
		}
		if appended < h.GetSampleSum() {
			t.Errorf("%s: raftlite_raft_append_entries sums to %g, want >= the %g entries applied", who, appended, h.GetSampleSum())
		}
		if syncs := families["raftlite_raft_log_syncs_total"]; syncs == nil || len(syncs.GetMetric()) == 0 {
			t.Errorf("%s: /metrics has no raftlite_raft_log_syncs_total", who)
		}
		if applied := counterOrGauge(t, who, families, "raftlite_fsm_applied_index"); applied < h.GetSampleSum() {
			t.Errorf("%s: raftlite_fsm_applied_index = %g, want >= the %g entries applied", who, applied, h.GetSampleSum())
		}
		readIndexes += counterOrGauge(t, who, families, "raftlite_raft_read_index_total")
		if n == leader {
			// Only the leader proposes: every write went into one of its
			// entries.
			checkHistogram(t, who, families, "raftlite_raft_commit_seconds", 1, 1e-6, 2)
			if h := histogram(t, who, families, "raftlite_cluster_proposal_requests"); h.GetSampleSum() < float64(writes) {
				t.Errorf("%s: raftlite_cluster_proposal_requests sums to %g, want >= %d", who, h.GetSampleSum(), writes)
			}
		} else {
			// A follower's linearizable reads ask the leader in rounds.
			checkHistogram(t, who, families, "raftlite_raft_read_index_round_seconds", 1, 1e-6, 2, "role", "follower")
		}
		if _, ok := families["raftlite_store_stat"]; ok {
			t.Errorf("%s: /metrics still has the raftlite_store_stat family", who)
		}
	}
	if want := float64(len(c.nodes) * readsPerNode); readIndexes < want {
		t.Errorf("raftlite_raft_read_index_total sums to %g over the nodes, want >= %g", readIndexes, want)
	}
}

// TestStatusAppliedIndexAfterRestart restarts one node of a stopped cluster
// on its own: it cannot learn the commit index (no quorum), so raft's own
// applied index stays at 0, yet its database holds every write. /status
// raft.applied_index must say so.
func TestStatusAppliedIndexAfterRestart(t *testing.T) {
	c := startProcfileCluster(t)
	leader := c.waitLeader()
	createTable(t, leader)
	for id := 1; id <= 5; id++ {
		if err := insertRow(c.nodes, id, 20*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	waitIdentical(t, 5, c.nodes...)
	lone := c.nodes[0]
	fsmIndex, err := lone.statusUint("store.fsm_index")
	if err != nil || fsmIndex == 0 {
		t.Fatalf("%s: fsm_index = %d, %v; want > 0", lone.name, fsmIndex, err)
	}
	for _, n := range c.nodes {
		n.kill(t)
	}
	lone.start(t)
	waitFor(t, waitTimeout, lone.name+" serving /status with its raft state", func() error {
		st, err := lone.status()
		if err != nil {
			return err
		}
		if state := statusString(st, "store.raft.state"); state == "" || state == "Shutdown" {
			return fmt.Errorf("raft state %q", state)
		}
		return nil
	})
	applied, err := lone.statusUint("store.raft.applied_index")
	if err != nil {
		t.Fatal(err)
	}
	if applied < fsmIndex {
		t.Fatalf("%s restarted alone: /status raft.applied_index = %d, want >= the database's fsm_index %d", lone.name, applied, fsmIndex)
	}
}

// logMeans logs the mean of each raft and fsm histogram, for the record.
func logMeans(t *testing.T, who string, families map[string]*dto.MetricFamily) {
	t.Helper()
	for name, mf := range families {
		if mf.GetType() != dto.MetricType_HISTOGRAM || strings.HasPrefix(name, "raftlite_http_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			if h := m.GetHistogram(); h.GetSampleCount() > 0 {
				t.Logf("%s: %s%v: %d observations, mean %.6g", who, name, m.GetLabel(), h.GetSampleCount(), h.GetSampleSum()/float64(h.GetSampleCount()))
			}
		}
	}
}
