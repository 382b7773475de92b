package engine

import (
	"slices"
	"testing"
)

func TestGCTunerSwitchesOnDeliveryRate(t *testing.T) {
	var set []int
	var g gcTuner
	g.init(10, 400, func(p int) { set = append(set, p) })
	var sent uint64
	second := func(rate uint64) {
		sent += rate
		g.tick(sent)
	}
	second(0)
	second(gcBusyRate - 1) // below the rate: stays idle
	second(gcBusyRate)     // busy
	second(5 * gcBusyRate) // still busy: no second switch
	if want := []int{400}; !slices.Equal(set, want) {
		t.Fatalf("targets set %v, want %v", set, want)
	}
	if g.current.Load() != 400 {
		t.Fatalf("current %d, want 400", g.current.Load())
	}
	// Quiet, but not for long enough; then busy again; then quiet for good.
	for range gcQuietSeconds - 1 {
		second(0)
	}
	second(gcBusyRate)
	for range gcQuietSeconds - 1 {
		second(1)
	}
	if want := []int{400}; !slices.Equal(set, want) {
		t.Fatalf("targets set %v before %d quiet seconds, want %v", set, gcQuietSeconds, want)
	}
	second(1)
	if want := []int{400, 10}; !slices.Equal(set, want) {
		t.Fatalf("targets set %v, want %v", set, want)
	}
	if g.current.Load() != 10 {
		t.Fatalf("current %d, want 10", g.current.Load())
	}
}

func TestGCTunerOff(t *testing.T) {
	for _, tc := range []struct{ idle, busy int }{{10, 0}, {-1, 400}, {100, 100}} {
		var g gcTuner
		g.init(tc.idle, tc.busy, func(p int) { t.Errorf("idle %d busy %d: set %d", tc.idle, tc.busy, p) })
		for i := range 10 {
			g.tick(uint64(i) * 10 * gcBusyRate)
		}
	}
}

// The GC target's zero value means Go's default; a negative one (the GC
// off) survives the defaults, and the tuner then never turns the GC on.
func TestGCPercentDefaults(t *testing.T) {
	for in, want := range map[int]int{0: 100, -1: -1, 10: 10} {
		cfg := Config{GCPercent: in, GCPercentBusy: 400}.withDefaults()
		if cfg.GCPercent != want {
			t.Errorf("GCPercent %d became %d, want %d", in, cfg.GCPercent, want)
		}
		if in >= 0 {
			continue
		}
		var g gcTuner
		g.init(cfg.GCPercent, cfg.GCPercentBusy, func(p int) { t.Errorf("GC off, but the tuner set %d", p) })
		for i := range 10 {
			g.tick(uint64(i) * 10 * gcBusyRate)
		}
	}
}
