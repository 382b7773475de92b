package loadtest

import (
	"context"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/panjf2000/gnet/v2"
)

// readBufferCap is gnet's read buffer per event loop: server messages
// are small, so a smaller buffer than gnet's 64 KiB default will do.
const readBufferCap = 16 << 10

// coordinator is how a process's run talks to whoever aggregates it: the
// same process, or a parent over the worker protocol. Both methods are
// called from one goroutine at a time (barrier from the run, tick from
// its ticker; they may overlap each other).
type coordinator interface {
	// barrier blocks until every process of the run reached the named
	// point, or ctx ends.
	barrier(ctx context.Context, name string) error
	// tick hands over one second; it should not block for long, the
	// next second's events are being recorded meanwhile. t.hists belong
	// to the caller and are valid only during the call: copy or merge,
	// do not keep.
	tick(t *Tick) error
}

var (
	_ gnet.EventHandler = (*local)(nil)
	_ coordinator       = inProcess{}
	_ coordinator       = (*workerCoord)(nil)
)

// local runs a scenario's connections in this process. It is the gnet
// event handler of all of them.
type local struct {
	gnet.BuiltinEventEngine

	cfg     Config
	index   int // process index among workers
	rec     *recorder
	hs      handshake
	targets []wsTarget
	https   []string // HTTP target prefixes (endpoint rewrite)
	dialer  *dialer
	cli     *gnet.Client
	conns   []conn

	plan      atomic.Pointer[putPlan] // set when PUTs start
	acks      *ackQueue               // non-nil with AckDelay
	reconnect chan *conn              // storm: dropped connections to redial
	retry     chan *conn              // set-ups to try again (Config.SetupRetries)
	sem       chan struct{}           // hello-rate: connections in flight; nil otherwise
	stopping  atomic.Bool             // closes from here on are ours
	flushing  atomic.Int64            // pings of the flush not yet answered
	phase     atomic.Pointer[string]  // for ticks

	prefixes struct {
		sync.Mutex
		index map[string]uint16
		list  []string
	}

	settle struct {
		sync.Mutex
		phase       uint8
		pending     int
		done        chan struct{}
		established []*conn
	}
}

func newLocal(cfg Config, index int) (*local, error) {
	l := &local{cfg: cfg, index: index, rec: newRecorder(), hs: newHandshake()}
	var err error
	if l.targets, err = parseWSTargets(cfg.WS, l.hs); err != nil {
		return nil, err
	}
	for _, h := range cfg.HTTP {
		p, err := httpPrefix(h)
		if err != nil {
			return nil, err
		}
		l.https = append(l.https, p)
	}
	l.dialer = &dialer{index: index, timeout: cfg.SetupTimeout}
	l.prefixes.index = make(map[string]uint16)
	l.setPhase("start")
	return l, nil
}

func (l *local) setPhase(p string) { l.phase.Store(&p) }

// run carries out the scenario and returns this process's result.
func (l *local) run(ctx context.Context, co coordinator) (*Partial, error) {
	if _, err := openFileLimit(); err != nil {
		return nil, err
	}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithLogger(silentLogger{}),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
		gnet.WithReadBufferCap(readBufferCap),
	}
	if l.cfg.EventLoops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(l.cfg.EventLoops))
	}
	var err error
	if l.cli, err = gnet.NewClient(l, opts...); err != nil {
		return nil, fmt.Errorf("loadtest: gnet client: %w", err)
	}
	if err := l.cli.Start(); err != nil {
		return nil, fmt.Errorf("loadtest: gnet client: %w", err)
	}
	if l.cfg.Ack.Kind == AckDelay {
		l.acks = newAckQueue()
		actx, cancel := context.WithCancel(ctx)
		defer cancel()
		go l.acks.run(actx, l.rec)
	}

	tickDone := make(chan struct{})
	tickStop := make(chan struct{})
	var tickErr error
	go func() {
		defer close(tickDone)
		tickErr = l.ticker(co, tickStop)
	}()

	p := &Partial{}
	if l.cfg.Scenario == ScenarioHelloRate {
		l.sem = make(chan struct{}, l.cfg.Parallel)
	} else {
		// The baseline of the memory per connection: everything but the
		// connections (and their slice) is allocated and resident by now.
		debug.FreeOSMemory()
		p.Memory.RSSBefore = readRSS()
		l.allocConns()
		p.Target = len(l.conns)
	}
	stopRetries := func() {}
	if l.cfg.SetupRetries > 0 && l.sem == nil {
		stopRetries = l.startRetries(ctx)
	}
	err = l.scenario(ctx, co, p)

	l.setPhase("done")
	l.stopping.Store(true)
	stopRetries()
	if serr := l.cli.Stop(); serr != nil && !errors.Is(serr, context.Canceled) {
		l.cfg.Logger.Debug("loadtest: gnet client stop", "err", serr)
	}
	close(tickStop)
	<-tickDone
	if err == nil {
		err = tickErr
	}

	p.Counts = l.rec.counts()
	l.rec.totals(func(k kind, h *hdrhistogram.Histogram) { p.hists[k] = h })
	if l.cfg.Scenario == ScenarioHelloRate {
		p.Target = int(p.Counts.Dialed)
	}
	return p, err
}

