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
	// 2,000 first hellos answered a second for a while: the bound
	// approaches what the node answers in half the hello timeout, 10,000.
	now := time.Now()
	for range 20 {
		answerHellos(&g, 2000)
		g.retune(now)
		now = now.Add(time.Second)
	}
	if got := g.limit.Load(); got < 9900 || got > 10000 {
		t.Fatalf("bound at 2,000 hellos/s: %d, want about 10,000", got)
	}
	// A sweep that came late: two seconds' hellos in one call are a rate
	// of 2,000 a second, not 4,000.
	answerHellos(&g, 4000)
	now = now.Add(time.Second)
	g.retune(now)
	if got := g.limit.Load(); got > 10000 {
		t.Fatalf("bound after a late sweep: %d, want at most 10,000", got)
	}
	// Connections that close before their hello is answered are not
	// answered hellos. The node stops answering: the bound falls back to
	// the floor, never below.
	for range 30 {
		g.enter()
		g.done(false)
		now = now.Add(time.Second)
		g.retune(now)
	}
	if got := g.limit.Load(); got != setupFloor {
		t.Fatalf("bound after hellos stopped: %d, want %d", got, setupFloor)
	}
	for range setupFloor {
		if !g.room() {
			t.Fatal("no room below the bound")
		}
		g.enter()
	}
	if g.room() {
		t.Fatal("room at the bound")
	}
	g.done(false)
	if !g.room() {
		t.Fatal("no room after a connection left set-up")
	}
}

// answerHellos passes n connections through set-up, each answered.
func answerHellos(g *setupGate, n int) {
	for range n {
		g.enter()
		g.done(true)
	}
}

func TestSetupGateFixedAndUnbounded(t *testing.T) {
	var fixed setupGate
	fixed.init(3, 10*time.Second)
	fixed.retune(time.Now()) // a fixed bound does not move
	for range 3 {
		if !fixed.room() {
			t.Fatal("fixed bound full early")
		}
		fixed.enter()
	}
	if fixed.room() {
		t.Fatal("fixed bound of 3 has room for a fourth")
	}

	var none setupGate
	none.init(-1, 10*time.Second)
	for range 100_000 {
		none.enter()
	}
	if !none.room() {
		t.Fatal("no bound, but no room")
	}
}
