package metrics

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// scrape returns the registry's exposition as a string.
func scrape(t testing.TB, r *Registry) string {
	t.Helper()
	var sb strings.Builder
	n, err := r.WriteTo(&sb)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(sb.Len()) {
		t.Fatalf("WriteTo returned %d, wrote %d", n, sb.Len())
	}
	return sb.String()
}

func expectExposition(t *testing.T, r *Registry, want string) {
	t.Helper()
	if got := scrape(t, r); got != want {
		t.Fatalf("exposition:\n%s\nwant:\n%s", got, want)
	}
}

func expectPanic(t *testing.T, what string, f func()) {
	t.Helper()
	defer func() {
		if recover() == nil {
			t.Fatalf("%s: did not panic", what)
		}
	}()
	f()
}

func TestEmptyRegistry(t *testing.T) {
	expectExposition(t, NewRegistry(), "")
}

// One of every kind, in registration order.
func TestExpositionOrderAndHelp(t *testing.T) {
	r := NewRegistry()
	r.Gauge("b_gauge", "second letter, first registered").Set(-3)
	r.Counter("a_total", "").Add(2)
	r.GaugeFunc("c_ratio", "a ratio", func() float64 { return 0.25 })
	r.CounterFunc("d_seconds_total", "cpu", func() float64 { return 12.5 })
	r.Histogram("e_seconds", "latency", []float64{1}).Observe(0.5)
	r.CounterVec("f_total", "by kind", "kind", "x").With("x").Inc()
	expectExposition(t, r, `# HELP b_gauge second letter, first registered
# TYPE b_gauge gauge
b_gauge -3
# TYPE a_total counter
a_total 2
# HELP c_ratio a ratio
# TYPE c_ratio gauge
c_ratio 0.25
# HELP d_seconds_total cpu
# TYPE d_seconds_total counter
d_seconds_total 12.5
# HELP e_seconds latency
# TYPE e_seconds histogram
e_seconds_bucket{le="1"} 1
e_seconds_bucket{le="+Inf"} 1
e_seconds_sum 0.5
e_seconds_count 1
# HELP f_total by kind
# TYPE f_total counter
f_total{kind="x"} 1
f_total{kind="other"} 0
`)
}

func TestHelpEscaping(t *testing.T) {
	r := NewRegistry()
	r.Counter("x_total", "back\\slash, \"quotes\" stay,\nnew line")
	expectExposition(t, r, `# HELP x_total back\\slash, "quotes" stay,\nnew line
# TYPE x_total counter
x_total 0
`)
}

func TestFloatFormatting(t *testing.T) {
	for _, tc := range []struct {
		f    float64
		want string
	}{
		{0, "0"}, {1, "1"}, {-1, "-1"}, {0.1, "0.1"}, {2.5e-5, "2.5e-05"}, {1e21, "1e+21"},
		{123456789, "1.23456789e+08"}, {math.Inf(1), "+Inf"}, {math.Inf(-1), "-Inf"}, {math.NaN(), "NaN"},
	} {
		if got := formatFloat(tc.f); got != tc.want {
			t.Errorf("formatFloat(%v) = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestDuplicateNamePanics(t *testing.T) {
	r := NewRegistry()
	r.Counter("dup_total", "")
	r.Histogram("lat_seconds", "", []float64{1})
	expectPanic(t, "counter twice", func() { r.Counter("dup_total", "") })
	expectPanic(t, "gauge over counter", func() { r.Gauge("dup_total", "") })
	expectPanic(t, "func over counter", func() { r.GaugeFunc("dup_total", "", func() float64 { return 0 }) })
	expectPanic(t, "histogram twice", func() { r.Histogram("lat_seconds", "", nil) })
	expectPanic(t, "counter over histogram _count", func() { r.Counter("lat_seconds_count", "") })
	expectPanic(t, "counter over histogram _bucket", func() { r.Counter("lat_seconds_bucket", "") })
	r.Counter("x_sum", "")
	expectPanic(t, "histogram whose _sum is taken", func() { r.Histogram("x", "", nil) })
	// The failed registrations left nothing behind.
	r.Gauge("x", "")
}

func TestInvalidNamesPanic(t *testing.T) {
	r := NewRegistry()
	for _, name := range []string{"", "1abc", "a-b", "a b", "é", "a{b}"} {
		expectPanic(t, "metric name "+name, func() { r.Counter(name, "") })
	}
	for _, name := range []string{"a", "_a", "a:b_c", "A9"} {
		r.Counter(name, "")
	}
	for _, label := range []string{"", "le", "__name", "1a", "a:b", "a-b"} {
		expectPanic(t, "label "+label, func() { r.CounterVec("v_"+label, "", label) })
	}
	expectPanic(t, "nil func", func() { r.GaugeFunc("nil_func", "", nil) })
}

type failingWriter struct{}

var errWrite = errors.New("write failed")

func (failingWriter) Write(p []byte) (int, error) { return 3, errWrite }

func TestWriteToError(t *testing.T) {
	r := NewRegistry()
	r.Counter("a_total", "")
	n, err := r.WriteTo(failingWriter{})
	if !errors.Is(err, errWrite) || n != 3 {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
}

// A scrape-time function may use the registry (WriteTo does not hold its
// lock while calling it).
func TestFuncMayUseRegistry(t *testing.T) {
	r := NewRegistry()
	var late *Counter
	r.GaugeFunc("nested", "", func() float64 {
		if late == nil {
			late = r.Counter("late_total", "")
		}
		late.Inc()
		return float64(late.Load())
	})
	expectExposition(t, r, "# TYPE nested gauge\nnested 1\n")
	expectExposition(t, r, "# TYPE nested gauge\nnested 2\n# TYPE late_total counter\nlate_total 2\n")
}

func BenchmarkWriteTo(b *testing.B) {
	r := NewRegistry()
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		r.Counter(n+"_total", "a counter").Add(12345)
		r.Gauge(n+"_gauge", "a gauge").Set(-5)
		r.Histogram(n+"_seconds", "a histogram", LatencyBuckets()).Observe(0.003)
		r.CounterVec(n+"_by_status_total", "a vec", "status", "200", "202", "404", "503").With("404").Inc()
	}
	var sb strings.Builder
	b.ReportAllocs()
	for b.Loop() {
		sb.Reset()
		r.WriteTo(&sb)
	}
}