// scenario runs the phases of the configured scenario.
func (l *local) scenario(ctx context.Context, co coordinator, p *Partial) error {
	if l.cfg.Scenario == ScenarioHelloRate {
		l.setPhase("hello")
		start := time.Now()
		l.helloRate(ctx)
		p.Seconds = time.Since(start).Seconds()
		return ctx.Err()
	}
	l.setPhase("ramp")
	l.ramp(ctx)
	debug.FreeOSMemory()
	p.Memory.RSSAfter = readRSS()
	p.Memory.Conns = l.rec.open.Load()
	if p.Memory.Conns > 0 {
		p.Memory.BytesPerConn = float64(p.Memory.RSSAfter-p.Memory.RSSBefore) / float64(p.Memory.Conns)
	}
	if err := co.barrier(ctx, "ramped"); err != nil {
		return err
	}
	if l.cfg.Hold > 0 {
		l.setPhase("hold")
		sleepUntil(ctx, time.Now().Add(l.cfg.Hold))
	}
	switch l.cfg.Scenario {
	case ScenarioSteady:
		l.setPhase("put")
		start := time.Now()
		if p.PutsPlanned = l.puts(ctx); p.PutsPlanned == 0 {
			p.Notes = append(p.Notes, fmt.Sprintf("process %d: no PUTs (no registered channel, or rate x duration < 1)", l.index))
		}
		p.Seconds = time.Since(start).Seconds()
		l.setPhase("drain")
		l.drain(ctx)
		l.flush(ctx)
	case ScenarioStorm:
		l.setPhase("storm")
		l.storm(ctx)
	}
	return ctx.Err()
}

// allocConns makes every connection and its channels in two allocations,
// targets round robin.
func (l *local) allocConns() {
	l.conns = make([]conn, l.cfg.Conns)
	chans := make([]channel, l.cfg.Conns*l.cfg.Channels)
	for i := range l.conns {
		c := &l.conns[i]
		c.target = uint16((i + l.index) % len(l.targets))
		c.chans = chans[i*l.cfg.Channels : (i+1)*l.cfg.Channels : (i+1)*l.cfg.Channels]
		for j := range c.chans {
			c.chans[j].id = newUUID4()
		}
	}
}

// open dials c and hands it to gnet; OnOpen goes on from there. It
// reports false (and has settled c) when the dial failed.
func (l *local) open(ctx context.Context, c *conn) bool {
	c.state = stDialing
	c.code = 0
	c.t0 = time.Now().UnixNano()
	l.rec.dialed.Add(1)
	nc, err := l.dialer.dial(ctx, &l.targets[c.target])
	if err != nil {
		l.rec.errorf("dial")
		l.setupFailed(c)
		return false
	}
	if _, err := l.cli.EnrollContext(nc, c); err != nil {
		l.rec.errorf("enroll")
		l.settled(c, false)
		return false
	}
	return true
}

