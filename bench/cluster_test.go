package bench

import (
	"testing"
	"time"

	"github.com/pushd/pushd/internal/proctest"
)

// buildPushd builds pushd for a multi-process test.
func buildPushd(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("multi-process test")
	}
	bin, err := proctest.Build(t.TempDir(), "../cmd/pushd", "pushd", false)
	if err != nil {
		t.Fatalf("building pushd: %v", err)
	}
	return bin
}

// TestClusterScenarioBrief runs the cluster scenario for a moment: both
// paths complete cycles without errors and have latency figures.
func TestClusterScenarioBrief(t *testing.T) {
	bin := buildPushd(t)
	res, err := RunCluster(t.Context(), ClusterConfig{
		PushdBin: bin, Devices: 4, Duration: 300 * time.Millisecond, Warmup: 200 * time.Millisecond,
		Rounds: 1, Samples: 40, Progress: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]ClusterPath{"local": res.Local, "remote": res.Remote} {
		if p.Cycles <= 0 || p.Errors != 0 || p.P50 <= 0 || p.P999 < p.P50 {
			t.Errorf("%s path: %+v", name, p)
		}
	}
}

// TestClusterFailoverScenarioBrief runs the failover scenario with a few
// devices and a 3-node convergence: every device is answered 202 again
// after the kill, and the survivors drop the killed node.
func TestClusterFailoverScenarioBrief(t *testing.T) {
	bin := buildPushd(t)
	res, err := RunFailover(t.Context(), FailoverConfig{
		PushdBin: bin, Devices: 4, Before: 200 * time.Millisecond, Timeout: 30 * time.Second,
		ConvergeNodes: 3, Progress: t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstOK <= 0 || res.AllOK < res.FirstOK || res.Members <= 0 || res.Answers[202] < res.Devices {
		t.Errorf("failover: %+v", res)
	}
	if res.ConvergeNodes != 3 || res.Converge <= 0 {
		t.Errorf("convergence: %+v", res)
	}
}
