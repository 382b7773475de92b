package engine

import (
	"sync/atomic"
	"time"
)

// setupFloor is the least bound the adaptive set-up gate sets: a node that
// was idle admits this many connection set-ups at once before it has
// measured how fast it answers hellos.
const setupFloor = 1024

// setupGate is admission control for connection set-up. A connection is in
// set-up from its accept until its first hello is answered or it closes.
// While the number in set-up is at the bound, the node stops accepting:
// new connections wait in the listener's kernel queue, costing the node
// nothing, instead of being accepted into a backlog of handshakes and
// hellos that would wait past the hello timeout (1013) and be dialled
// again. When the kernel queue is full, clients' connection attempts are
// retried by TCP's own back-off.
//
// The bound is fixed (Config.SetupLimit > 0), absent (< 0), or adaptive
// (0): once a second the sweeper sets it to what the node answers in half
// the hello timeout, at the rate it answered hellos lately, and never
// below setupFloor. A node that keeps up never reaches it (connections
// pass through set-up faster than they arrive); one that falls behind
// keeps a backlog it can answer in time.
type setupGate struct {
	// inflight: connections in set-up.
	inflight atomic.Int64
	// limit: the bound in force; <= 0 admits everything.
	limit atomic.Int64

	// Sweeper only: adaptive mode, the hello count at the last retune and
	// the smoothed hello rate per second.
	adaptive   bool
	helloTimeo time.Duration
	lastHellos uint64
	rate       float64
}

func (g *setupGate) init(limit int, helloTimeout time.Duration) {
	g.helloTimeo = helloTimeout
	switch {
	case limit > 0:
		g.limit.Store(int64(limit))
	case limit == 0:
		g.adaptive = true
		g.limit.Store(setupFloor)
	}
}

// room reports whether another connection may enter set-up.
func (g *setupGate) room() bool {
	limit := g.limit.Load()
	return limit <= 0 || g.inflight.Load() < limit
}

// enter counts an accepted connection into set-up and reports true, or
// reports false, counting nothing, when set-up is at its bound.
func (g *setupGate) enter() bool {
	for {
		v, limit := g.inflight.Load(), g.limit.Load()
		if limit > 0 && v >= limit {
			return false
		}
		if g.inflight.CompareAndSwap(v, v+1) {
			return true
		}
	}
}

// done counts a connection out of set-up: its first hello was answered, or
// it closed before that. Called exactly once per admitted connection.
func (g *setupGate) done() { g.inflight.Add(-1) }

// retune sets the adaptive bound from hellos, the node's count of hellos
// answered so far, one second after the previous call.
func (g *setupGate) retune(hellos uint64) {
	if !g.adaptive {
		return
	}
	last := float64(hellos - g.lastHellos)
	g.lastHellos = hellos
	g.rate = 0.5*g.rate + 0.5*last
	g.limit.Store(max(setupFloor, int64(g.rate*g.helloTimeo.Seconds()/2)))
}
