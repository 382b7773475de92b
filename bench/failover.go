package bench

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// FailoverConfig configures the failover scenario.
type FailoverConfig struct {
	// PushdBin is the pushd binary. Required.
	PushdBin string
	// Devices is the number of offline devices (registered, then
	// disconnected) whose UAIDs the killed node owns. Zero means 32.
	Devices int
	// Interval is the least time between the starts of one device's PUTs.
	// Zero means 5ms.
	Interval time.Duration
	// Before is how long the PUT loops run, every device answered 202,
	// before the kill. Zero means 2s.
	Before time.Duration
	// Timeout bounds each wait (for the cluster, for recovery). Zero
	// means 60s.
	Timeout time.Duration
	// ConvergeNodes is the size of the cluster whose convergence is
	// timed after the failover. Zero means 10; negative skips it.
	ConvergeNodes int
	// PushdArgs are extra pushd flags for every node.
	PushdArgs []string
	// Progress, if set, is told what the scenario is doing.
	Progress func(format string, args ...any)
}

// FailoverResult is the outcome of the failover scenario.
type FailoverResult struct {
	Devices int
	// FirstOK is the time from the kill until the first PUT sent after it,
	// for a UAID the killed node owned, was answered 202; AllOK until
	// every device had such an answer.
	FirstOK, AllOK time.Duration
	// Members is the time from the kill until the surviving node the PUTs
	// go to lists 2 members.
	Members time.Duration
	// Answers counts the answers to PUTs sent after the kill, until every
	// device had a 202, by HTTP status; -1 counts transport errors.
	Answers map[int]int
	// ConvergeNodes is the size of the cluster timed for convergence (0
	// when skipped). Converge is the time from the start of its last
	// node's process until every node lists them all; LastReady is the
	// part of it until that node logged that it serves.
	ConvergeNodes       int
	Converge, LastReady time.Duration
}

// RunFailover starts 3 nodes with -replicas 2, registers offline devices
// with UAIDs node-2 owns through node-0, runs a PUT loop per device
// against node-0 and SIGKILLs node-2. It measures how long until those
// PUTs are answered 202 again and until node-0 lists 2 members. Then,
// unless skipped, it times the convergence of a ConvergeNodes-node
// cluster.
func RunFailover(ctx context.Context, cfg FailoverConfig) (FailoverResult, error) {
	if cfg.Devices <= 0 {
		cfg.Devices = 32
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Millisecond
	}
	if cfg.Before <= 0 {
		cfg.Before = 2 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Minute
	}
	if cfg.ConvergeNodes == 0 {
		cfg.ConvergeNodes = 10
	}
	if cfg.Progress == nil {
		cfg.Progress = func(string, ...any) {}
	}
	res, err := runFailover(ctx, cfg)
	if err != nil || cfg.ConvergeNodes < 0 {
		return res, err
	}
	res.ConvergeNodes = cfg.ConvergeNodes
	res.Converge, res.LastReady, err = runConverge(ctx, cfg)
	return res, err
}

