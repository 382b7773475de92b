package loadtest

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Tick is one process's account of one wall-clock second: the counts of
// that second, the connections open at its end, and the latencies
// recorded in it.
type Tick struct {
	Second int64  `json:"t"` // unix second covered
	Phase  string `json:"phase"`
	Open   int64  `json:"open"`
	Counts Counts `json:"counts"`
	// Hist is the wire form of the interval histograms by kind name.
	Hist map[string]string `json:"hist,omitempty"`

	// hists is the in-process form; valid only during aggregate.add.
	hists [numKinds]*hdrhistogram.Histogram
}

// Partial is one process's result: what a worker sends its parent, and
// what a single-process run reports from.
type Partial struct {
	Target int    `json:"target"`
	Counts Counts `json:"counts"`
	// Hist is the wire form of the whole-run histograms by kind name.
	Hist map[string]string `json:"hist,omitempty"`
	// PutsPlanned is how many PUTs the schedule held.
	PutsPlanned int64 `json:"puts_planned"`
	// Seconds is how long the measured phase (PUTs, or hello-rate) took.
	Seconds float64  `json:"seconds"`
	Memory  Memory   `json:"memory"`
	Notes   []string `json:"notes,omitempty"`

	hists [numKinds]*hdrhistogram.Histogram // in-process form
}

// Memory is the load generator's resident memory around the ramp.
type Memory struct {
	RSSBefore int64 `json:"rss_before"`
	RSSAfter  int64 `json:"rss_after"`
	// Conns is the number of connections open when RSSAfter was read.
	Conns int64 `json:"conns"`
	// BytesPerConn is (RSSAfter - RSSBefore) / Conns.
	BytesPerConn float64 `json:"bytes_per_conn"`
}

// Progress is the live summary of the last complete second.
type Progress struct {
	Elapsed       time.Duration
	Phase         string
	Open          int64
	Target        int     // connections to ramp; 0 in hello-rate
	Hellos        float64 // per second
	Puts          float64 // PUT responses per second
	Notifications float64 // first receipts per second
	// P99 is the 99th percentile of PUT -> notification in that second
	// (of connect when no PUT was answered).
	P99    time.Duration
	Errors uint64 // since the start
}

// String formats p as one status line.
func (p Progress) String() string {
	conns := fmt.Sprintf("%d/%d", p.Open, p.Target)
	if p.Target == 0 {
		conns = fmt.Sprint(p.Open)
	}
	return fmt.Sprintf("%5.0fs %-6s conns %s  hello/s %.0f  put/s %.0f  notif/s %.0f  p99 %v  errors %d",
		p.Elapsed.Seconds(), p.Phase, conns, p.Hellos, p.Puts, p.Notifications, p.P99.Round(10*time.Microsecond), p.Errors)
}

// SeriesPoint is one second of the run, all processes together.
type SeriesPoint struct {
	T             int64              `json:"t"`
	Elapsed       float64            `json:"elapsed_s"`
	Phase         string             `json:"phase"`
	Open          int64              `json:"open"`
	Dialed        uint64             `json:"dialed"`
	Hellos        uint64             `json:"hellos"`
	PutsSent      uint64             `json:"puts_sent"`
	Responses     uint64             `json:"put_responses"`
	Status        map[string]uint64  `json:"put_status,omitempty"`
	Notifications uint64             `json:"notifications"`
	Acks          uint64             `json:"acks"`
	Errors        uint64             `json:"errors"`
	Latency       map[string]Summary `json:"latency_ms,omitempty"`
}

// aggregate merges the ticks of every process into per-second points.
// Each process reports its seconds in order, so a second is complete (and
// summarised) once every process still running has reported it or a
// later one. Safe for concurrent use.
type aggregate struct {
	mu struct {
		sync.Mutex
		reported []int64 // by process: the last second it reported
		done     []bool  // by process: it reports no more
		pending  map[int64]*second
		last     int64 // last summarised second
		series   []SeriesPoint
		total    Counts
		peakOpen int64
		free     []*hdrhistogram.Histogram
	}
	start    time.Time
	target   int
	progress func(Progress)
}

// phaseRank orders a run's phases (see local.setPhase).
var phaseRank = map[string]int{"start": 0, "ramp": 1, "hello": 1, "hold": 2, "put": 3, "storm": 3, "drain": 4, "done": 5}

type second struct {
	phase  string
	open   int64
	counts Counts
	hist   [numKinds]*hdrhistogram.Histogram
}

func newAggregate(procs, target int, start time.Time, progress func(Progress)) *aggregate {
	a := &aggregate{start: start, target: target, progress: progress}
	a.mu.reported = make([]int64, procs)
	a.mu.done = make([]bool, procs)
	a.mu.pending = make(map[int64]*second)
	for range numKinds {
		a.mu.free = append(a.mu.free, newResidentHist())
	}
	return a
}

