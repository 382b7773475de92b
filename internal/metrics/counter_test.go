package metrics

import (
	"strconv"
	"sync"
	"testing"
)

func TestCounterExposition(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("pushd_puts_total", "PUTs received.")
	c.Inc()
	c.Add(41)
	if c.Load() != 42 {
		t.Fatalf("Load = %d", c.Load())
	}
	r.Counter("big_total", "").Add(1<<64 - 1)
	expectExposition(t, r, `# HELP pushd_puts_total PUTs received.
# TYPE pushd_puts_total counter
pushd_puts_total 42
# TYPE big_total counter
big_total 18446744073709551615
`)
}

func TestCounterVecExposition(t *testing.T) {
	r := NewRegistry()
	v := r.CounterVec("pushd_put_responses_total", "PUT answers by status.", "status", "200", "202", "404")
	v.With("200").Add(5)
	v.With("404").Inc()
	v.With("418").Inc() // unknown: counted as other
	v.With("").Inc()
	if v.With("nope") != v.With(OtherValue) {
		t.Fatal("unknown values do not share the other counter")
	}
	expectExposition(t, r, `# HELP pushd_put_responses_total PUT answers by status.
# TYPE pushd_put_responses_total counter
pushd_put_responses_total{status="200"} 5
pushd_put_responses_total{status="202"} 0
pushd_put_responses_total{status="404"} 1
pushd_put_responses_total{status="other"} 2
`)
}

func TestCounterVecListedOther(t *testing.T) {
	r := NewRegistry()
	v := r.CounterVec("k_total", "", "kind", "other", "a")
	v.With("zzz").Inc()
	v.With("other").Inc()
	expectExposition(t, r, `# TYPE k_total counter
k_total{kind="other"} 2
k_total{kind="a"} 0
`)
	expectPanic(t, "repeated value", func() { r.CounterVec("d_total", "", "kind", "a", "b", "a") })
}

func TestCounterVecNoValues(t *testing.T) {
	r := NewRegistry()
	r.CounterVec("n_total", "", "kind").With("anything").Add(3)
	expectExposition(t, r, "# TYPE n_total counter\nn_total{kind=\"other\"} 3\n")
}

func TestLabelValueEscaping(t *testing.T) {
	r := NewRegistry()
	v := r.CounterVec("esc_total", "", "path", `a\b`, `say "hi"`, "two\nlines", "ünïcode ✓", `\"`+"\n")
	for i, val := range []string{`a\b`, `say "hi"`, "two\nlines", "ünïcode ✓", `\"` + "\n"} {
		v.With(val).Add(uint64(i + 1))
	}
	expectExposition(t, r, `# TYPE esc_total counter
esc_total{path="a\\b"} 1
esc_total{path="say \"hi\""} 2
esc_total{path="two\nlines"} 3
esc_total{path="ünïcode ✓"} 4
esc_total{path="\\\"\n"} 5
esc_total{path="other"} 0
`)
}

func TestCounterFuncExposition(t *testing.T) {
	r := NewRegistry()
	calls := 0
	r.CounterFunc("process_cpu_seconds_total", "CPU time.", func() float64 { calls++; return 1.5 })
	if calls != 0 {
		t.Fatal("function called before the scrape")
	}
	expectExposition(t, r, "# HELP process_cpu_seconds_total CPU time.\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 1.5\n")
	scrape(t, r)
	if calls != 2 {
		t.Fatalf("function called %d times for 2 scrapes", calls)
	}
}

func TestCounterConcurrent(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "")
	values := []string{"a", "b", "c"}
	v := r.CounterVec("v_total", "", "kind", values...)
	const workers, per = 8, 5000
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				c.Inc()
				c.Add(2)
				v.With(values[(w+i)%len(values)]).Inc()
				v.With("unknown-" + strconv.Itoa(i%2)).Inc()
			}
		})
	}
	wg.Go(func() { // scrapes race with the updates
		for range 50 {
			scrape(t, r)
		}
	})
	wg.Wait()
	if got, want := c.Load(), uint64(3*workers*per); got != want {
		t.Fatalf("counter = %d, want %d", got, want)
	}
	var sum uint64
	for _, val := range values {
		sum += v.With(val).Load()
	}
	if sum != workers*per || v.With(OtherValue).Load() != workers*per {
		t.Fatalf("vec: listed %d, other %d; want %d each", sum, v.With(OtherValue).Load(), workers*per)
	}
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	r := NewRegistry()
	c := r.Counter("c_total", "")
	v := r.CounterVec("v_total", "", "kind", "a", "b")
	g := r.Gauge("g", "")
	h := r.Histogram("h_seconds", "", LatencyBuckets())
	key := string([]byte("b")) // not a constant
	if n := testing.AllocsPerRun(100, func() {
		c.Inc()
		v.With(key).Inc()
		v.With("zzz").Inc()
		g.Add(1)
		h.Observe(0.003)
	}); n != 0 {
		t.Fatalf("hot paths allocate %v times", n)
	}
}

func BenchmarkCounterInc(b *testing.B) {
	c := NewRegistry().Counter("c_total", "")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Inc()
		}
	})
}

func BenchmarkCounterIncSerial(b *testing.B) {
	c := NewRegistry().Counter("c_total", "")
	b.ReportAllocs()
	for b.Loop() {
		c.Inc()
	}
}

func BenchmarkCounterVecWithInc(b *testing.B) {
	v := NewRegistry().CounterVec("v_total", "", "status", "200", "202", "400", "404", "413", "429", "503")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			v.With("404").Inc()
		}
	})
}
