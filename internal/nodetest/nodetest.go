// Package nodetest starts pushd nodes inside a test process and reads
// their metrics, for the engine's end-to-end tests and for the packages
// that drive a node from outside (the load tester and its command). Only
// tests import it.
package nodetest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
)

// Start runs a pushd node in the test process on loopback ephemeral
// ports with a fresh data directory; mod may change its Config. The node
// stops when the test ends.
func Start(t *testing.T, mod func(*engine.Config)) *engine.Node {
	t.Helper()
	cfg := engine.Config{
		WSAddr:   "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		DataDir:  t.TempDir(),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&cfg)
	}
	n, err := engine.New(cfg)
	if err != nil {
		t.Fatalf("new node: %v", err)
	}
	if err := n.Start(); err != nil {
		t.Fatalf("start node: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return n
}

// Metrics returns every series of the node's /metrics by its full name,
// e.g. `pushd_puts_total{status="200"}`.
func Metrics(t *testing.T, n *engine.Node) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v", resp.Status, err)
	}
	out := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// Eventually polls cond every 20 ms until it holds or total passes.
func Eventually(t *testing.T, total time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
