package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/gobwas/ws/wsutil"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/shardstore"
)

// ClusterConfig configures the cluster scenario.
type ClusterConfig struct {
	// PushdBin is the pushd binary. Required.
	PushdBin string
	// Devices is the number of devices, all connected to node A with UAIDs
	// node A owns, each driven by its own closed loop (PUT, wait for the
	// notification, ack). Zero means 64.
	Devices int
	// Duration of each measured throughput phase. Zero means 5s.
	Duration time.Duration
	// Warmup before the first phase, spent on both paths. Zero means 2s.
	Warmup time.Duration
	// Rounds is how many times the phases run, alternating local and
	// remote. Zero means 2.
	Rounds int
	// Replicas is pushd's -replicas. Zero means 1, so that a PUT's cost is
	// its routing alone.
	Replicas int
	// Samples is the number of sequential PUTs, from one client, whose
	// answer time each latency phase records. Zero means 2,000.
	Samples int
	// PushdArgs are extra pushd flags for both nodes.
	PushdArgs []string
	// Progress, if set, is told what the scenario is doing.
	Progress func(format string, args ...any)
}

// ClusterPath is one PUT path's figures, over all rounds.
type ClusterPath struct {
	// Cycles is PUT -> delivered -> acked cycles per second, the mean of
	// the rounds' throughput phases.
	Cycles float64
	// Errors counts failed cycles in the throughput phases and failed
	// PUTs in the latency phases (non-200 answers, lost notifications).
	Errors int64
	// CPU is both nodes' CPU time per cycle in the throughput phases;
	// SelfCPU the load generator's.
	CPU, SelfCPU time.Duration
	// P50, P99, P999 and Max are PUT answer times (request sent to
	// response read) of the sequential single-client runs.
	P50, P99, P999, Max time.Duration
}

// ClusterResult is the outcome of the cluster scenario.
type ClusterResult struct {
	Devices, Replicas, Rounds, Samples int
	// Local PUTs go to node A, which owns every UAID and holds every
	// connection; Remote PUTs go to node B, which forwards them to A.
	Local, Remote ClusterPath
}

// CycleRatio is remote over local throughput (the target is >= 0.5).
func (r ClusterResult) CycleRatio() float64 { return r.Remote.Cycles / r.Local.Cycles }

// LatencyRatios are remote over local PUT answer times at p50, p99 and
// p99.9 (the target is <= 2).
func (r ClusterResult) LatencyRatios() (p50, p99, p999 float64) {
	f := func(a, b time.Duration) float64 { return float64(a) / float64(b) }
	return f(r.Remote.P50, r.Local.P50), f(r.Remote.P99, r.Local.P99), f(r.Remote.P999, r.Local.P999)
}

// settle is how long a throughput phase runs before it is measured, so
// that cycles begun against the other path are out of the figures.
const settle = 500 * time.Millisecond

