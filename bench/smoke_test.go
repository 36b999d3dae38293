package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// binary is the raftlite binary built by TestMain ("" under -short).
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	if !testing.Short() {
		dir, err := os.MkdirTemp("", "raftlite-bench-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "raftlite")
		cmd := exec.Command("go", "build", "-o", binary, "github.com/raftlite/raftlite")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintf(os.Stderr, "build raftlite: %v\n", err)
			return 1
		}
	}
	return m.Run()
}

// freePort returns a TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNode runs a single-node cluster and returns its HTTP address once
// /readyz says it is ready.
func startNode(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	httpAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	raftAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	logf, err := os.Create(filepath.Join(dir, "node.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "serve", "-node-id", "smoke", "-http-addr", httpAddr, "-raft-addr", raftAddr,
		"-log-level", "warn", filepath.Join(dir, "data"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logf.Name()); err == nil {
				t.Logf("node log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + httpAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return httpAddr
			}
		}
		select {
		case <-done:
			t.Fatalf("node exited before it was ready")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node not ready within 20s (last: %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestSmoke runs `raftlite bench` (through the binary's dispatch) for about a
// second per workload against a real single node.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a node; skipped with -short")
	}
	addr := startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "bench", "-H", addr, "-duration", "1s", "-warmup", "200ms",
		"-repeat", "1", "-rows", "500", "-floor-dir", t.TempDir(), "-floor-duration", "200ms", "-json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("raftlite bench: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("progress:\n%s", stderr.String())
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not a JSON report: %v\n%s", err, stdout.String())
	}
	if rep.Floor == nil || rep.Floor.FsyncPerSec <= 0 || rep.Floor.SQLiteOffPerSec <= 0 {
		t.Errorf("floor %+v", rep.Floor)
	}
	if len(rep.Results) != len(Workloads) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(Workloads))
	}
	for _, s := range rep.Results {
		if s.OpsPerSec <= 0 || s.Errors != 0 || s.P50 <= 0 {
			t.Errorf("%s: %.0f ops/s, %d errors %q, p50 %v", s.Workload, s.OpsPerSec, s.Errors, s.ErrorSamples, s.P50)
		}
		if s.Workload == "batch-100-c8" && math.Abs(s.RowsPerS-100*s.OpsPerSec) > 1e-9*s.RowsPerS {
			t.Errorf("batch: rows/s %v, ops/s %v", s.RowsPerS, s.OpsPerSec)
		}
		if s.Workload == "write-c1" && s.FsyncRatio <= 0 {
			t.Errorf("write-c1 has no ratio to the floor")
		}
	}
}

// TestCompareAgainstSecondCluster runs `raftlite bench -compare` with a
// second real node as the compared endpoint: both run every workload, in
// turn, each with its nodes' round figures, and the table ends with the
// ratios.
func TestCompareAgainstSecondCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts nodes; skipped with -short")
	}
	first, second := startNode(t), startNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	args := []string{"bench", "-H", first, "-compare", second, "-workload", "write-c1,write-c32", "-duration", "1s",
		"-warmup", "200ms", "-repeat", "1", "-no-floor"}
	cmd := exec.CommandContext(ctx, binary, append(args, "-json")...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("raftlite bench -compare: %v\nstderr:\n%s", err, stderr.String())
	}
	var rep Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("output is not a JSON report: %v\n%s", err, stdout.String())
	}
	if len(rep.CompareHosts) != 1 || rep.CompareHosts[0] != "http://"+second {
		t.Errorf("compare hosts %v, want %s", rep.CompareHosts, second)
	}
	for name, results := range map[string][]Summary{"-H": rep.Results, "-compare": rep.CompareResults} {
		if len(results) != 2 {
			t.Fatalf("%s: %d results, want 2", name, len(results))
		}
		for _, s := range results {
			if s.OpsPerSec <= 0 || s.Errors != 0 {
				t.Errorf("%s %s: %.0f ops/s, %d errors %q", name, s.Workload, s.OpsPerSec, s.Errors, s.ErrorSamples)
			}
			if r := s.Rounds; r == nil || r.EntriesPerRound < 1 || r.FsyncsPerRound <= 0 || r.RequestsPerEntry < 1 {
				t.Errorf("%s %s: rounds %+v, want entries, requests and fsyncs per round", name, s.Workload, r)
			}
			if s.CPUPerOp <= 0 {
				t.Errorf("%s %s: no cpu/op from the members' process_cpu_seconds_total", name, s.Workload)
			}
		}
	}
	var table bytes.Buffer
	if err := WriteTable(&table, &rep); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(table.Bytes(), []byte("ratios, -H ÷ -compare")) || !bytes.Contains(table.Bytes(), []byte("compare: http://"+second)) {
		t.Errorf("table without the comparison:\n%s", table.String())
	}
	t.Logf("table:\n%s", table.String())
}
