package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws/wsutil"
	"github.com/valyala/fasthttp"
)

// ThroughputConfig configures the throughput scenario.
type ThroughputConfig struct {
	// PushdBin is the pushd binary. Required.
	PushdBin string
	// BenchBin runs the baselines ("pushbench baseline-http" and
	// "pushbench baseline-parts"). Zero means the running executable.
	BenchBin string
	// Clients is the number of devices, each driven by its own closed
	// loop (PUT, wait for the notification, ack). Zero means 64.
	Clients int
	// Duration of each measured phase. Zero means 10s.
	Duration time.Duration
	// Warmup before each measured phase. Zero means 2s.
	Warmup time.Duration
	// PushdArgs are extra pushd flags (e.g. -gc-percent 100).
	PushdArgs []string
	// Progress, if set, is told what the scenario is doing.
	Progress func(format string, args ...any)
}

// ThroughputResult is the outcome of the throughput scenario.
type ThroughputResult struct {
	Clients int
	// PushdCycles is PUT -> delivered -> acked cycles per second.
	PushdCycles float64
	// BaselinePuts is PUTs per second answered by the bare handler.
	BaselinePuts float64
	// Ratio is PushdCycles / BaselinePuts.
	Ratio float64
	// PartsCycles is the cycles per second of the parts baseline (see
	// RunBaselineParts): the same cycle made of pushd's design pieces
	// alone, with the same clients.
	PartsCycles float64
	// Errors counts failed cycles (non-200 answers, lost notifications).
	Errors int64
	// PushdCPU and BaselineCPU are the server processes' CPU time per
	// cycle / per PUT during the measured phase; SelfCPU and
	// BaselineSelfCPU are the load generator's per operation in the pushd
	// and the baseline phase; PartsCPU and PartsSelfCPU the same for the
	// parts baseline.
	PushdCPU, BaselineCPU, SelfCPU, BaselineSelfCPU time.Duration
	PartsCPU, PartsSelfCPU                          time.Duration
}

// ClientBound is the ratio the load generator leaves room for when both
// phases are CPU-bound on a machine the generator shares with the server:
// the baseline costs BaselineCPU+BaselineSelfCPU per PUT, and a pushd
// cycle costs at least SelfCPU even if the server took no CPU at all, so
// no server reaches a ratio above their quotient with this client. It is
// 0 when a figure is missing.
func (r ThroughputResult) ClientBound() float64 {
	if r.SelfCPU <= 0 {
		return 0
	}
	return float64(r.BaselineCPU+r.BaselineSelfCPU) / float64(r.SelfCPU)
}

var (
	baselineReady = regexp.MustCompile(regexp.QuoteMeta(BaselineHTTPReady) + `(\S+)`)
	partsReady    = regexp.MustCompile(regexp.QuoteMeta(BaselinePartsReady) + ` ws=(\S+) http=(\S+)`)
)

// RunThroughput measures the bare fasthttp PUT handler, then the parts
// baseline, then pushd, with the same HTTP client and the same number of
// closed loops.
func RunThroughput(ctx context.Context, cfg ThroughputConfig) (ThroughputResult, error) {
	if cfg.Clients <= 0 {
		cfg.Clients = 64
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 10 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 2 * time.Second
	}
	var err error
	if cfg.BenchBin, err = benchBin(cfg.BenchBin); err != nil {
		return ThroughputResult{}, err
	}
	res := ThroughputResult{Clients: cfg.Clients}

	base, err := startProcess(ctx, baselineReady, cfg.BenchBin, "baseline-http", "-addr", "127.0.0.1:0")
	if err != nil {
		return res, err
	}
	basePaths := make([]string, cfg.Clients)
	for i := range basePaths {
		basePaths[i] = "/update/x"
	}
	var bops float64
	bops, _, res.BaselineCPU, res.BaselineSelfCPU, err = closedLoops(ctx, cfg, base, base.addrs[0], basePaths, nil, nil)
	res.BaselinePuts = bops
	base.stop()
	if err != nil {
		return res, fmt.Errorf("baseline: %w", err)
	}

	if res.PartsCycles, res.PartsCPU, res.PartsSelfCPU, err = partsPhase(ctx, cfg); err != nil {
		return res, fmt.Errorf("parts baseline: %w", err)
	}

	node, err := startPushd(ctx, cfg.PushdBin, cfg.PushdArgs...)
	if err != nil {
		return res, err
	}
	defer node.stop()
	if cfg.Progress != nil {
		cfg.Progress("pushd serving ws=%s http=%s", node.addrs[0], node.addrs[1])
	}
	devs, chids, paths, err := connectDevices(ctx, node.addrs[0], cfg.Clients)
	if err != nil {
		return res, err
	}
	defer closeDevices(devs)
	res.PushdCycles, res.Errors, res.PushdCPU, res.SelfCPU, err = closedLoops(ctx, cfg, node, node.addrs[1], paths, chids, devs)
	if err != nil {
		return res, fmt.Errorf("pushd: %w", err)
	}
	res.Ratio = res.PushdCycles / res.BaselinePuts
	return res, nil
}

