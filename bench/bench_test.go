package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/raftlite/raftlite/internal/tlstest"
)

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Hosts) != 1 || cfg.Hosts[0] != "http://127.0.0.1:4001" || len(cfg.Workloads) != len(Workloads) ||
		cfg.Duration != 10*time.Second || cfg.Warmup != 2*time.Second || cfg.Repeat != 3 || cfg.Spread || cfg.JSON {
		t.Errorf("defaults: %+v", cfg)
	}
	cfg, err = parseFlags([]string{"-H", "a:1, https://b:2/x ,", "-workload", "write-c32,read-weak-c8",
		"-duration", "3s", "-warmup", "0", "-repeat", "5", "-spread", "-json", "-user", "bob:se:cret"}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Hosts, " ") != "http://a:1 https://b:2" {
		t.Errorf("hosts %q", cfg.Hosts)
	}
	if len(cfg.Workloads) != 2 || cfg.Workloads[0].Name != "write-c32" || cfg.Workloads[0].Clients != 32 ||
		cfg.Workloads[1].Name != "read-weak-c8" || cfg.Workloads[1].level != "weak" {
		t.Errorf("workloads %+v", cfg.Workloads)
	}
	if cfg.Duration != 3*time.Second || cfg.Warmup != 0 || cfg.Repeat != 5 || !cfg.Spread || !cfg.JSON ||
		cfg.User != "bob" || cfg.Pass != "se:cret" {
		t.Errorf("flags %+v", cfg)
	}
	for _, bad := range [][]string{
		{"-workload", "write-c2"},
		{"-workload", ","},
		{"-repeat", "0"},
		{"-duration", "0s"},
		{"-warmup", "-1s"},
		{"-H", ""},
		{"-H", "http://"},
		{"-user", "nopassword"},
		{"extra"},
	} {
		if _, err := parseFlags(bad, io.Discard, io.Discard); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if _, err := parseFlags([]string{"-h"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
}

func TestWorkloadTable(t *testing.T) {
	want := map[string]int{
		"write-c1": 1, "write-c8": 8, "write-c32": 32, "batch-100-c8": 8, "read-none-c8": 8,
		"read-weak-c8": 8, "read-linearizable-c8": 8, "read-strong-c8": 8, "mixed-c16": 16,
	}
	if len(Workloads) != len(want) {
		t.Errorf("%d workloads, want %d", len(Workloads), len(want))
	}
	for _, w := range Workloads {
		if c, ok := want[w.Name]; !ok || c != w.Clients {
			t.Errorf("workload %s with %d clients", w.Name, w.Clients)
		}
		if strings.HasPrefix(w.Name, "read-") && !strings.Contains(w.Name, "-"+w.level+"-") {
			t.Errorf("%s reads at level %q", w.Name, w.level)
		}
	}
}

// fakeNode is a minimal stand-in for a node's HTTP API: enough for the
// workloads, with injected failures.
type fakeNode struct {
	rows       int
	execs      atomic.Int64
	execStmts  atomic.Int64
	mu         sync.Mutex
	levels     map[string]int
	failStrong bool // every strong read reports a statement error
	failEvery  int64
}

func (f *fakeNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s := string(body)
	w.Header().Set("Content-Type", "application/json")
	switch r.URL.Path {
	case "/db/execute":
		if strings.Contains(s, "DROP TABLE") || strings.Contains(s, "INSERT INTO "+readTable) {
			io.WriteString(w, `{"results":[{},{}]}`)
			return
		}
		n := f.execs.Add(1)
		f.execStmts.Add(int64(strings.Count(s, "INSERT INTO")))
		if f.failEvery > 0 && n%f.failEvery == 0 {
			http.Error(w, "leader not found", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, `{"results":[{"last_insert_id":1,"rows_affected":1}]}`)
	case "/db/query":
		lvl := r.URL.Query().Get("level")
		f.mu.Lock()
		f.levels[lvl]++
		f.mu.Unlock()
		switch {
		case strings.Contains(s, "COUNT(*)"):
			fmt.Fprintf(w, `{"results":[{"columns":["COUNT(*)"],"types":["integer"],"values":[[%d]]}]}`, f.rows)
		case lvl == "strong" && f.failStrong:
			io.WriteString(w, `{"results":[{"error":"boom"}]}`)
		default:
			io.WriteString(w, `{"results":[{"columns":["id","k","v"],"types":["integer","integer","text"],"values":[[1,1,"x"]]}]}`)
		}
	default:
		http.NotFound(w, r)
	}
}

func TestRunAgainstFake(t *testing.T) {
	fake := &fakeNode{rows: 50, levels: map[string]int{}, failStrong: true, failEvery: 5}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	cfg := &Config{
		Hosts: []string{srv.URL}, Workloads: Workloads, Duration: 150 * time.Millisecond,
		Warmup: 30 * time.Millisecond, Repeat: 2, Rows: 50, Timeout: 5 * time.Second,
		NoFloor: true,
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Interrupted || len(rep.Results) != len(Workloads) {
		t.Fatalf("report %+v", rep)
	}
	for _, s := range rep.Results {
		if s.Runs != 2 || len(s.Each) != 2 {
			t.Errorf("%s: %d runs", s.Workload, s.Runs)
		}
		switch {
		case s.Workload == "read-strong-c8":
			if s.OpsPerSec != 0 || s.Errors == 0 || len(s.ErrorSamples) != 1 || !strings.Contains(s.ErrorSamples[0], "boom") {
				t.Errorf("%s: every request fails with an error in the body: %+v", s.Workload, s)
			}
			continue
		case strings.HasPrefix(s.Workload, "read-"):
			if s.Errors != 0 {
				t.Errorf("%s: %d errors", s.Workload, s.Errors)
			}
		case strings.HasPrefix(s.Workload, "write-"), strings.HasPrefix(s.Workload, "batch-"):
			if s.Errors == 0 || !strings.Contains(strings.Join(s.ErrorSamples, ","), "HTTP 503") {
				t.Errorf("%s: the fake fails one write in 5: errors %d %q", s.Workload, s.Errors, s.ErrorSamples)
			}
		}
		if s.OpsPerSec <= 0 || s.P50 <= 0 || s.Max < s.P999 || s.P999 < s.P99 || s.P99 < s.P90 || s.P90 < s.P50 {
			t.Errorf("%s: figures %+v", s.Workload, s)
		}
		wantRows := s.OpsPerSec
		if s.Workload == "batch-100-c8" {
			wantRows = 100 * s.OpsPerSec
		}
		// Computed as rows over time, not as a multiple of ops/s: equal up
		// to rounding.
		if math.Abs(s.RowsPerS-wantRows) > 1e-9*wantRows {
			t.Errorf("%s: rows/s %v, want %v", s.Workload, s.RowsPerS, wantRows)
		}
	}
	srv.Close() // waits for handlers still running
	fake.mu.Lock()
	defer fake.mu.Unlock()
	for _, lvl := range []string{"none", "weak", "linearizable", "strong"} {
		if fake.levels[lvl] == 0 {
			t.Errorf("no read at level %s: %v", lvl, fake.levels)
		}
	}
}

func TestRunInterrupted(t *testing.T) {
	fake := &fakeNode{rows: 10, levels: map[string]int{}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	// write-c1's two runs take 0–800ms; the cancel at 1s lands in
	// write-c8's first run, which must stop at once and not be reported.
	ws, _ := lookupWorkloads("write-c1,write-c8")
	cfg := &Config{Hosts: []string{srv.URL}, Workloads: ws, Duration: 400 * time.Millisecond,
		Repeat: 2, Rows: 10, Timeout: time.Second, NoFloor: true}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(time.Second, cancel)
	start := time.Now()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 1150*time.Millisecond {
		t.Errorf("took %v to stop", el)
	}
	if !rep.Interrupted || len(rep.Results) != 1 || rep.Results[0].Workload != "write-c1" {
		t.Errorf("report after interrupt: interrupted=%v, %d results", rep.Interrupted, len(rep.Results))
	}

	// Cut short after one of two runs: that run is kept.
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	time.AfterFunc(600*time.Millisecond, cancel)
	rep, err = Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Interrupted || len(rep.Results) != 1 || rep.Results[0].Runs != 1 || rep.Results[0].OpsPerSec == 0 {
		t.Errorf("partial workload: interrupted=%v, results %+v", rep.Interrupted, rep.Results)
	}
}

func TestRunSetupFailure(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "leader not found", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ws, _ := lookupWorkloads("write-c1")
	_, err := Run(context.Background(), &Config{Hosts: []string{srv.URL}, Workloads: ws, Duration: 50 * time.Millisecond,
		Repeat: 1, Rows: 10, Timeout: time.Second, NoFloor: true})
	if err == nil || !strings.Contains(err.Error(), "setup") || !strings.Contains(err.Error(), "503") {
		t.Errorf("err = %v, want a setup error naming the 503", err)
	}
}

func TestMeasureFloor(t *testing.T) {
	// A relative directory, as in "-floor-dir data", must work too.
	t.Chdir(t.TempDir())
	fl, err := measureFloor(context.Background(), "data", 50*time.Millisecond, 1)
	if err != nil {
		t.Fatal(err)
	}
	if fl.FsyncPerSec <= 0 || fl.FsyncLatency <= 0 || fl.SQLiteOffPerSec <= 0 || fl.SQLiteFullPerSec <= 0 || fl.SQLiteSelectPerSec <= 0 {
		t.Errorf("floor %+v", fl)
	}
	t.Logf("floor %+v", fl)
}

func TestMainExitCodes(t *testing.T) {
	var out, errOut strings.Builder
	if code := Main([]string{"-h"}, &out, &errOut); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
	if !strings.Contains(out.String(), "read-linearizable-c8") {
		t.Errorf("usage on stdout does not list the workloads:\n%s", out.String())
	}
	errOut.Reset()
	if code := Main([]string{"-workload", "nope"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown workload "nope"`) {
		t.Errorf("bad workload: exit %d, %q", code, errOut.String())
	}
	// A node that refuses everything: setup fails, exit 1, no panic.
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	errOut.Reset()
	out.Reset()
	if code := Main([]string{"-H", srv.URL, "-workload", "write-c1", "-no-floor", "-duration", "50ms"}, &out, &errOut); code != 1 {
		t.Errorf("failing node: exit %d, stderr %q", code, errOut.String())
	}
}

// TestRunOverHTTPS: with -ca-cert, -client-cert and -client-key, a host
// given as host:port is reached over HTTPS, presenting the client
// certificate a node run with -http-verify-client requires.
func TestRunOverHTTPS(t *testing.T) {
	ca := tlstest.NewCA(t, "bench-test")
	dir := t.TempDir()
	fake := &fakeNode{rows: 10, levels: map[string]int{}}
	srv := httptest.NewUnstartedServer(fake)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{ca.Issue(t, "node", "127.0.0.1").TLSCertificate(t)},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    ca.Pool(),
	}
	srv.StartTLS()
	defer srv.Close()
	client := ca.Issue(t, "client").Write(t, dir, "client")
	host := strings.TrimPrefix(srv.URL, "https://")
	cfg, err := parseFlags([]string{"-H", host, "-workload", "write-c1", "-duration", "100ms", "-warmup", "0", "-repeat", "1",
		"-rows", "10", "-no-floor", "-ca-cert", ca.WriteCA(t, dir, "ca"), "-client-cert", client.Cert, "-client-key", client.Key}, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Hosts[0] != srv.URL {
		t.Fatalf("host %s, want %s", cfg.Hosts[0], srv.URL)
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s := rep.Results[0]; s.OpsPerSec == 0 || s.Errors != 0 {
		t.Fatalf("over HTTPS: %+v", s)
	}
}
