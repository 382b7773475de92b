package loadtest

import (
	"slices"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/google/uuid"
)

// TestPutPlanSettlesSupersededPuts plays PUTs and notifications of two
// channels in the orders a busy server produces: a notification settles
// its own PUT and every outstanding earlier PUT of its channel, each
// with the latency from its own intended send time; an earlier PUT
// counts as superseded once it is also answered 200, in either order;
// a PUT answered 200 and never settled is missing.
func TestPutPlanSettlesSupersededPuts(t *testing.T) {
	a, b := uuid.New(), uuid.New()
	targets := []putTarget{{chid: a, path: "/a"}, {chid: b, path: "/b"}}
	// 10 PUTs, one per ms from t = 1s; even ones to a, odd ones to b.
	p := newPutPlan(time.Unix(1, 0), 1000, 10, targets, func(k int64) int { return int(k % 2) })
	if got := p.intended(4); got != 1_004_000_000 {
		t.Fatalf("intended(4) = %d", got)
	}
	rec := newRecorder()
	at := func(ms float64) int64 { return 1_000_000_000 + int64(ms*1e6) }
	answer := func(k int64) { rec.status(200); p.answered(rec, k) }
	notify := func(chid uuid.UUID, k int64, ms float64) bool {
		return p.notified(rec, []byte(chid.String()), p.version(k), at(ms))
	}
	expect := func(step string, versions, superseded, dups uint64) {
		t.Helper()
		if c := rec.counts(); c.Versions != versions || c.Superseded != superseded || c.Duplicates != dups {
			t.Fatalf("after %s: versions %d superseded %d duplicates %d, want %d %d %d",
				step, c.Versions, c.Superseded, c.Duplicates, versions, superseded, dups)
		}
	}

	// Channel a: PUTs 0, 2 and 4 answered 200, but 4 reached the server
	// first, so only 4 is notified (at 5 ms).
	answer(0)
	answer(2)
	answer(4)
	if !notify(a, 4, 5) {
		t.Fatal("version of PUT 4 not matched")
	}
	expect("a: 4 notified", 1, 2, 0)
	notify(a, 2, 6) // a late duplicate of a superseded version
	expect("a: 2 again", 1, 2, 1)
	answer(6) // answered, never notified: missing
	rec.status(503)

	// Channel b: 3 is notified (at 4.5 ms) before 1 and 3 are answered;
	// 1 counts as superseded when its 200 comes.
	notify(b, 3, 4.5)
	expect("b: 3 notified", 2, 2, 1)
	answer(1)
	expect("b: 1 answered", 2, 3, 1)
	answer(3)
	expect("b: 3 answered", 2, 3, 1)

	// A version names one PUT and one channel: another channel's ID or
	// a version outside the plan matches nothing.
	for _, c := range []struct {
		chid uuid.UUID
		v    uint64
	}{{a, p.version(5)}, {b, p.version(10)}, {b, 0}, {b, 1 << 60}} {
		if p.notified(rec, []byte(c.chid.String()), c.v, at(9)) {
			t.Fatalf("version %d of %v matched", c.v, c.chid)
		}
	}
	notify(b, 5, 7)
	answer(5)
	expect("b: 5", 3, 3, 1)

	// Latencies from each PUT's own intended time: own versions 4 (1 ms),
	// 3 (1.5 ms), 5 (2 ms); superseded 2 (3 ms), 0 (5 ms), 1 (3.5 ms).
	var got []int64
	rec.totals(func(k kind, h *hdrhistogram.Histogram) {
		if k != kPutToNotification {
			return
		}
		for _, bar := range h.Distribution() {
			for range bar.Count {
				got = append(got, bar.From)
			}
		}
	})
	if want := []int64{1000, 1500, 2000, 3000, 3500, 5000}; !slices.Equal(got, want) {
		t.Fatalf("put_to_notification latencies %v us, want %v", got, want)
	}

	// The report: 7 answered 200 = 3 versions + 3 superseded + 1 missing.
	r := newReport(Config{WS: []string{"127.0.0.1:1"}}.withDefaults(), time.Unix(1, 0))
	r.fill(&Partial{Counts: rec.counts()}, nil, 0, time.Second, 1)
	n := r.Notifications
	if r.Puts.Status["200"] != 7 || n.Versions != 3 || n.Superseded != 3 || n.Missing != 1 || n.Duplicates != 1 {
		t.Fatalf("report: 200s %d, notifications %+v", r.Puts.Status["200"], n)
	}
}
