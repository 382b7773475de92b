package bench

import (
	"os"
	"testing"
	"time"
)

func TestReadRSSAndCPUOfThisProcess(t *testing.T) {
	rss, err := readRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if rss < 1<<20 || rss > 1<<40 {
		t.Fatalf("RSS of a Go test process read as %d bytes", rss)
	}
	before, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn some CPU; the reading must grow.
	deadline := time.Now().Add(200 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := readCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU time did not grow while spinning: %v -> %v (%d)", before, after, x)
	}
}

func TestHasVersion(t *testing.T) {
	msg := []byte(`{"messageType":"notification","updates":[{"channelID":"x","version":1000005},{"channelID":"y","version":12}]}`)
	for v, want := range map[uint64]bool{1000005: true, 12: true, 100000: false, 1: false, 1000: false} {
		if got := hasVersion(msg, v); got != want {
			t.Errorf("hasVersion(%d) = %v, want %v", v, got, want)
		}
	}
}
