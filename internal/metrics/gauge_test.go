package metrics

import (
	"sync"
	"testing"
)

func TestGaugeExposition(t *testing.T) {
	r := NewRegistry()
	g := r.Gauge("pushd_connections", "Open client connections.")
	g.Set(10)
	g.Add(-3)
	g.Inc()
	g.Dec()
	g.Dec()
	if g.Load() != 6 {
		t.Fatalf("Load = %d", g.Load())
	}
	r.Gauge("neg", "").Set(-1 << 63)
	expectExposition(t, r, `# HELP pushd_connections Open client connections.
# TYPE pushd_connections gauge
pushd_connections 6
# TYPE neg gauge
neg -9223372036854775808
`)
}

func TestGaugeFuncExposition(t *testing.T) {
	r := NewRegistry()
	val := 3.0
	r.GaugeFunc("pushd_fd_limit", "Open file limit.", func() float64 { return val })
	expectExposition(t, r, "# HELP pushd_fd_limit Open file limit.\n# TYPE pushd_fd_limit gauge\npushd_fd_limit 3\n")
	val = 0.000125
	expectExposition(t, r, "# HELP pushd_fd_limit Open file limit.\n# TYPE pushd_fd_limit gauge\npushd_fd_limit 0.000125\n")
}

func TestGaugeConcurrent(t *testing.T) {
	r := NewRegistry()
	g := r.Gauge("g", "")
	const workers, per = 8, 5000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range per {
				g.Inc()
				g.Add(3)
				g.Dec()
			}
		})
	}
	wg.Go(func() {
		for range 50 {
			scrape(t, r)
		}
	})
	wg.Wait()
	if got, want := g.Load(), int64(3*workers*per); got != want {
		t.Fatalf("gauge = %d, want %d", got, want)
	}
}