// add merges process proc's tick. Wire histograms are decoded; in-process
// ones are merged and not kept.
func (a *aggregate) add(proc int, t *Tick) error {
	var decoded [numKinds]*hdrhistogram.Histogram
	for name, enc := range t.Hist {
		k, ok := kindByName(name)
		if !ok {
			continue
		}
		h, err := decodeHist(enc)
		if err != nil {
			return err
		}
		decoded[k] = h
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mu.reported[proc] = max(a.mu.reported[proc], t.Second)
	if t.Second > a.mu.last {
		s := a.mu.pending[t.Second]
		if s == nil {
			s = &second{}
			a.mu.pending[t.Second] = s
		}
		if s.phase == "" || phaseRank[t.Phase] < phaseRank[s.phase] {
			s.phase = t.Phase // the process furthest behind names the second
		}
		s.open += t.Open
		s.counts.Add(t.Counts)
		for k := range s.hist {
			for _, h := range []*hdrhistogram.Histogram{t.hists[k], decoded[k]} {
				if h == nil {
					continue
				}
				if s.hist[k] == nil {
					s.hist[k] = a.newHistLocked()
				}
				s.hist[k].Merge(h)
			}
		}
	}
	a.flushLocked(a.completeLocked())
	return nil
}

// done says process proc will report no more seconds.
func (a *aggregate) done(proc int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.mu.done[proc] = true
	a.flushLocked(a.completeLocked())
}

// completeLocked is the last second every running process has reported.
// REQUIRES: a.mu held.
func (a *aggregate) completeLocked() int64 {
	c := int64(math.MaxInt64)
	for p, sec := range a.mu.reported {
		if !a.mu.done[p] {
			c = min(c, sec)
		}
	}
	return c
}

// finish summarises every pending second and returns the series.
func (a *aggregate) finish() []SeriesPoint {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.flushLocked(math.MaxInt64)
	return a.mu.series
}

// flushLocked summarises every pending second up to upTo, in order.
// REQUIRES: a.mu held.
func (a *aggregate) flushLocked(upTo int64) {
	secs := make([]int64, 0, len(a.mu.pending))
	for sec := range a.mu.pending {
		if sec <= upTo {
			secs = append(secs, sec)
		}
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	for _, sec := range secs {
		s := a.mu.pending[sec]
		delete(a.mu.pending, sec)
		a.mu.last = sec
		p := SeriesPoint{
			T:             sec,
			Elapsed:       time.Unix(sec+1, 0).Sub(a.start).Seconds(),
			Phase:         s.phase,
			Open:          s.open,
			Dialed:        s.counts.Dialed,
			Hellos:        s.counts.Hellos,
			PutsSent:      s.counts.PutsSent,
			Responses:     s.counts.responses(),
			Status:        s.counts.PutStatus,
			Notifications: s.counts.Versions,
			Acks:          s.counts.Acks,
			Errors:        s.counts.errorTotal(),
		}
		for k, h := range s.hist {
			if h == nil {
				continue
			}
			if p.Latency == nil {
				p.Latency = make(map[string]Summary)
			}
			p.Latency[kindNames[k]] = summarize(h)
			h.Reset()
			a.mu.free = append(a.mu.free, h)
		}
		a.mu.series = append(a.mu.series, p)
		a.mu.total.Add(s.counts)
		a.mu.peakOpen = max(a.mu.peakOpen, s.open)
		if a.progress != nil {
			a.progress(a.progressOf(p))
		}
	}
}

func (a *aggregate) progressOf(p SeriesPoint) Progress {
	pr := Progress{
		Elapsed:       time.Duration(p.Elapsed * float64(time.Second)),
		Phase:         p.Phase,
		Open:          p.Open,
		Target:        a.target,
		Hellos:        float64(p.Hellos),
		Puts:          float64(p.Responses),
		Notifications: float64(p.Notifications),
		Errors:        a.mu.total.errorTotal(),
	}
	s, ok := p.Latency[kindNames[kPutToNotification]]
	if !ok {
		s = p.Latency[kindNames[kConnect]]
	}
	pr.P99 = time.Duration(s.P99 * float64(time.Millisecond))
	return pr
}

// peakOpen is the most connections open at the end of any second.
func (a *aggregate) peakOpen() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mu.peakOpen
}

// newHistLocked takes a histogram from the free list or makes one.
// REQUIRES: a.mu held.
func (a *aggregate) newHistLocked() *hdrhistogram.Histogram {
	if n := len(a.mu.free); n > 0 {
		h := a.mu.free[n-1]
		a.mu.free = a.mu.free[:n-1]
		return h
	}
	return newHist()
}

// mergePartials adds up processes' results: counts add, histograms merge.
func mergePartials(parts []*Partial) (*Partial, error) {
	out := &Partial{}
	var memDelta int64
	for i := range out.hists {
		out.hists[i] = newHist()
	}
	for _, p := range parts {
		out.Target += p.Target
		out.Counts.Add(p.Counts)
		out.PutsPlanned += p.PutsPlanned
		out.Seconds = max(out.Seconds, p.Seconds)
		out.Memory.RSSBefore += p.Memory.RSSBefore
		out.Memory.RSSAfter += p.Memory.RSSAfter
		out.Memory.Conns += p.Memory.Conns
		memDelta += p.Memory.RSSAfter - p.Memory.RSSBefore
		out.Notes = append(out.Notes, p.Notes...)
		for k := range out.hists {
			if h := p.hists[k]; h != nil {
				out.hists[k].Merge(h)
			}
		}
		for name, enc := range p.Hist {
			k, ok := kindByName(name)
			if !ok {
				continue
			}
			h, err := decodeHist(enc)
			if err != nil {
				return nil, err
			}
			out.hists[k].Merge(h)
		}
	}
	if out.Memory.Conns > 0 {
		out.Memory.BytesPerConn = float64(memDelta) / float64(out.Memory.Conns)
	}
	return out, nil
}

// encodeHists fills p.Hist from p.hists (the wire form for a worker).
func (p *Partial) encodeHists() error {
	for k, h := range p.hists {
		if h == nil || h.TotalCount() == 0 {
			continue
		}
		enc, err := encodeHist(h)
		if err != nil {
			return err
		}
		if p.Hist == nil {
			p.Hist = make(map[string]string)
		}
		p.Hist[kindNames[k]] = enc
	}
	return nil
}
