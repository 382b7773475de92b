package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/internal/proctest"
	"github.com/pushd/pushd/loadtest"
)

// These tests run the built command against a node in the test process.

func build(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the command")
	}
	bin, err := proctest.Build(t.TempDir(), ".", "pushload", false)
	if err != nil {
		t.Fatalf("go build: %v", err)
	}
	return bin
}

// pushload runs the command and returns its exit status, stdout and
// stderr.
func pushload(t *testing.T, bin string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	case err != nil:
		t.Fatalf("run pushload: %v", err)
	}
	return 0, stdout.String(), stderr.String()
}

func readReport(t *testing.T, dir string) *loadtest.Report {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r loadtest.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "report.html")); err != nil {
		t.Fatal(err)
	}
	return &r
}

// freeAddr is a loopback address with a port free right now, for a node
// whose endpoint URL must name its own HTTP port.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestWorkerProcessesAggregate(t *testing.T) {
	bin := build(t)
	httpAddr := freeAddr(t)
	n := startNode(t, func(c *engine.Config) {
		c.HTTPAddr, c.EndpointURL = httpAddr, "http://"+httpAddr
	})
	before := metrics(t, n)
	dir := t.TempDir()
	code, stdout, stderr := pushload(t, bin, "-ws", "ws://"+n.WSAddr().String(), "-conns", "250", "-ramp", "1000",
		"-hold", "0s", "-rate", "300", "-duration", "2s", "-max-conns-per-process", "100", "-report", dir)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	r := readReport(t, dir)
	if r.Processes != 3 {
		t.Fatalf("%d processes, want 3 (100 connections each at most)", r.Processes)
	}
	if r.Connections.Target != 250 || r.Connections.Established != 250 || r.Connections.PeakOpen != 250 {
		t.Fatalf("connections %+v", r.Connections)
	}
	if r.Puts.Planned != 600 || r.Puts.Sent != 600 {
		t.Fatalf("puts %+v (each worker sends its share of 300/s for 2s)", r.Puts)
	}
	if r.LatencyMs["register"].Count != 250 || r.LatencyMs["put_response"].Count != int64(r.Puts.Sent) {
		t.Fatalf("merged histograms: register %+v put_response %+v", r.LatencyMs["register"], r.LatencyMs["put_response"])
	}
	if r.Memory.Conns != 250 {
		t.Fatalf("memory %+v", r.Memory)
	}
	var series uint64
	for _, p := range r.Series {
		series += p.PutsSent
	}
	if series != r.Puts.Sent {
		t.Fatalf("series adds up to %d PUTs, report %d", series, r.Puts.Sent)
	}

	var mismatch string
	ok := eventually(t, 10*time.Second, func() bool {
		m := metrics(t, n)
		d := func(s string) uint64 { return uint64(m[s] - before[s]) }
		want := map[string]uint64{
			"pushd_hellos_total":             r.Hellos.OK,
			"pushd_registers_total":          r.Registers.OK,
			"pushd_notifications_sent_total": r.Notifications.Received,
			"pushd_acks_total":               r.Acks.Sent,
		}
		for _, st := range []string{"200", "202", "404", "429", "503"} {
			want[fmt.Sprintf("pushd_puts_total{status=%q}", st)] = r.Puts.Status[st]
		}
		for s, v := range want {
			if d(s) != v {
				mismatch = fmt.Sprintf("%s: node %d, report %d", s, d(s), v)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatal(mismatch)
	}
}

func TestIdleMemoryPerConnection(t *testing.T) {
	bin := build(t)
	n := startNode(t, nil)
	dir := t.TempDir()
	code, stdout, stderr := pushload(t, bin, "-ws", n.WSAddr().String(), "-scenario", "idle", "-conns", "4000",
		"-ramp", "4000", "-hold", "0s", "-setup-timeout", "60s", "-report", dir)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	r := readReport(t, dir)
	t.Logf("load generator: %.0f B per idle connection (hello + 1 register) over %d", r.Memory.BytesPerConn, r.Memory.Conns)
	if r.Memory.Conns != 4000 || r.Memory.BytesPerConn <= 0 || r.Memory.BytesPerConn > 2048 {
		t.Fatalf("memory %+v, want <= 2 KiB per connection", r.Memory)
	}
}

func TestFailedRunExitsNonZero(t *testing.T) {
	bin := build(t)
	dir := t.TempDir()
	code, _, stderr := pushload(t, bin, "-ws", freeAddr(t), "-conns", "10", "-report", dir)
	if code != 1 || !strings.Contains(stderr, "unreachable") {
		t.Fatalf("exit %d, stderr %s", code, stderr)
	}
	if r := readReport(t, dir); r.Failure == "" {
		t.Fatal("report does not say the run failed")
	}
	code, _, stderr = pushload(t, bin, "-help")
	if code != 2 || strings.Contains(stderr, "-worker") || !strings.Contains(stderr, "-endpoint-rewrite") {
		t.Fatalf("-help: exit %d\n%s", code, stderr)
	}
}