// setupFailed ends a failed set-up of c: with retries left it is dialled
// again after a back-off, like a device that was refused; otherwise it
// reports to its phase as failed.
func (l *local) setupFailed(c *conn) {
	if l.retry == nil || int(c.tries) >= l.cfg.SetupRetries || l.stopping.Load() {
		l.settled(c, false)
		return
	}
	c.tries++
	l.rec.retries.Add(1)
	if c.phase == phaseRamp {
		// A fresh device again: a new UAID, every channel registered anew.
		c.nreg = 0
		c.flags &^= fHasUAID
	}
	d := min(time.Second<<(c.tries-1), 16*time.Second)
	d = d/2 + time.Duration(mrand.Int64N(int64(d/2))) // jitter: [d/2, d)
	time.AfterFunc(d, func() { l.retry <- c })
}

// startRetries runs the dials of setupFailed's retries until stop is
// called, which waits for them. The queue holds every connection (each is
// in it at most once), so a timer firing after stop never blocks.
func (l *local) startRetries(ctx context.Context) (stop func()) {
	l.retry = make(chan *conn, max(len(l.conns), 1))
	return l.dialFrom(ctx, l.retry, l.cfg.Parallel)
}

// dialFrom starts n goroutines that dial the connections sent on queue,
// until stop is called, which waits for them. Once the run is stopping a
// queued connection fails instead.
func (l *local) dialFrom(ctx context.Context, queue <-chan *conn, n int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case c := <-queue:
					if l.stopping.Load() {
						l.settled(c, false)
						continue
					}
					l.open(ctx, c)
				}
			}
		})
	}
	return func() {
		cancel()
		wg.Wait()
	}
}

// beginPhase starts counting n connections' setups.
func (l *local) beginPhase(phase uint8, n int) <-chan struct{} {
	l.settle.Lock()
	defer l.settle.Unlock()
	l.settle.phase = phase
	l.settle.pending = n
	l.settle.done = make(chan struct{})
	if n == 0 {
		close(l.settle.done)
	}
	return l.settle.done
}

// endPhase closes the phase; connections still unsettled count as failed
// (timed out) and report to no phase when they finish.
func (l *local) endPhase() {
	l.settle.Lock()
	defer l.settle.Unlock()
	if n := l.settle.pending; n > 0 {
		for range n {
			l.rec.errorf("setup_timeout")
		}
		switch l.settle.phase {
		case phaseRamp:
			l.rec.failed.Add(uint64(n))
		case phaseReconnect:
			l.rec.reconnFails.Add(uint64(n))
		}
	}
	l.settle.phase = phaseNone
	l.settle.pending = 0
}

// settled reports the end of c's setup (once per phase).
func (l *local) settled(c *conn, ok bool) {
	if c.flags&fSettled != 0 || c.phase == phaseNone {
		return
	}
	c.flags |= fSettled
	l.settle.Lock()
	defer l.settle.Unlock()
	if c.phase != l.settle.phase {
		return // the phase ended without it
	}
	switch {
	case c.phase == phaseRamp && ok:
		l.rec.established.Add(1)
		l.settle.established = append(l.settle.established, c)
	case c.phase == phaseRamp:
		l.rec.failed.Add(1)
	case ok:
		l.rec.reconnected.Add(1)
	default:
		l.rec.reconnFails.Add(1)
	}
	l.settle.pending--
	if l.settle.pending == 0 {
		close(l.settle.done)
	}
}

// established is every connection established by the ramp.
func (l *local) established() []*conn {
	l.settle.Lock()
	defer l.settle.Unlock()
	return append([]*conn(nil), l.settle.established...)
}

// ramp opens every connection on a fixed schedule of cfg.Ramp per second
// and waits until each is established or failed.
func (l *local) ramp(ctx context.Context) {
	n := len(l.conns)
	for i := range l.conns {
		l.conns[i].phase = phaseRamp
	}
	done := l.beginPhase(phaseRamp, n)
	start := time.Now()
	period := float64(time.Second) / l.cfg.Ramp
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(l.cfg.Parallel, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if !sleepUntil(ctx, start.Add(time.Duration(float64(i)*period))) {
					return
				}
				l.open(ctx, &l.conns[i])
			}
		})
	}
	wg.Wait()
	l.waitPhase(ctx, done)
}

