package loadtest

import (
	"context"
	"math"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// putPlan is the open-loop schedule of the PUT phase: PUT k is due at
// start + k*period and carries version base+k. Versions are unique in
// the process and grow with time, so a channel's versions only grow and
// a notification's version says which PUT (and intended time) it
// answers, with no table of PUTs in flight.
type putPlan struct {
	start  int64   // unix ns: PUT 0's intended send time
	period float64 // ns between PUTs
	base   uint64  // PUT 0's version
	total  int64
	seen   []atomic.Uint64 // bit k: PUT k's version was received
}

func newPutPlan(start time.Time, rate float64, total int64) *putPlan {
	return &putPlan{
		start:  start.UnixNano(),
		period: float64(time.Second) / rate,
		base:   1,
		total:  total,
		seen:   make([]atomic.Uint64, (total+63)/64),
	}
}

// intended is PUT k's intended send time (unix ns).
func (p *putPlan) intended(k int64) int64 { return p.start + int64(float64(k)*p.period) }

// match reads a received version: ok when it belongs to the plan, first
// on its first receipt, lat the microseconds since its PUT was due.
func (p *putPlan) match(v uint64, now int64) (lat int64, first, ok bool) {
	if v < p.base || v-p.base >= uint64(p.total) {
		return 0, false, false
	}
	k := int64(v - p.base)
	bit := uint64(1) << (k & 63)
	old := p.seen[k>>6].Or(bit)
	return (now - p.intended(k)) / 1e3, old&bit == 0, true
}

// plannedPuts is how many PUTs rate per second for d makes.
func plannedPuts(rate float64, d time.Duration) int64 {
	return int64(math.Round(rate * d.Seconds()))
}

// putTarget is one registered channel's endpoint.
type putTarget struct {
	prefix uint16
	path   string
}

// puts sends Rate*Duration PUTs open loop to random registered channels
// and returns how many were planned. Each PUT waits for its intended
// time, not for the previous answer; latencies count from that time.
func (l *local) puts(ctx context.Context) int64 {
	var targets []putTarget
	for _, c := range l.established() {
		for _, ch := range c.chans {
			if ch.path != "" {
				targets = append(targets, putTarget{ch.prefix, ch.path})
			}
		}
	}
	total := plannedPuts(l.cfg.Rate, l.cfg.Duration)
	if len(targets) == 0 || total <= 0 {
		return 0
	}
	l.prefixes.Lock()
	prefixes := append([]string(nil), l.prefixes.list...)
	l.prefixes.Unlock()

	plan := newPutPlan(time.Now().Add(20*time.Millisecond), l.cfg.Rate, total)
	l.plan.Store(plan)
	hc := &fasthttp.Client{
		MaxConnsPerHost:               l.cfg.PutConns,
		ReadTimeout:                   30 * time.Second,
		WriteTimeout:                  30 * time.Second,
		MaxIdleConnDuration:           30 * time.Second,
		NoDefaultUserAgentHeader:      true,
		DisableHeaderNamesNormalizing: true,
	}
	defer hc.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(int64(l.cfg.PutConns), total) {
		wg.Go(func() {
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var uri, body []byte
			for {
				k := next.Add(1) - 1
				if k >= total || !sleepUntil(ctx, time.Unix(0, plan.intended(k))) {
					return
				}
				t := targets[mrand.IntN(len(targets))]
				if l.cfg.EndpointRewrite {
					uri = append(uri[:0], l.https[k%int64(len(l.https))]...)
				} else {
					uri = append(uri[:0], prefixes[t.prefix]...)
				}
				uri = append(uri, t.path...)
				body = strconv.AppendUint(append(body[:0], "version="...), plan.base+uint64(k), 10)
				req.Reset()
				req.Header.SetMethod(fasthttp.MethodPut)
				req.Header.SetContentType("application/x-www-form-urlencoded")
				req.SetRequestURIBytes(uri)
				req.SetBody(body)
				l.rec.putsSent.Add(1)
				err := hc.Do(req, resp)
				lat := (time.Now().UnixNano() - plan.intended(k)) / 1e3
				if err != nil {
					l.rec.putErrors.Add(1)
					l.rec.errorf("put")
					continue
				}
				l.rec.status(resp.StatusCode())
				l.rec.latency(kPutResponse, lat)
			}
		})
	}
	wg.Wait()
	return total
}

// drain waits for the notifications of PUTs answered 200 (written to an
// open connection): until every one has arrived, none arrived for a
// second, or cfg.Drain passed.
func (l *local) drain(ctx context.Context) {
	deadline := time.Now().Add(l.cfg.Drain)
	last, lastChange := l.rec.versions.Load(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		got := l.rec.versions.Load()
		if got >= l.rec.putStatus[200].Load() {
			return
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > time.Second {
			return
		}
		sleepUntil(ctx, time.Now().Add(10*time.Millisecond))
	}
}
