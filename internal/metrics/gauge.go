package metrics

import (
	"strconv"
	"sync/atomic"
)

// Gauge is an integer value that goes up and down, such as open
// connections. Its methods are lock-free and safe for concurrent use.
type Gauge struct {
	v atomic.Int64
	_ [cacheLine - 8]byte
}

// Set sets the gauge to n.
func (g *Gauge) Set(n int64) { g.v.Store(n) }

// Add adds n, which may be negative.
func (g *Gauge) Add(n int64) { g.v.Add(n) }

// Inc adds 1.
func (g *Gauge) Inc() { g.v.Add(1) }

// Dec subtracts 1.
func (g *Gauge) Dec() { g.v.Add(-1) }

// Load returns the current value.
func (g *Gauge) Load() int64 { return g.v.Load() }

// Gauge registers and returns a gauge.
func (r *Registry) Gauge(name, help string) *Gauge {
	g := new(Gauge)
	r.register(&metric{name: name, help: help, typ: "gauge", appendSamples: func(b []byte) []byte {
		var num [20]byte
		return appendSample(b, name, "", "", strconv.AppendInt(num[:0], g.Load(), 10))
	}})
	return g
}

// GaugeFunc registers a gauge whose value is f(), called at each scrape
// (see the package doc for what f may do).
func (r *Registry) GaugeFunc(name, help string, f func() float64) {
	r.registerFunc(name, help, "gauge", f)
}
