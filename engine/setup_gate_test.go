package engine

import (
	"testing"
	"time"
)

func TestSetupGateAdaptiveBound(t *testing.T) {
	var g setupGate
	g.init(0, 10*time.Second)
	if got := g.limit.Load(); got != setupFloor {
		t.Fatalf("bound before any hello: %d, want %d", got, setupFloor)
	}
	// 2,000 hellos a second for a while: the bound approaches what the node
	// answers in half the hello timeout, 10,000.
	var hellos uint64
	for range 20 {
		hellos += 2000
		g.retune(hellos)
	}
	if got := g.limit.Load(); got < 9900 || got > 10000 {
		t.Fatalf("bound at 2,000 hellos/s: %d, want about 10,000", got)
	}
	// The node stops answering: the bound falls back to the floor, never
	// below.
	for range 30 {
		g.retune(hellos)
	}
	if got := g.limit.Load(); got != setupFloor {
		t.Fatalf("bound after hellos stopped: %d, want %d", got, setupFloor)
	}
	for range setupFloor {
		if !g.room() || !g.enter() {
			t.Fatal("no room below the bound")
		}
	}
	if g.room() || g.enter() {
		t.Fatal("room at the bound")
	}
	g.done()
	if !g.room() {
		t.Fatal("no room after a connection left set-up")
	}
}

func TestSetupGateFixedAndUnbounded(t *testing.T) {
	var fixed setupGate
	fixed.init(3, 10*time.Second)
	fixed.retune(1_000_000) // a fixed bound does not move
	for range 3 {
		if !fixed.enter() {
			t.Fatal("fixed bound full early")
		}
	}
	if fixed.room() || fixed.enter() {
		t.Fatal("fixed bound of 3 has room for a fourth")
	}

	var none setupGate
	none.init(-1, 10*time.Second)
	for range 100_000 {
		if !none.enter() {
			t.Fatal("no bound, but no room")
		}
	}
}
