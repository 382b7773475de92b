package bench

import "testing"

func TestStealSince(t *testing.T) {
	from, ok := readCPUTimes()
	if !ok {
		t.Skip("no /proc/stat")
	}
	if from.total == 0 || from.steal > from.total {
		t.Fatalf("read %+v", from)
	}
	// Burn a little CPU so that the counters move.
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	if p := stealSince(from, true); p < 0 || p > 100 {
		t.Fatalf("steal %.2f%%, want a percentage", p)
	}
	if p := stealSince(cpuTimes{}, false); p != -1 {
		t.Fatalf("steal without a start: %v, want -1", p)
	}
}
