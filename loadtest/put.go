package loadtest

import (
	"context"
	mrand "math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// puts sends Rate*Duration PUTs open loop to random registered channels
// and returns how many were planned. Each PUT waits for its intended
// time, not for the previous answer; latencies count from that time.
func (l *local) puts(ctx context.Context) int64 {
	var targets []putTarget
	for _, c := range l.established() {
		for _, ch := range c.chans {
			if ch.path != "" {
				targets = append(targets, putTarget{chid: ch.id, prefix: ch.prefix, path: ch.path})
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

	plan := newPutPlan(time.Now().Add(20*time.Millisecond), l.cfg.Rate, total, targets,
		func(int64) int { return mrand.IntN(len(targets)) })
	total = plan.total
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
				t := &plan.targets[plan.target[k]]
				if l.cfg.EndpointRewrite {
					uri = append(uri[:0], l.https[k%int64(len(l.https))]...)
				} else {
					uri = append(uri[:0], prefixes[t.prefix]...)
				}
				uri = append(uri, t.path...)
				body = strconv.AppendUint(append(body[:0], "version="...), plan.version(k), 10)
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
				if resp.StatusCode() == fasthttp.StatusOK {
					plan.answered(l.rec, k)
				}
			}
		})
	}
	wg.Wait()
	return total
}

// drain waits for the notifications of PUTs answered 200 (written to an
// open connection): until every one has been settled (by its own version
// or a later one of its channel), none was settled for a second, or
// cfg.Drain passed.
func (l *local) drain(ctx context.Context) {
	deadline := time.Now().Add(l.cfg.Drain)
	settled := func() uint64 { return l.rec.versions.Load() + l.rec.superseded.Load() }
	last, lastChange := settled(), time.Now()
	for time.Now().Before(deadline) && ctx.Err() == nil {
		got := settled()
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
