// Package metrics is pushd's small Prometheus registry: counters, gauges,
// histograms and scrape-time functions, exposed in the Prometheus text
// format 0.0.4 by Registry.WriteTo for the /metrics endpoint. It has no
// dependencies beyond the standard library.
//
// Components create their metrics once, at construction, from the
// Registry they are given, and keep the returned *Counter, *Gauge,
// *CounterVec and *Histogram for their hot paths. Names follow the
// Prometheus conventions (pushd_<component>_<what>_<unit>, counters ending
// in _total). Registering a name twice, or an invalid name, label or bucket
// list, panics: these are programming errors found at start-up.
//
// # Concurrency
//
// Everything here is safe for concurrent use. The hot-path operations
// (Counter.Inc/Add, CounterVec.With, Gauge.Set/Add, Histogram.Observe) are
// lock-free, never block and never allocate: they are typed atomics, plus a
// compare-and-swap loop for a histogram's sum. Registration and WriteTo
// take the registry's mutex, but WriteTo releases it before it reads any
// value or calls any GaugeFunc/CounterFunc, so a slow function or writer
// never holds up registration, and a function may itself use the registry.
// Those functions are called from the scraping goroutine and must be safe
// for that; they should be quick and must not block.
//
// A scrape reads each value atomically but not all values at one instant:
// a histogram's _count always equals its +Inf bucket, but its _sum may
// include an observation that its buckets do not yet, or the reverse.
package metrics
