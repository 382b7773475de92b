package metrics

import (
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"time"
)

// Histogram counts observations in buckets fixed at registration and keeps
// their sum. Observe is lock-free, does not allocate and is safe for
// concurrent use.
type Histogram struct {
	upper []float64 // finite upper bounds, strictly increasing
	les   []string  // upper formatted for the le label
	// counts[i] counts observations v with upper[i-1] < v <= upper[i];
	// counts[len(upper)] those above the last bound. Not cumulative: a
	// scrape adds them up, and _count is the total, so the +Inf bucket and
	// _count always agree.
	counts  []atomic.Uint64
	sumBits atomic.Uint64 // math.Float64bits of the sum
}

// Observe records v. A value equal to a bucket's upper bound is counted in
// that bucket (bounds are "less than or equal", as Prometheus defines le).
// NaN is ignored, since it would make the sum NaN for good.
func (h *Histogram) Observe(v float64) {
	if math.IsNaN(v) {
		return
	}
	// Binary search for the first bound >= v.
	lo, hi := 0, len(h.upper)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if h.upper[m] < v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	h.counts[lo].Add(1)
	for {
		old := h.sumBits.Load()
		if h.sumBits.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ObserveDuration records d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Histogram registers and returns a histogram with the given upper bounds,
// which must be strictly increasing and not NaN; the +Inf bucket is
// implicit (a trailing +Inf is accepted and dropped). The slice is copied.
// It also takes the names name_bucket, name_sum and name_count.
func (r *Registry) Histogram(name, help string, buckets []float64) *Histogram {
	upper := append([]float64(nil), buckets...)
	if n := len(upper); n > 0 && math.IsInf(upper[n-1], 1) {
		upper = upper[:n-1]
	}
	h := &Histogram{upper: upper, les: make([]string, len(upper)), counts: make([]atomic.Uint64, len(upper)+1)}
	for i, u := range upper {
		if math.IsNaN(u) || math.IsInf(u, 0) || i > 0 && u <= upper[i-1] {
			panic(fmt.Sprintf("metrics: %s: buckets must be finite and strictly increasing: %v", name, buckets))
		}
		h.les[i] = formatFloat(u)
	}
	bucketName, sumName, countName := name+"_bucket", name+"_sum", name+"_count"
	r.register(&metric{name: name, help: help, typ: "histogram", appendSamples: func(b []byte) []byte {
		var num [32]byte
		var cum uint64
		for i := range h.counts {
			cum += h.counts[i].Load()
			le := "+Inf"
			if i < len(h.les) {
				le = h.les[i]
			}
			b = appendSample(b, bucketName, "le", le, strconv.AppendUint(num[:0], cum, 10))
		}
		b = appendSample(b, sumName, "", "", appendFloat(num[:0], math.Float64frombits(h.sumBits.Load())))
		return appendSample(b, countName, "", "", strconv.AppendUint(num[:0], cum, 10))
	}}, "_bucket", "_sum", "_count")
	return h
}

// LatencyBuckets returns bounds from 100µs to 10s in seconds, in 1-2.5-5
// steps (x2 to x2.5): fine enough for a sub-millisecond local path and for
// a slow cross-node or disk path in one histogram. Each call returns a new
// slice.
func LatencyBuckets() []float64 {
	return []float64{
		0.0001, 0.00025, 0.0005,
		0.001, 0.0025, 0.005,
		0.01, 0.025, 0.05,
		0.1, 0.25, 0.5,
		1, 2.5, 5,
		10,
	}
}