// partsPhase runs the closed loops against the parts baseline.
func partsPhase(ctx context.Context, cfg ThroughputConfig) (rate float64, serverCPU, selfCPU time.Duration, err error) {
	srv, err := startProcess(ctx, partsReady, cfg.BenchBin, "baseline-parts", "-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, err
	}
	defer srv.stop()
	devs, chids, paths, err := connectDevices(ctx, srv.addrs[0], cfg.Clients)
	if err != nil {
		return 0, 0, 0, err
	}
	defer closeDevices(devs)
	var errs int64
	rate, errs, serverCPU, selfCPU, err = closedLoops(ctx, cfg, srv, srv.addrs[1], paths, chids, devs)
	if err == nil && errs > 0 {
		err = fmt.Errorf("%d failed cycles", errs)
	}
	return rate, serverCPU, selfCPU, err
}

// closedLoops runs one loop per path: PUT the next version, and when devs
// is not nil, read the device's notification and ack it. It returns the
// completed cycles per second over the measured phase.
func closedLoops(ctx context.Context, cfg ThroughputConfig, server *process, httpAddr string, paths, chids []string, devs []*device) (rate float64, errCount int64, serverCPU, selfCPU time.Duration, err error) {
	hc := &fasthttp.HostClient{Addr: httpAddr, MaxConns: len(paths), ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		done      atomic.Int64
		errs      atomic.Int64
		wg        sync.WaitGroup
	)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(fasthttp.MethodPut)
			req.Header.SetContentType("application/x-www-form-urlencoded")
			req.SetRequestURI("http://" + httpAddr + paths[i])
			var body, scratch []byte
			for v := uint64(1); !stop.Load() && ctx.Err() == nil; v++ {
				body = strconv.AppendUint(append(body[:0], "version="...), v, 10)
				req.SetBody(body)
				if err := hc.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					errs.Add(1)
					continue
				}
				if devs != nil {
					var ok bool
					if scratch, ok = cycle(devs[i], chids[i], v, scratch); !ok {
						errs.Add(1)
						return
					}
				}
				if measuring.Load() {
					done.Add(1)
				}
			}
		}()
	}
	time.Sleep(cfg.Warmup)
	srv0, _ := server.cpu()
	self0, _ := readCPU(os.Getpid())
	measuring.Store(true)
	start := time.Now()
	time.Sleep(cfg.Duration)
	measuring.Store(false)
	elapsed := time.Since(start)
	srv1, _ := server.cpu()
	self1, _ := readCPU(os.Getpid())
	stop.Store(true)
	wg.Wait()
	ops := done.Load()
	if ops > 0 {
		serverCPU = (srv1 - srv0) / time.Duration(ops)
		selfCPU = (self1 - self0) / time.Duration(ops)
	}
	return float64(ops) / elapsed.Seconds(), errs.Load(), serverCPU, selfCPU, ctx.Err()
}

// cycle reads the notification for version v of chid and acks it. The
// client side is kept cheap (no reflection) so that the load generator
// takes as little of the machine as it does for the baseline.
func cycle(d *device, chid string, v uint64, scratch []byte) ([]byte, bool) {
	_ = d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	msg, err := wsutil.ReadServerText(rw{d.rd, d.conn})
	if err != nil {
		return scratch, false
	}
	scratch = strconv.AppendUint(append(scratch[:0], `"version":`...), v, 10)
	if !bytes.Contains(msg, []byte(`"notification"`)) || !bytes.Contains(msg, scratch) {
		return scratch, false
	}
	scratch = append(scratch[:0], `{"messageType":"ack","updates":[{"channelID":"`...)
	scratch = append(scratch, chid...)
	scratch = append(scratch, `","version":`...)
	scratch = strconv.AppendUint(scratch, v, 10)
	scratch = append(scratch, "}]}"...)
	return scratch, wsutil.WriteClientText(d.conn, scratch) == nil
}