// RunCluster starts two pushd nodes in a cluster, connects every device
// to node A with UAIDs node A owns, and measures the same PUT -> delivered
// -> acked loops, and the same sequential PUTs, sent to A (local: the
// owner) and to B (remote: a non-owner that forwards to A), alternating.
func RunCluster(ctx context.Context, cfg ClusterConfig) (ClusterResult, error) {
	if cfg.Devices <= 0 {
		cfg.Devices = 64
	}
	if cfg.Duration <= 0 {
		cfg.Duration = 5 * time.Second
	}
	if cfg.Warmup <= 0 {
		cfg.Warmup = 2 * time.Second
	}
	if cfg.Rounds <= 0 {
		cfg.Rounds = 2
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Samples <= 0 {
		cfg.Samples = 2000
	}
	progress := cfg.Progress
	if progress == nil {
		progress = func(string, ...any) {}
	}
	res := ClusterResult{Devices: cfg.Devices, Replicas: cfg.Replicas, Rounds: cfg.Rounds, Samples: cfg.Samples}

	args := append([]string{"-replicas", strconv.Itoa(cfg.Replicas), "-endpoint-rate", "-1"}, cfg.PushdArgs...)
	nodes, err := startCluster(ctx, cfg.PushdBin, 2, args, progress)
	defer stopNodes(nodes)
	if err != nil {
		return res, err
	}
	a, b := nodes[0], nodes[1]
	uaids := uaidsOwnedBy(nodeNames(nodes), a.name, cfg.Devices)
	devs, chids, paths, err := connectDevicesAs(ctx, a.wsAddr(), uaids)
	defer closeDevices(devs)
	if err != nil {
		return res, err
	}
	r := &clusterRig{
		devs: devs, chids: chids, paths: paths, next: make([]uint64, len(devs)), nodes: nodes,
		hc: [2]*fasthttp.HostClient{newHostClient(a.httpAddr(), len(devs)), newHostClient(b.httpAddr(), len(devs))},
	}
	for i := range r.next {
		r.next[i] = 1
	}

	progress("warming up: %v of loops on each path", cfg.Warmup)
	for target := range 2 {
		if _, err := r.loops(ctx, target, cfg.Warmup/2); err != nil {
			return res, err
		}
		r.sequential(ctx, target, min(200, cfg.Samples))
	}

	var (
		paths2 = [2]*ClusterPath{&res.Local, &res.Remote}
		hists  = [2]*hdrhistogram.Histogram{newLatencyHist(), newLatencyHist()}
		cycles [2]int64
		cpu    [2]time.Duration
		self   [2]time.Duration
	)
	for round := 1; round <= cfg.Rounds; round++ {
		for target, name := range [2]string{"local", "remote"} {
			s, err := r.loops(ctx, target, cfg.Duration)
			if err != nil {
				return res, err
			}
			progress("round %d %s: %.0f cycles/s (%d errors)", round, name, s.rate, s.errors)
			p := paths2[target]
			p.Cycles += s.rate / float64(cfg.Rounds)
			p.Errors += s.errors
			cycles[target] += s.cycles
			cpu[target] += s.cpu
			self[target] += s.self
		}
		for target, name := range [2]string{"local", "remote"} {
			h, errs := r.sequential(ctx, target, cfg.Samples)
			if err := ctx.Err(); err != nil {
				return res, err
			}
			progress("round %d %s: sequential PUT p50 %v p99 %v", round, name, hdrDuration(h.ValueAtQuantile(50)), hdrDuration(h.ValueAtQuantile(99)))
			hists[target].Merge(h)
			paths2[target].Errors += errs
		}
	}
	for target, p := range paths2 {
		if cycles[target] > 0 {
			p.CPU = cpu[target] / time.Duration(cycles[target])
			p.SelfCPU = self[target] / time.Duration(cycles[target])
		}
		h := hists[target]
		p.P50, p.P99, p.P999 = hdrDuration(h.ValueAtQuantile(50)), hdrDuration(h.ValueAtQuantile(99)), hdrDuration(h.ValueAtQuantile(99.9))
		p.Max = hdrDuration(h.Max())
	}
	if res.Local.Cycles == 0 || res.Remote.Cycles == 0 {
		return res, errors.New("bench: a path completed no cycle")
	}
	return res, nil
}

// clusterRig is what the cluster scenario's phases share.
type clusterRig struct {
	devs         []*device
	chids, paths []string
	// next[i] is device i's next version. Only device i's loop touches it
	// while loops run; the sequential runs touch it only between loops.
	next  []uint64
	nodes []*clusterNode
	hc    [2]*fasthttp.HostClient // to node A (local) and node B (remote)
}

// loopSample is one throughput phase's figures.
type loopSample struct {
	rate      float64
	cycles    int64
	errors    int64
	cpu, self time.Duration // totals over the measured time
}

// loops runs one closed loop per device against target's HTTP listener,
// settles, and measures for d.
func (r *clusterRig) loops(ctx context.Context, target int, d time.Duration) (loopSample, error) {
	var (
		measuring, stop atomic.Bool
		done, errs      atomic.Int64
		wg              sync.WaitGroup
		hc              = r.hc[target]
	)
	for i := range r.devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.Header.SetMethod(fasthttp.MethodPut)
			req.Header.SetContentType("application/x-www-form-urlencoded")
			req.SetRequestURI("http://" + hc.Addr + r.paths[i])
			var body, scratch []byte
			for !stop.Load() && ctx.Err() == nil {
				v := r.next[i]
				r.next[i]++
				body = strconv.AppendUint(append(body[:0], "version="...), v, 10)
				req.SetBody(body)
				ok := hc.Do(req, resp) == nil && resp.StatusCode() == fasthttp.StatusOK
				if ok {
					scratch, ok = awaitAck(r.devs[i], r.chids[i], v, scratch)
				}
				if !measuring.Load() {
					continue
				}
				if ok {
					done.Add(1)
				} else {
					errs.Add(1)
				}
			}
		}()
	}
	time.Sleep(settle)
	cpu0, self0 := r.clusterCPU(), selfCPU()
	measuring.Store(true)
	start := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	cpu1, self1 := r.clusterCPU(), selfCPU()
	stop.Store(true)
	wg.Wait()
	s := loopSample{cycles: done.Load(), errors: errs.Load(), cpu: cpu1 - cpu0, self: self1 - self0}
	s.rate = float64(s.cycles) / elapsed.Seconds()
	return s, ctx.Err()
}

