package metrics

import (
	"math"
	"sync"
	"testing"
	"time"
)

func TestHistogramExposition(t *testing.T) {
	r := NewRegistry()
	h := r.Histogram("pushd_put_seconds", "PUT latency.", []float64{0.005, 0.1, 1})
	h.Observe(0.001)
	h.Observe(0.05)
	h.ObserveDuration(50 * time.Millisecond)
	h.Observe(2)
	expectExposition(t, r, `# HELP pushd_put_seconds PUT latency.
# TYPE pushd_put_seconds histogram
pushd_put_seconds_bucket{le="0.005"} 1
pushd_put_seconds_bucket{le="0.1"} 3
pushd_put_seconds_bucket{le="1"} 3
pushd_put_seconds_bucket{le="+Inf"} 4
pushd_put_seconds_sum 2.101
pushd_put_seconds_count 4
`)
}

func TestHistogramEmpty(t *testing.T) {
	r := NewRegistry()
	r.Histogram("h", "", []float64{0.00025, 2.5, math.Inf(1)}) // trailing +Inf dropped
	r.Histogram("only_inf", "", nil)
	expectExposition(t, r, `# TYPE h histogram
h_bucket{le="0.00025"} 0
h_bucket{le="2.5"} 0
h_bucket{le="+Inf"} 0
h_sum 0
h_count 0
# TYPE only_inf histogram
only_inf_bucket{le="+Inf"} 0
only_inf_sum 0
only_inf_count 0
`)
}

// bucketCounts returns the non-cumulative count of each bucket.
func bucketCounts(h *Histogram) []uint64 {
	out := make([]uint64, len(h.counts))
	for i := range h.counts {
		out[i] = h.counts[i].Load()
	}
	return out
}

func TestHistogramBucketBoundaries(t *testing.T) {
	bounds := []float64{-1, 0, 1, 2.5}
	for _, tc := range []struct {
		v      float64
		bucket int
	}{
		{math.Inf(-1), 0}, {-5, 0}, {-1, 0}, {math.Nextafter(-1, 0), 1},
		{0, 1}, {math.Copysign(0, -1), 1}, {math.SmallestNonzeroFloat64, 2},
		{1, 2}, {math.Nextafter(1, 2), 3}, {2.5, 3},
		{math.Nextafter(2.5, 3), 4}, {1e300, 4}, {math.Inf(1), 4},
	} {
		h := NewRegistry().Histogram("h", "", bounds)
		h.Observe(tc.v)
		got := bucketCounts(h)
		for i, n := range got {
			if want := uint64(0); i == tc.bucket {
				want = 1
				if n != want {
					t.Errorf("Observe(%v): bucket %d has %d, want 1 (counts %v)", tc.v, i, n, got)
				}
			} else if n != want {
				t.Errorf("Observe(%v): bucket %d has %d, want 0 (counts %v)", tc.v, i, n, got)
			}
		}
	}
	// Every standard bound lands in its own bucket.
	lb := LatencyBuckets()
	h := NewRegistry().Histogram("lat", "", lb)
	for _, b := range lb {
		h.Observe(b)
	}
	for i, n := range bucketCounts(h) {
		if want := uint64(1); i == len(lb) {
			if n != 0 {
				t.Errorf("+Inf bucket has %d", n)
			}
		} else if n != want {
			t.Errorf("bucket le=%v has %d, want 1", lb[i], n)
		}
	}
}

func TestHistogramIgnoresNaN(t *testing.T) {
	r := NewRegistry()
	h := r.Histogram("h", "", []float64{1})
	h.Observe(math.NaN())
	h.Observe(0.5)
	expectExposition(t, r, "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n")
}

func TestHistogramBadBucketsPanic(t *testing.T) {
	r := NewRegistry()
	for name, b := range map[string][]float64{
		"unsorted":   {1, 0.5},
		"repeated":   {1, 1},
		"nan":        {math.NaN()},
		"inner +Inf": {1, math.Inf(1), math.Inf(1)},
		"-Inf":       {math.Inf(-1), 1},
	} {
		expectPanic(t, name, func() { r.Histogram("h", "", b) })
	}
}

func TestHistogramCopiesBuckets(t *testing.T) {
	b := []float64{1, 2}
	h := NewRegistry().Histogram("h", "", b)
	b[0] = 100
	h.Observe(1.5)
	if got := bucketCounts(h); got[1] != 1 {
		t.Fatalf("counts %v after the caller changed its slice", got)
	}
}

func TestLatencyBuckets(t *testing.T) {
	b := LatencyBuckets()
	if b[0] != 0.0001 || b[len(b)-1] != 10 {
		t.Fatalf("LatencyBuckets spans %v..%v", b[0], b[len(b)-1])
	}
	for i := 1; i < len(b); i++ {
		if r := b[i] / b[i-1]; r < 2 || r > 2.5+1e-9 {
			t.Fatalf("step %v -> %v is x%v", b[i-1], b[i], r)
		}
	}
	b[0] = 7
	if LatencyBuckets()[0] != 0.0001 {
		t.Fatal("LatencyBuckets returns a shared slice")
	}
}

func TestHistogramConcurrent(t *testing.T) {
	r := NewRegistry()
	h := r.Histogram("h", "", []float64{0.5, 1, 2})
	// Values whose sums are exact in float64, so the total is exact in any
	// order of addition.
	values := []float64{0.25, 0.5, 1, 2, 4}
	const workers, per = 8, 4000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				h.Observe(values[(w+i)%len(values)])
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			scrape(t, r)
		}
	})
	wg.Wait()
	total := uint64(workers * per)
	each := total / uint64(len(values))
	want := []uint64{2 * each, each, each, each} // 0.25 and 0.5 share le=0.5
	got := bucketCounts(h)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("bucket counts %v, want %v", got, want)
		}
	}
	if sum, want := math.Float64frombits(h.sumBits.Load()), float64(each)*(0.25+0.5+1+2+4); sum != want {
		t.Fatalf("sum %v, want %v", sum, want)
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h := NewRegistry().Histogram("h_seconds", "", LatencyBuckets())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := 0.0001
		for pb.Next() {
			h.Observe(v)
			v *= 1.7
			if v > 20 {
				v = 0.0001
			}
		}
	})
}

func BenchmarkHistogramObserveSerial(b *testing.B) {
	h := NewRegistry().Histogram("h_seconds", "", LatencyBuckets())
	b.ReportAllocs()
	v := 0.0001
	for b.Loop() {
		h.Observe(v)
		v *= 1.7
		if v > 20 {
			v = 0.0001
		}
	}
}
