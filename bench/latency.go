package bench

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gobwas/ws/wsutil"
	"github.com/valyala/fasthttp"
)

// LatencyConfig configures the latency scenario.
type LatencyConfig struct {
	// PushdBin is the pushd binary. Required.
	PushdBin string
	// Devices is the number of connected devices PUTs are spread over.
	// Zero means 1,000.
	Devices int
	// Rate is PUTs per second, sent open loop. Zero means half the
	// maximum, found first with a short closed-loop run (the throughput
	// scenario's loops).
	Rate float64
	// Duration of the measured phase. Zero means 10s.
	Duration time.Duration
	// Warmup is an open-loop phase at the same rate, before the measured
	// one, whose PUTs are not measured: the node reaches its steady state
	// (its GC target, its store's memtable) first. Zero means 2s; negative
	// means none.
	Warmup time.Duration
	// PushdArgs are extra pushd flags.
	PushdArgs []string
}

// LatencyResult is the outcome of the latency scenario.
type LatencyResult struct {
	Rate float64 // PUTs per second asked for
	// Warmup is the unmeasured open-loop time that ran first.
	Warmup time.Duration
	// MaxRate is the closed-loop maximum the rate was derived from (0 when
	// the rate was given).
	MaxRate float64
	Sent    int64 // measured PUTs answered 200
	Errors  int64 // PUTs not answered 200, warm-up included
	// Received counts notifications matched to a PUT.
	Received int64
	// P50, P99, P999, Max: PUT (intended send time) to notification
	// received on the device.
	P50, P99, P999, Max time.Duration
	// StealPct is the share of the machine's CPU time the hypervisor gave
	// to other guests while the PUTs went out (-1: unknown). The tail is
	// the machine's as much as the node's when it is high.
	StealPct float64
}

// RunLatency sends PUTs open loop at a fixed rate to devices connected to
// one pushd node and measures, from each PUT's intended send time (so a
// stall cannot hide), how long until the device has the notification. Each
// device acks at once.
func RunLatency(ctx context.Context, cfg LatencyConfig) (LatencyResult, error) {
	if cfg.Devices <= 0 {
		cfg.Devices = 1000
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Warmup == 0 {
		cfg.Warmup = 2 * time.Second
	}
	var res LatencyResult
	node, err := startPushd(ctx, cfg.PushdBin, cfg.PushdArgs...)
	if err != nil {
		return res, err
	}
	defer node.stop()
	devs, chids, paths, err := connectDevices(ctx, node.addrs[0], cfg.Devices)
	if err != nil {
		return res, err
	}
	defer closeDevices(devs)

	if cfg.Rate <= 0 {
		n := min(64, cfg.Devices)
		probe := ThroughputConfig{Duration: 3 * time.Second, Warmup: time.Second}
		res.MaxRate, _, _, _, err = closedLoops(ctx, probe, node, node.addrs[1], paths[:n], chids[:n], devs[:n])
		if err != nil {
			return res, err
		}
		cfg.Rate = res.MaxRate / 2
	}
	res.Rate, res.Warmup = cfg.Rate, max(cfg.Warmup, 0)
	base := uint64(1_000_000) // above the probe's versions
	// PUT k carries version base+k; the first warm are not measured.
	warm := int64(cfg.Rate * max(cfg.Warmup, 0).Seconds())

	hist := hdrhistogram.New(1, int64(time.Minute/time.Microsecond), 3)
	var (
		histMu   sync.Mutex
		received atomic.Int64
		// sentAt[i] is the intended send time (unix ns) of device i's
		// outstanding version; version[i] that version.
		sentAt  = make([]atomic.Int64, cfg.Devices)
		version = make([]atomic.Uint64, cfg.Devices)
		readers sync.WaitGroup
	)
	for i, d := range devs {
		readers.Add(1)
		go func() {
			defer readers.Done()
			var ack []byte
			for {
				msg, err := wsutil.ReadServerText(rw{d.rd, d.conn})
				if err != nil {
					return
				}
				now := time.Now().UnixNano()
				v := version[i].Load()
				if !hasVersion(msg, v) {
					continue
				}
				if int64(v-base) >= warm {
					histMu.Lock()
					_ = hist.RecordValue((now - sentAt[i].Load()) / 1e3)
					histMu.Unlock()
					received.Add(1)
				}
				ack = append(ack[:0], `{"messageType":"ack","updates":[{"channelID":"`...)
				ack = append(ack, chids[i]...)
				ack = append(ack, `","version":`...)
				ack = strconv.AppendUint(ack, v, 10)
				ack = append(ack, "}]}"...)
				if wsutil.WriteClientText(d.conn, ack) != nil {
					return
				}
			}
		}()
	}

	// Open loop: the i-th PUT is due at start + i/rate, whoever sends it.
	hc := &fasthttp.HostClient{Addr: node.addrs[1], MaxConns: 512, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	var (
		next   atomic.Int64
		sent   atomic.Int64
		errs   atomic.Int64
		wg     sync.WaitGroup
		start  = time.Now().Add(100 * time.Millisecond)
		total  = warm + int64(cfg.Rate*cfg.Duration.Seconds())
		period = float64(time.Second) / cfg.Rate
	)
	cpuFrom, cpuOK := readCPUTimes()
	for w := 0; w < 256; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			var body []byte
			for ctx.Err() == nil {
				k := next.Add(1) - 1
				if k >= total {
					return
				}
				due := start.Add(time.Duration(float64(k) * period))
				if d := time.Until(due); d > 0 {
					time.Sleep(d)
				}
				i := int(k % int64(cfg.Devices))
				v := base + uint64(k)
				sentAt[i].Store(due.UnixNano())
				version[i].Store(v)
				req.Reset()
				req.Header.SetMethod(fasthttp.MethodPut)
				req.Header.SetContentType("application/x-www-form-urlencoded")
				req.SetRequestURI("http://" + node.addrs[1] + paths[i])
				body = strconv.AppendUint(append(body[:0], "version="...), v, 10)
				req.SetBody(body)
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					errs.Add(1)
					continue
				}
				if k >= warm {
					sent.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	res.StealPct = stealSince(cpuFrom, cpuOK)
	// Give the last notifications a moment, then stop the readers.
	deadline := time.Now().Add(5 * time.Second)
	for received.Load() < sent.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, d := range devs {
		d.conn.Close()
	}
	readers.Wait()

	res.Sent, res.Errors, res.Received = sent.Load(), errs.Load(), received.Load()
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	res.P50, res.P99, res.P999 = us(hist.ValueAtQuantile(50)), us(hist.ValueAtQuantile(99)), us(hist.ValueAtQuantile(99.9))
	res.Max = us(hist.Max())
	if res.Sent == 0 {
		return res, fmt.Errorf("bench: no PUT was answered 200")
	}
	return res, ctx.Err()
}

// hasVersion reports whether a notification carries exactly version v.
func hasVersion(msg []byte, v uint64) bool {
	want := strconv.AppendUint([]byte(`"version":`), v, 10)
	for {
		i := bytes.Index(msg, want)
		if i < 0 {
			return false
		}
		msg = msg[i+len(want):]
		if len(msg) == 0 || msg[0] < '0' || msg[0] > '9' {
			return true
		}
	}
}