func runFailover(ctx context.Context, cfg FailoverConfig) (FailoverResult, error) {
	res := FailoverResult{Devices: cfg.Devices, Answers: map[int]int{}}
	args := append([]string{"-replicas", "2"}, cfg.PushdArgs...)
	nodes, err := startCluster(ctx, cfg.PushdBin, 3, args, cfg.Progress)
	defer stopNodes(nodes)
	if err != nil {
		return res, err
	}
	a, c := nodes[0], nodes[2]
	uaids := uaidsOwnedBy(nodeNames(nodes), c.name, cfg.Devices)
	devs, _, paths, err := connectDevicesAs(ctx, a.wsAddr(), uaids)
	closeDevices(devs)
	if err != nil {
		return res, err
	}
	cfg.Progress("%d offline devices owned by %s registered through %s", cfg.Devices, c.name, a.name)

	var (
		stop    atomic.Bool
		killAt  atomic.Int64 // unix ns; 0 before the kill
		mu      sync.Mutex   // guards the three below
		ready   = make([]bool, cfg.Devices)
		nready  int
		first   = make([]time.Duration, cfg.Devices) // 0: no 202 since the kill
		allOK   = make(chan struct{})
		allWarm = make(chan struct{})
		nfirst  int
		wg      sync.WaitGroup
		hc      = newHostClient(a.httpAddr(), cfg.Devices)
	)
	record := func(i int, sent, answered time.Time, status int) {
		mu.Lock()
		defer mu.Unlock()
		if status == fasthttp.StatusAccepted && !ready[i] {
			ready[i] = true
			if nready++; nready == cfg.Devices {
				close(allWarm)
			}
		}
		k := killAt.Load()
		if k == 0 || sent.UnixNano() < k || nfirst == cfg.Devices {
			return
		}
		res.Answers[status]++
		if status == fasthttp.StatusAccepted && first[i] == 0 {
			first[i] = answered.Sub(time.Unix(0, k))
			if nfirst++; nfirst == cfg.Devices {
				close(allOK)
			}
		}
	}
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(fasthttp.MethodPut)
			req.Header.SetContentType("application/x-www-form-urlencoded")
			req.SetRequestURI("http://" + hc.Addr + paths[i])
			var body []byte
			for v := uint64(1); !stop.Load() && ctx.Err() == nil; v++ {
				body = strconv.AppendUint(append(body[:0], "version="...), v, 10)
				req.SetBody(body)
				sent := time.Now()
				status := -1
				if hc.Do(req, resp) == nil {
					status = resp.StatusCode()
				}
				record(i, sent, time.Now(), status)
				time.Sleep(time.Until(sent.Add(cfg.Interval)))
			}
		}()
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	if err := waitClosed(ctx, allWarm, cfg.Timeout, "every device answered 202 before the kill"); err != nil {
		return res, err
	}
	time.Sleep(cfg.Before)

	cfg.Progress("SIGKILL %s", c.name)
	kill := time.Now()
	killAt.Store(kill.UnixNano())
	if err := c.kill(); err != nil {
		return res, err
	}
	membersAt, err := waitMembers(ctx, a, 2, cfg.Timeout)
	if err != nil {
		return res, err
	}
	res.Members = membersAt.Sub(kill)
	cfg.Progress("%s lists 2 members after %v", a.name, res.Members)
	if err := waitClosed(ctx, allOK, cfg.Timeout, "every device answered 202 after the kill"); err != nil {
		return res, err
	}
	mu.Lock()
	defer mu.Unlock()
	res.FirstOK = first[0]
	for _, d := range first {
		res.FirstOK, res.AllOK = min(res.FirstOK, d), max(res.AllOK, d)
	}
	return res, nil
}

// runConverge starts cfg.ConvergeNodes nodes, each joining node-0 once the
// one before serves, and times from the start of the last one's process
// until every node lists them all.
func runConverge(ctx context.Context, cfg FailoverConfig) (converge, lastReady time.Duration, err error) {
	n := cfg.ConvergeNodes
	var nodes []*clusterNode
	defer func() { stopNodes(nodes) }()
	var start time.Time
	for i := range n {
		join := ""
		if i > 0 {
			join = nodes[0].gossip
		}
		start = time.Now()
		node, err := startClusterNode(ctx, cfg.PushdBin, fmt.Sprintf("node-%d", i), join, cfg.PushdArgs)
		if err != nil {
			return 0, 0, err
		}
		nodes = append(nodes, node)
	}
	lastReady = time.Since(start)
	cfg.Progress("%d nodes started; the last one served after %v", n, lastReady)
	at := make([]time.Time, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at[i], errs[i] = waitMembers(ctx, node, n, cfg.Timeout)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, lastReady, err
	}
	for _, t := range at {
		converge = max(converge, t.Sub(start))
	}
	return converge, lastReady, nil
}

// kill SIGKILLs the node and waits for it to exit.
func (p *process) kill() error {
	if err := p.cmd.Process.Kill(); err != nil {
		return fmt.Errorf("bench: kill: %w", err)
	}
	<-p.done
	return nil
}

// waitClosed waits for ch to be closed, at most timeout.
func waitClosed(ctx context.Context, ch <-chan struct{}, timeout time.Duration, what string) error {
	select {
	case <-ch:
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("bench: not within %v: %s", timeout, what)
	case <-ctx.Done():
		return ctx.Err()
	}
}
