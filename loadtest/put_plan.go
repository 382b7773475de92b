package loadtest

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// putTarget is one registered channel's endpoint.
type putTarget struct {
	chid   uuid.UUID
	prefix uint16
	path   string
}

// putPlan is the open-loop schedule of the PUT phase: PUT k is due at
// start + k*period, goes to channel target[k] (drawn when the plan is
// made) and carries version base+k. Versions are unique in the process
// and grow with k, so a notification's version says which PUT (and
// intended time) it answers without a lookup.
//
// Two PUTs to one channel can reach the server out of order, and the
// server answers 200 to a version not above the channel's highest and
// sends no notification for it (PROTOCOL.md: lower versions are
// idempotent). So a notification carrying version v of a channel settles
// every outstanding PUT of that channel with a version <= v: its own PUT
// ("versions") and the earlier ones, which it superseded. A channel's
// PUTs are chained newest first (prev), and a notification walks its
// PUT's chain back to the first PUT already settled. A superseded PUT
// counts once it is both settled and answered 200, whichever comes
// last, with the latency from its own intended send time to the
// superseding notification; a PUT answered 200 and never settled is
// missing.
//
// Concurrency: notified runs on event loops and answered on the PUT
// goroutines; every per-PUT state is one atomic word. A channel's
// notifications arrive on one connection, so one event loop at a time
// walks a chain; the walk's early stop relies on that (every PUT before
// a settled one in its chain is settled).
//
// Memory: 16 bytes per planned PUT.
type putPlan struct {
	start   int64   // unix ns: PUT 0's intended send time
	period  float64 // ns between PUTs
	base    uint64  // PUT 0's version
	total   int64
	targets []putTarget
	target  []int32         // by PUT: index into targets
	prev    []int32         // by PUT: the channel's previous PUT; -1 for its first
	state   []atomic.Uint64 // by PUT: put* flags, and the latency once superseded
}

// Per-PUT state flags. putOwn and putSuperseded exclude each other: the
// first notification to reach a PUT settles it.
const (
	putOwn        = 1 << iota // its own version was received
	putSuperseded             // a later version of its channel was received first
	putOK                     // answered 200
	// putLatShift: a superseded PUT keeps its latency (us) in the bits
	// from here up, for answered to record if the 200 comes later.
	putLatShift = iota
)

// maxPlannedPuts bounds one process's plan (PUT indexes are int32).
const maxPlannedPuts = math.MaxInt32

// newPutPlan plans total PUTs at rate per second from start over
// nTargets channels; pick chooses PUT k's channel (0 <= pick(k) <
// nTargets).
func newPutPlan(start time.Time, rate float64, total int64, targets []putTarget, pick func(k int64) int) *putPlan {
	total = min(total, maxPlannedPuts)
	p := &putPlan{
		start:   start.UnixNano(),
		period:  float64(time.Second) / rate,
		base:    1,
		total:   total,
		targets: targets,
		target:  make([]int32, total),
		prev:    make([]int32, total),
		state:   make([]atomic.Uint64, total),
	}
	last := make([]int32, len(targets))
	for i := range last {
		last[i] = -1
	}
	for k := range total {
		t := int32(pick(k))
		p.target[k], p.prev[k], last[t] = t, last[t], int32(k)
	}
	return p
}

// intended is PUT k's intended send time (unix ns).
func (p *putPlan) intended(k int64) int64 { return p.start + int64(float64(k)*p.period) }

// version is PUT k's version.
func (p *putPlan) version(k int64) uint64 { return p.base + uint64(k) }

// since is the microseconds from PUT k's intended send time to now.
func (p *putPlan) since(k, now int64) int64 { return max(0, (now-p.intended(k))/1e3) }

// notified accounts for version v of channel chid received at now: the
// PUT that carried v (a version, or a duplicate if already settled) and
// the outstanding earlier PUTs of the channel it supersedes. It reports
// false, and records nothing, when v is not one of the plan's PUTs to
// chid.
func (p *putPlan) notified(rec *recorder, chid []byte, v uint64, now int64) bool {
	if v < p.base || v-p.base >= uint64(p.total) {
		return false
	}
	k := int64(v - p.base)
	if id, err := uuid.ParseBytes(chid); err != nil || id != p.targets[p.target[k]].chid {
		return false
	}
	if _, ok := p.settle(k, putOwn, 0); ok {
		rec.versions.Add(1)
		rec.latency(kPutToNotification, p.since(k, now))
	} else {
		rec.dups.Add(1)
	}
	for j := int64(p.prev[k]); j >= 0; j = int64(p.prev[j]) {
		lat := p.since(j, now)
		old, ok := p.settle(j, putSuperseded, lat)
		if !ok {
			break
		}
		if old&putOK != 0 {
			rec.superseded.Add(1)
			rec.latency(kPutToNotification, lat)
		}
	}
	return true
}

// answered accounts for PUT k's 200: a PUT superseded before its answer
// counts now.
func (p *putPlan) answered(rec *recorder, k int64) {
	if old := p.state[k].Or(putOK); old&putSuperseded != 0 {
		rec.superseded.Add(1)
		rec.latency(kPutToNotification, int64(old>>putLatShift))
	}
}

// settle marks PUT k settled with flag (and lat, when superseded) unless
// it was settled already; it returns the state before.
func (p *putPlan) settle(k int64, flag, lat int64) (old uint64, ok bool) {
	s := &p.state[k]
	for {
		old = s.Load()
		if old&(putOwn|putSuperseded) != 0 {
			return old, false
		}
		if s.CompareAndSwap(old, old|uint64(flag)|uint64(lat)<<putLatShift) {
			return old, true
		}
	}
}

// plannedPuts is how many PUTs rate per second for d makes.
func plannedPuts(rate float64, d time.Duration) int64 {
	return int64(math.Round(rate * d.Seconds()))
}