// sequential sends n PUTs one at a time from one client to target,
// round-robin over the devices, each followed by its notification and
// ack, and records each PUT's answer time.
func (r *clusterRig) sequential(ctx context.Context, target, n int) (*hdrhistogram.Histogram, int64) {
	hc := r.hc[target]
	h := newLatencyHist()
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPut)
	req.Header.SetContentType("application/x-www-form-urlencoded")
	var (
		body, scratch []byte
		errs          int64
	)
	for k := 0; k < n && ctx.Err() == nil; k++ {
		i := k % len(r.devs)
		v := r.next[i]
		r.next[i]++
		req.SetRequestURI("http://" + hc.Addr + r.paths[i])
		body = strconv.AppendUint(append(body[:0], "version="...), v, 10)
		req.SetBody(body)
		t0 := time.Now()
		err := hc.Do(req, resp)
		lat := time.Since(t0)
		if err != nil || resp.StatusCode() != fasthttp.StatusOK {
			errs++
			continue
		}
		_ = h.RecordValue(int64(lat))
		var ok bool
		if scratch, ok = awaitAck(r.devs[i], r.chids[i], v, scratch); !ok {
			errs++
		}
	}
	return h, errs
}

// clusterCPU is the nodes' CPU time so far, together.
func (r *clusterRig) clusterCPU() time.Duration {
	var total time.Duration
	for _, n := range r.nodes {
		c, _ := n.cpu()
		total += c
	}
	return total
}

func selfCPU() time.Duration {
	c, _ := readCPU(os.Getpid())
	return c
}

// awaitAck reads d's messages until the notification of version v of
// chid, skipping older ones (a notification a failed cycle left behind),
// and acks it.
func awaitAck(d *device, chid string, v uint64, scratch []byte) ([]byte, bool) {
	_ = d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		msg, err := wsutil.ReadServerText(rw{d.rd, d.conn})
		if err != nil {
			return scratch, false
		}
		if hasVersion(msg, v) {
			break
		}
	}
	scratch = append(scratch[:0], `{"messageType":"ack","updates":[{"channelID":"`...)
	scratch = append(scratch, chid...)
	scratch = append(scratch, `","version":`...)
	scratch = strconv.AppendUint(scratch, v, 10)
	scratch = append(scratch, "}]}"...)
	return scratch, wsutil.WriteClientText(d.conn, scratch) == nil
}

// newLatencyHist records nanoseconds from 1 ns to a minute.
func newLatencyHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(time.Minute), 3)
}

func hdrDuration(v int64) time.Duration { return time.Duration(v) }

func newHostClient(addr string, conns int) *fasthttp.HostClient {
	return &fasthttp.HostClient{Addr: addr, MaxConns: conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second}
}

// clusterKey is the cluster secret of the clusters the bench starts.
const clusterKey = "pushbench-cluster-key-0123456789"

// clusterNode is one pushd process of a cluster the bench started.
type clusterNode struct {
	*process
	name, gossip string
}

func (n *clusterNode) wsAddr() string   { return n.addrs[0] }
func (n *clusterNode) httpAddr() string { return n.addrs[1] }

// startClusterNode starts pushd as member name, gossiping on a free
// loopback port and joining join when it is not empty.
func startClusterNode(ctx context.Context, bin, name, join string, extra []string) (*clusterNode, error) {
	gossip, err := freeGossipAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"-node-name", name, "-cluster-addr", gossip, "-cluster-key", clusterKey}
	if join != "" {
		args = append(args, "-join", join)
	}
	p, err := startPushd(ctx, bin, append(args, extra...)...)
	if err != nil {
		return nil, fmt.Errorf("bench: node %s: %w", name, err)
	}
	return &clusterNode{process: p, name: name, gossip: gossip}, nil
}

// startCluster starts n nodes, node-0 first and the others joining it,
// and waits until every node lists them all. On error it returns the
// nodes it started, for the caller to stop.
func startCluster(ctx context.Context, bin string, n int, extra []string, progress func(string, ...any)) ([]*clusterNode, error) {
	var nodes []*clusterNode
	for i := range n {
		join := ""
		if i > 0 {
			join = nodes[0].gossip
		}
		node, err := startClusterNode(ctx, bin, fmt.Sprintf("node-%d", i), join, extra)
		if err != nil {
			return nodes, err
		}
		progress("%s serving ws=%s http=%s gossip=%s", node.name, node.wsAddr(), node.httpAddr(), node.gossip)
		nodes = append(nodes, node)
	}
	for _, node := range nodes {
		if _, err := waitMembers(ctx, node, n, 30*time.Second); err != nil {
			return nodes, err
		}
	}
	return nodes, nil
}

