package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestRecipeSmallCluster runs the many-connection recipe
// (loadtest/recipe/cluster-idle.sh) at CI size: three pushd processes in a
// cluster, 3,000 connections from three pushload processes, PUTs through
// every node. Every connection must be established and every PUT delivered.
func TestRecipeSmallCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster of processes")
	}
	report := t.TempDir()
	cmd := exec.Command("bash", "../../loadtest/recipe/cluster-idle.sh")
	cmd.Env = append(os.Environ(), "NODES=3", "CONNS=3000", "RAMP=3000", "HOLD=2s",
		"SCENARIO=steady", "RATE=300", "DURATION=3s", "REPORT="+report,
		"PUSHLOAD_ARGS=-max-conns-per-process 1000 -endpoint-rewrite")
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("recipe: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(report, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Connections struct{ Target, Established, Failed uint64 }
		Puts        struct {
			Sent   uint64
			Status map[string]uint64
		}
		Notifications struct{ Received, Superseded, Missing uint64 }
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	if r.Connections.Established != 3000 || r.Connections.Failed != 0 {
		t.Errorf("connections: %+v", r.Connections)
	}
	if r.Puts.Sent == 0 || r.Puts.Status["200"] != r.Puts.Sent || r.Notifications.Missing != 0 ||
		r.Notifications.Received+r.Notifications.Superseded != r.Puts.Sent {
		t.Errorf("puts %+v, notifications %+v: every PUT must be answered 200 and delivered", r.Puts, r.Notifications)
	}
}
