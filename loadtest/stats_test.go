package loadtest

import (
	"math"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// within reports whether got is within the histogram's precision (three
// significant digits) of want.
func within(got, want float64) bool { return math.Abs(got-want) <= want/500+1e-9 }

func TestSummaryPercentiles(t *testing.T) {
	h := newHist()
	for ms := 1; ms <= 1000; ms++ {
		recordUS(h, int64(ms)*1000)
	}
	s := summarize(h)
	want := Summary{Count: 1000, Mean: 500.5, P50: 500, P90: 900, P99: 990, P999: 999, Max: 1000}
	if s.Count != want.Count {
		t.Fatalf("count %d", s.Count)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{{"mean", s.Mean, want.Mean}, {"p50", s.P50, want.P50}, {"p90", s.P90, want.P90}, {"p99", s.P99, want.P99}, {"p99.9", s.P999, want.P999}, {"max", s.Max, want.Max}} {
		if !within(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if summarize(newHist()) != (Summary{}) || summarize(nil) != (Summary{}) {
		t.Fatal("empty histogram has a non-zero summary")
	}
	// Values outside the range are clamped, not dropped.
	recordUS(h, 0)
	recordUS(h, 1<<50)
	if h.TotalCount() != 1002 {
		t.Fatalf("clamped values dropped: %d", h.TotalCount())
	}
}

func TestMergePartialsEqualsOneHistogram(t *testing.T) {
	// Three processes record disjoint values; one comes over the wire
	// (encoded), two in process. The merge must equal one histogram of
	// all values.
	all := newHist()
	var parts []*Partial
	for p := range 3 {
		part := &Partial{Target: 100, Counts: Counts{Established: 100, PutStatus: map[string]uint64{"200": uint64(10 * (p + 1))}}}
		part.Memory = Memory{RSSBefore: 1000, RSSAfter: 1000 + 100*1024, Conns: 100}
		h := newHist()
		for v := range 1000 {
			us := int64(p*100_000 + v*37 + 1)
			recordUS(h, us)
			recordUS(all, us)
		}
		part.hists[kPutToNotification] = h
		if p == 0 {
			if err := part.encodeHists(); err != nil {
				t.Fatal(err)
			}
			part.hists = [numKinds]*hdrhistogram.Histogram{}
		}
		parts = append(parts, part)
	}
	m, err := mergePartials(parts)
	if err != nil {
		t.Fatal(err)
	}
	if m.Target != 300 || m.Counts.Established != 300 || m.Counts.PutStatus["200"] != 60 {
		t.Fatalf("counts %+v target %d", m.Counts, m.Target)
	}
	if m.Memory.Conns != 300 || m.Memory.BytesPerConn != 1024 {
		t.Fatalf("memory %+v", m.Memory)
	}
	got, want := summarize(m.hists[kPutToNotification]), summarize(all)
	if got != want {
		t.Fatalf("merged %+v\nwant   %+v", got, want)
	}
	if m.hists[kConnect].TotalCount() != 0 {
		t.Fatal("empty kind gained values")
	}
}

func TestCountsAddSub(t *testing.T) {
	a := Counts{Hellos: 5, PutStatus: map[string]uint64{"200": 3}, Errors: map[string]uint64{"dial": 1}}
	b := Counts{Hellos: 2, PutStatus: map[string]uint64{"200": 1, "503": 2}, Closes: map[string]uint64{"4001": 1}}
	sum := Counts{}
	sum.Add(a)
	sum.Add(b)
	if sum.Hellos != 7 || sum.PutStatus["200"] != 4 || sum.PutStatus["503"] != 2 || sum.Closes["4001"] != 1 || sum.Errors["dial"] != 1 {
		t.Fatalf("sum %+v", sum)
	}
	d := sum.sub(a)
	if d.Hellos != 2 || d.PutStatus["200"] != 1 || d.PutStatus["503"] != 2 || d.Errors != nil {
		t.Fatalf("difference %+v", d)
	}
	if sum.responses() != 6 || sum.errorTotal() != 1 {
		t.Fatalf("responses %d errors %d", sum.responses(), sum.errorTotal())
	}
}

func TestAggregateSeriesPerSecond(t *testing.T) {
	start := time.Unix(1000, 0)
	var progress []Progress
	a := newAggregate(2, 20, start, func(p Progress) { progress = append(progress, p) })

	tick := func(sec int64, open int64, puts uint64, lat ...int64) *Tick {
		t := &Tick{Second: sec, Phase: "put", Open: open, Counts: Counts{PutStatus: map[string]uint64{"200": puts}, Versions: puts}}
		h := newHist()
		for _, v := range lat {
			recordUS(h, v)
		}
		t.hists[kPutToNotification] = h
		return t
	}
	wire := func(tk *Tick) *Tick {
		enc, err := encodeHist(tk.hists[kPutToNotification])
		if err != nil {
			panic(err)
		}
		tk.Hist = map[string]string{"put_to_notification": enc}
		tk.hists = [numKinds]*hdrhistogram.Histogram{}
		return tk
	}
	// Second 1000: both processes. Second 1001: process A only, then A's
	// second 1002 arrives; 1001 waits for B until B is done.
	for _, pt := range []struct {
		proc int
		tick *Tick
	}{{0, tick(1000, 10, 5, 1000, 2000)}, {1, wire(tick(1000, 10, 7, 3000))}, {0, tick(1001, 10, 4, 4000)}, {0, tick(1002, 10, 1, 100)}} {
		if err := a.add(pt.proc, pt.tick); err != nil {
			t.Fatal(err)
		}
	}
	if len(progress) != 1 {
		t.Fatalf("%d seconds summarised before B finished, want 1", len(progress))
	}
	a.done(1) // B ends: 1001 and 1002 now have every live process
	if len(progress) != 3 {
		t.Fatalf("%d seconds summarised after B finished, want 3", len(progress))
	}
	series := a.finish()
	if len(series) != 3 {
		t.Fatalf("series %+v", series)
	}
	p := series[0]
	if p.T != 1000 || p.Open != 20 || p.Responses != 12 || p.Notifications != 12 || p.Elapsed != 1 {
		t.Fatalf("first point %+v", p)
	}
	if s := p.Latency["put_to_notification"]; s.Count != 3 || !within(s.P50, 2) || !within(s.Max, 3) {
		t.Fatalf("first point latency %+v", s)
	}
	if series[1].T != 1001 || series[1].Responses != 4 || series[2].T != 1002 {
		t.Fatalf("later points %+v", series[1:])
	}
	if progress[0].Puts != 12 || progress[0].Open != 20 || progress[0].Target != 20 || !within(progress[0].P99.Seconds()*1000, 3) {
		t.Fatalf("progress %+v", progress[0])
	}
	// A tick for a summarised second is ignored.
	if err := a.add(0, tick(1000, 5, 5)); err != nil || len(a.finish()) != 3 {
		t.Fatal("late tick changed the series")
	}
	if a.peakOpen() != 20 {
		t.Fatalf("peak %d", a.peakOpen())
	}
}

func TestRecorderIntervals(t *testing.T) {
	r := newRecorder()
	r.latency(kHello, 100)
	r.latency(kHello, 200)
	r.status(200)
	r.status(999)
	r.closed(1006)
	iv := r.swapIntervals()
	if iv[kHello] == nil || iv[kHello].TotalCount() != 2 || iv[kConnect] != nil {
		t.Fatalf("interval %v", iv)
	}
	r.resetIntervals()
	r.latency(kHello, 300)
	if iv := r.swapIntervals(); iv[kHello].TotalCount() != 1 {
		t.Fatalf("second interval has %d values", iv[kHello].TotalCount())
	}
	var total int64
	r.totals(func(k kind, h *hdrhistogram.Histogram) {
		if k == kHello {
			total = h.TotalCount()
		}
	})
	c := r.counts()
	if total != 3 || c.PutStatus["200"] != 1 || c.Errors["put_status_other"] != 1 || c.Closes["1006"] != 1 {
		t.Fatalf("total %d counts %+v", total, c)
	}
}

func TestAckModeText(t *testing.T) {
	for _, s := range []string{"now", "never", "delay=250ms", "fraction=0.5"} {
		a, err := ParseAckMode(s)
		if err != nil || a.String() != s {
			t.Fatalf("%q: %v %v", s, a, err)
		}
	}
	for _, s := range []string{"later", "delay=x", "fraction=2", "fraction=-1"} {
		if _, err := ParseAckMode(s); err == nil {
			t.Fatalf("%q accepted", s)
		}
	}
}

func TestAggregateKeepsTicksAfterAProcessEnds(t *testing.T) {
	// A process that ends early sends its last (partial) second and is
	// done; the others' ticks for that second must still count.
	a := newAggregate(3, 30, time.Unix(100, 0), nil)
	tick := func(sec int64) *Tick { return &Tick{Second: sec, Open: 10, Counts: Counts{PutsSent: 1}} }
	for p := range 3 {
		_ = a.add(p, tick(100))
	}
	_ = a.add(0, tick(101))
	a.done(0)
	_ = a.add(1, tick(101))
	_ = a.add(2, tick(101))
	a.done(1)
	a.done(2)
	series := a.finish()
	if len(series) != 2 || series[0].PutsSent != 3 || series[1].PutsSent != 3 || series[1].Open != 30 {
		t.Fatalf("series %+v", series)
	}
}