// stopNodes stops the nodes together (each leaves the cluster).
func stopNodes(nodes []*clusterNode) {
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.stop()
		}()
	}
	wg.Wait()
}

func nodeNames(nodes []*clusterNode) []string {
	names := make([]string, len(nodes))
	for i, n := range nodes {
		names[i] = n.name
	}
	return names
}

// members is the number of members httpAddr's GET /cluster lists.
func members(httpAddr string, timeout time.Duration) (int, error) {
	status, body, err := fasthttp.GetTimeout(nil, "http://"+httpAddr+"/cluster", timeout)
	if err != nil {
		return 0, fmt.Errorf("bench: GET /cluster: %w", err)
	}
	if status != fasthttp.StatusOK {
		return 0, fmt.Errorf("bench: GET /cluster: status %d", status)
	}
	var st struct {
		Members []struct {
			Name string `json:"name"`
		} `json:"members"`
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return 0, fmt.Errorf("bench: GET /cluster: %w", err)
	}
	return len(st.Members), nil
}

// pollEvery is how often the scenarios ask a node for its members.
const pollEvery = 10 * time.Millisecond

// waitMembers polls node's GET /cluster until it lists want members, and
// returns when it first did.
func waitMembers(ctx context.Context, node *clusterNode, want int, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := members(node.httpAddr(), time.Second)
		if err == nil && n == want {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("bench: %s lists %d members after %v, want %d (%v)", node.name, n, timeout, want, err)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(pollEvery):
		}
	}
}

// uaidsOwnedBy returns n fresh UAIDs whose owner among names is owner.
func uaidsOwnedBy(names []string, owner string, n int) []uuid.UUID {
	ring := cluster.NewRing(names, 1)
	out := make([]uuid.UUID, 0, n)
	for len(out) < n {
		u := uuid.New()
		if ring.Owner(shardstore.RingHash(u)) == owner {
			out = append(out, u)
		}
	}
	return out
}

// connectDevicesAs connects one device per UAID to wsAddr, each saying
// hello as its UAID and registering one channel. It returns the devices,
// their channel IDs and their endpoints' paths; the caller closes the
// devices, also on error.
func connectDevicesAs(ctx context.Context, wsAddr string, uaids []uuid.UUID) (devs []*device, chids, paths []string, err error) {
	for _, u := range uaids {
		d, err := dialDevice(ctx, wsAddr)
		if err != nil {
			return devs, chids, paths, err
		}
		devs = append(devs, d)
		chid := uuid.NewString()
		path, err := d.helloAs(u.String(), chid)
		if err != nil {
			return devs, chids, paths, err
		}
		chids, paths = append(chids, chid), append(paths, path)
	}
	return devs, chids, paths, nil
}

// helloAs says hello as uaid and registers chid, returning its endpoint's
// path.
func (d *device) helloAs(uaid, chid string) (string, error) {
	if err := d.send(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": []string{}}); err != nil {
		return "", fmt.Errorf("bench: hello: %w", err)
	}
	var r reply
	if err := d.recv(&r); err != nil {
		return "", fmt.Errorf("bench: hello: %w", err)
	}
	if r.Status != 200 || r.UAID != uaid {
		return "", fmt.Errorf("bench: hello as %s answered %+v", uaid, r)
	}
	d.uaid = uaid
	if err := d.send(map[string]any{"messageType": "register", "channelID": chid}); err != nil {
		return "", fmt.Errorf("bench: register: %w", err)
	}
	if err := d.recv(&r); err != nil {
		return "", fmt.Errorf("bench: register: %w", err)
	}
	if r.Status != 200 {
		return "", fmt.Errorf("bench: register answered %+v", r)
	}
	return endpointPath(r.PushEndpoint)
}

// endpointPath is the path of push endpoint URL ep.
func endpointPath(ep string) (string, error) {
	u, err := url.Parse(ep)
	if err != nil {
		return "", fmt.Errorf("bench: endpoint %q: %w", ep, err)
	}
	return u.Path, nil
}

// freeGossipAddr returns a loopback host:port free for TCP and UDP at the
// moment (gossip binds both).
func freeGossipAddr() (string, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("bench: %w", err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr, nil
		}
	}
	return "", errors.New("bench: no free loopback address for gossip")
}
