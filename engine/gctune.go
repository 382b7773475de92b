package engine

import "sync/atomic"

// gcBusyRate is the notifications per second at which the node counts as
// busy delivering, and gcQuietSeconds how long it must stay below it to
// count as idle again.
const (
	gcBusyRate     = 100
	gcQuietSeconds = 5
)

// gcTuner switches the Go GC target between two values: a low one that
// keeps idle connections' memory dense (Config.GCPercent), and a higher one
// while the node delivers notifications (Config.GCPercentBusy), when a GC
// cycle every few megabytes of allocation would run many times a second
// and put its pauses and assists into the delivery latency tail. The
// sweeper calls tick once a second.
type gcTuner struct {
	idle, busy int
	set        func(percent int) // debug.SetGCPercent, or a test's
	// current is the target in force (a metric).
	current atomic.Int64

	// Sweeper only (and Shutdown, after the sweeper ended).
	isBusy  bool
	quiet   int
	lastOut uint64
}

// init makes t switch between idle and busy through set; with busy <= 0,
// or an idle target that turns the GC off, it never switches.
func (t *gcTuner) init(idle, busy int, set func(int)) {
	t.idle, t.busy, t.set = idle, busy, set
	t.current.Store(int64(idle))
}

// tick takes the node's count of notifications sent so far, one second
// after the previous call, and switches the target when the node became
// busy or has been quiet for gcQuietSeconds.
func (t *gcTuner) tick(notifications uint64) {
	rate := notifications - t.lastOut
	t.lastOut = notifications
	if t.busy <= 0 || t.idle < 0 || t.busy == t.idle {
		return
	}
	switch {
	case rate >= gcBusyRate:
		t.quiet = 0
		if !t.isBusy {
			t.isBusy = true
			t.apply(t.busy)
		}
	case t.isBusy:
		t.quiet++
		if t.quiet >= gcQuietSeconds {
			t.isBusy = false
			t.apply(t.idle)
		}
	}
}

// stop puts the idle target back if the node left it busy.
func (t *gcTuner) stop() {
	if t.isBusy {
		t.isBusy = false
		t.apply(t.idle)
	}
}

func (t *gcTuner) apply(percent int) {
	t.set(percent)
	t.current.Store(int64(percent))
}
