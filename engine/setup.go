package engine

import (
	"sync/atomic"
	"time"
)

// setupFloor is the least bound the adaptive set-up gate sets: a node that
// was idle admits this many hellos at once before it has measured how
// fast it answers them.
const setupFloor = 1024

// setupGate is admission control for connection set-up. A connection is in
// set-up from the moment its first hello arrives until the hello is
// answered or the connection closes: that is the work a node can fall
// behind on, since a hello waits for a worker and the store. While the
// number in set-up is at the bound, the node stops accepting: new
// connections wait in the listener's kernel queue, costing the node
// nothing, instead of adding hellos to a backlog that would wait past the
// hello timeout (1013) and be dialled again. When the kernel queue is
// full, clients' connection attempts are retried by TCP's own back-off.
//
// Only received hellos count, so a client cannot hold set-up by opening
// sockets that say nothing (those are bounded by the handshake and hello
// timeouts and the connection cap, as before); a hello it sends is
// answered, unless the node is behind, which is what the bound is for.
//
// The bound is fixed (Config.SetupLimit > 0), absent (< 0), or adaptive
// (0): once a second the sweeper sets it to what the node answers in half
// the hello timeout, at the rate it answered first hellos lately, and
// never below setupFloor. A node that keeps up never reaches it (hellos
// are answered faster than they arrive); one that falls behind keeps a
// backlog it can answer in time.
type setupGate struct {
	// inflight: connections in set-up.
	inflight atomic.Int64
	// limit: the bound in force; <= 0 admits everything.
	limit atomic.Int64
	// answered counts first hellos answered (the adaptive rate).
	answered atomic.Uint64

	// Sweeper only: adaptive mode, the hello timeout, and the count and
	// time of the last retune with the smoothed rate per second.
	adaptive     bool
	helloTimeout time.Duration
	lastAnswered uint64
	lastTune     time.Time
	rate         float64
}

func (g *setupGate) init(limit int, helloTimeout time.Duration) {
	g.helloTimeout = helloTimeout
	switch {
	case limit > 0:
		g.limit.Store(int64(limit))
	case limit == 0:
		g.adaptive = true
		g.limit.Store(setupFloor)
	}
}

// room reports whether the node may accept another connection.
func (g *setupGate) room() bool {
	limit := g.limit.Load()
	return limit <= 0 || g.inflight.Load() < limit
}

// enter counts a connection whose first hello arrived into set-up.
func (g *setupGate) enter() { g.inflight.Add(1) }

// done counts a connection out of set-up: its first hello was answered
// (answered), or it closed before that. Called once per enter.
func (g *setupGate) done(answered bool) {
	g.inflight.Add(-1)
	if answered {
		g.answered.Add(1)
	}
}

// retune sets the adaptive bound from the first hellos answered since the
// previous call, at now.
func (g *setupGate) retune(now time.Time) {
	if !g.adaptive {
		return
	}
	n := g.answered.Load()
	if !g.lastTune.IsZero() {
		if secs := now.Sub(g.lastTune).Seconds(); secs > 0 {
			g.rate = 0.5*g.rate + 0.5*float64(n-g.lastAnswered)/secs
		}
	}
	g.lastAnswered, g.lastTune = n, now
	g.limit.Store(max(setupFloor, int64(g.rate*g.helloTimeout.Seconds()/2)))
}