// waitPhase waits for the phase's connections, at most SetupTimeout.
func (l *local) waitPhase(ctx context.Context, done <-chan struct{}) {
	t := time.NewTimer(l.cfg.SetupTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	case <-ctx.Done():
	}
	l.endPhase()
}

// storm drops StormPct percent of the established connections at once
// and reconnects them with their UAID and channel IDs.
func (l *local) storm(ctx context.Context) {
	est := l.established()
	mrand.Shuffle(len(est), func(i, j int) { est[i], est[j] = est[j], est[i] })
	n := int(float64(len(est))*l.cfg.StormPct/100 + 0.5)
	est = est[:n]
	l.reconnect = make(chan *conn, n)
	done := l.beginPhase(phaseReconnect, n)
	l.rec.dropped.Add(uint64(n))

	stop := l.dialFrom(ctx, l.reconnect, min(l.cfg.Parallel, n))
	for _, c := range est {
		l.drop(ctx, c)
	}
	l.waitPhase(ctx, done)
	stop()
}

// helloRate connects and says hello as fast as cfg.Parallel connections
// in flight allow, for cfg.Duration; each connection closes after its
// hello (OnClose frees its slot).
func (l *local) helloRate(ctx context.Context) {
	hctx, cancel := context.WithTimeout(ctx, l.cfg.Duration)
	defer cancel()
	var n atomic.Uint64
	var wg sync.WaitGroup
	for range l.cfg.Parallel {
		wg.Go(func() {
			for {
				select {
				case l.sem <- struct{}{}:
				case <-hctx.Done():
					return
				}
				if hctx.Err() != nil {
					<-l.sem
					return
				}
				c := &conn{target: uint16(n.Add(1) % uint64(len(l.targets)))}
				if !l.open(ctx, c) {
					<-l.sem
				}
			}
		})
	}
	wg.Wait()
	// Wait for the connections still in flight: take every slot.
	t := time.NewTimer(l.cfg.SetupTimeout)
	defer t.Stop()
	for range l.cfg.Parallel {
		select {
		case l.sem <- struct{}{}:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// ticker hands a Tick to co at every wall-clock second, and a last one
// for the partial second when stop closes.
func (l *local) ticker(co coordinator, stop <-chan struct{}) error {
	var prev Counts
	var firstErr error
	emit := func(sec int64) {
		cur := l.rec.counts()
		t := &Tick{Second: sec, Phase: *l.phase.Load(), Open: l.rec.open.Load(), Counts: cur.sub(prev)}
		prev = cur
		t.hists = l.rec.swapIntervals()
		if err := co.tick(t); err != nil && firstErr == nil {
			firstErr = err
		}
		l.rec.resetIntervals()
	}
	for {
		now := time.Now()
		next := now.Truncate(time.Second).Add(time.Second)
		timer := time.NewTimer(next.Sub(now))
		select {
		case <-timer.C:
			emit(next.Unix() - 1)
		case <-stop:
			timer.Stop()
			emit(time.Now().Unix())
			return firstErr
		}
	}
}

// prefixIndex interns an endpoint's "scheme://host".
func (l *local) prefixIndex(p string) uint16 {
	l.prefixes.Lock()
	defer l.prefixes.Unlock()
	if i, ok := l.prefixes.index[p]; ok {
		return i
	}
	i := uint16(len(l.prefixes.list))
	l.prefixes.list = append(l.prefixes.list, strings.Clone(p))
	l.prefixes.index[l.prefixes.list[i]] = i
	return i
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// readRSS is this process's resident set size in bytes (0 if unknown).
func readRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

type silentLogger struct{}

func (silentLogger) Debugf(string, ...any) {}
func (silentLogger) Infof(string, ...any)  {}
func (silentLogger) Warnf(string, ...any)  {}
func (silentLogger) Errorf(string, ...any) {}
func (silentLogger) Fatalf(string, ...any) {}
