package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"github.com/valyala/fasthttp"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/internal/token"
	"github.com/pushd/pushd/shardstore"
)

// Node is one pushd node: client listener, HTTP listener, lock table and
// shard store. Create it with New, start it with Start, stop it with
// Shutdown.
type Node struct {
	cfg     Config
	log     *slog.Logger
	metrics *nodeMetrics
	store   *shardstore.Store
	keys    *token.Keyring
	locks   *lockTable
	hub     *hub
	// waiters are the long polls (GET /v1/updates?wait=).
	waiters   waiters
	longPolls atomic.Int64 // long polls holding an HTTP connection
	kicker    *kicker
	// endpointLimit and sourceLimit rate-limit PUTs (429).
	endpointLimit *rateLimiter
	sourceLimit   *rateLimiter
	conns         connList
	maxConns      int
	nconns        atomic.Int64 // accepted and not yet retired (see runq)
	setup         setupGate
	gc            gcTuner

	// runq holds connections with queued jobs. A connection is in it at
	// most once and counts in nconns until its last job ran, and nconns
	// never exceeds maxConns, so enqueueing never blocks an event loop.
	runq chan *client
	lane waitLane

	wsLn     net.Listener
	httpLn   net.Listener
	ipMu     sync.Mutex
	localIPs []net.IP // guarded by ipMu: see internIP
	gcli     *gnet.Client
	http     *fasthttp.Server

	// Cluster (cluster.go): this node's name, the member list and ring in
	// force, the call listener and gossip (nil when standalone), the edge
	// side of presence, and the partitions being taken over.
	self  string
	view  atomic.Pointer[view]
	tr    *cluster.Transport
	ml    *cluster.Membership
	edges edgeTable
	fills [cluster.Partitions]atomic.Pointer[fill]
	// leaving: the node is handing its UAIDs over (leave); it refuses
	// owner calls that would add state.
	leaving atomic.Bool
	// viewReady is closed once the first member list is in force.
	viewReady chan struct{}
	readyOnce sync.Once
	// handoffMu serialises putting member lists in force with dropping
	// handed partitions.
	handoffMu sync.Mutex
	// handingOff: a member list is being put in force (GET /cluster).
	handingOff atomic.Bool
	// async tracks calls nobody waits for (goAsync); asyncDone, guarded by
	// asyncMu, stops new ones once Shutdown waits for them.
	async     sync.WaitGroup
	asyncMu   sync.RWMutex
	asyncDone bool
	// expiry: see expire.go; zero when Config.UAIDTTL is off.
	expiry expiryFloors
	// noteCalls holds a token per replica note under way (note): past
	// maxNoteCalls they are dropped rather than let a slow replica pile up
	// goroutines.
	noteCalls chan struct{}

	ready    atomic.Bool
	shutdown atomic.Bool
	quit     chan struct{}
	wg       sync.WaitGroup // workers
	bg       sync.WaitGroup // accept loop, sweeper, HTTP server
}

// New opens the node's store and keys and binds its listeners. The caller's
// Config is not modified.
func New(cfg Config) (*Node, error) {
	cfg = cfg.withDefaults()
	n := &Node{
		cfg:     cfg,
		log:     cfg.Logger,
		metrics: newNodeMetrics(),
		locks:   newLockTable(),
		hub:     newHub(),
		kicker:  newKicker(),
		// Bursts of one second's worth.
		endpointLimit: newRateLimiter(cfg.EndpointRate, int(cfg.EndpointRate)),
		sourceLimit:   newRateLimiter(cfg.SourceRate, int(cfg.SourceRate)),
		quit:          make(chan struct{}),
		noteCalls:     make(chan struct{}, maxNoteCalls),
	}
	limit, err := raiseFileLimit()
	if err != nil {
		return nil, err
	}
	n.maxConns = connCap(cfg.MaxConns, limit)
	n.setup.init(cfg.SetupLimit, cfg.HelloTimeout)
	n.gc.init(cfg.GCPercent, cfg.GCPercentBusy, func(p int) { debug.SetGCPercent(p) })
	if cfg.MaxConns > n.maxConns {
		n.log.Warn("connection cap lowered to fit the open-files limit",
			"requested", cfg.MaxConns, "cap", n.maxConns, "nofile", limit)
	}
	n.runq = make(chan *client, n.maxConns+64)
	n.lane.init(cfg.WaitLane)

	if cfg.UAIDTTL > 0 && cfg.UAIDTTL < time.Second {
		return nil, fmt.Errorf("engine: -uaid-ttl %v: at least 1s, or 0 for never", cfg.UAIDTTL)
	}
	if cfg.UAIDTTL > 0 {
		n.expiry.started = time.Now().Unix()
		n.expiry.gained = make([]atomic.Int64, cluster.Partitions)
	}
	if cfg.ClusterAddr != "" && len(cfg.ClusterKey) < cluster.MinKeySize {
		return nil, fmt.Errorf("engine: a clustered node needs a cluster key of at least %d bytes", cluster.MinKeySize)
	}
	tokenKeys := cfg.TokenKeys
	if tokenKeys == "" && cfg.ClusterAddr != "" {
		tokenKeys = clusterTokenKey(cfg.ClusterKey)
	}
	if n.keys, err = token.LoadOrCreate(cfg.DataDir, tokenKeys); err != nil {
		return nil, fmt.Errorf("engine: token keys: %w", err)
	}
	n.store, err = shardstore.Open(shardstore.Options{
		Dir:                cfg.DataDir + "/shard",
		Logger:             n.log.With("component", "shardstore"),
		MaxChannels:        cfg.MaxChannels,
		MemTableSize:       cfg.MemTableSize,
		RecordCacheEntries: cfg.RecordCacheEntries,
		FS:                 cfg.StoreFS,
		MaxOpenFiles:       storeFiles(limit),
		OnCommit: func(d time.Duration, _ bool) {
			n.metrics.commitLatency.ObserveDuration(d)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("engine: open store: %w", err)
	}
	n.registerGauges()

	lc := net.ListenConfig{KeepAlive: -1} // liveness is WebSocket pings
	if n.wsLn, err = lc.Listen(context.Background(), "tcp", cfg.WSAddr); err != nil {
		_ = n.store.Close()
		return nil, fmt.Errorf("engine: client listener: %w", err)
	}
	if n.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		_ = n.wsLn.Close()
		_ = n.store.Close()
		return nil, fmt.Errorf("engine: http listener: %w", err)
	}
	n.self = cfg.NodeName
	if n.self == "" {
		n.self = defaultNodeName(n.wsLn.Addr())
	}
	n.view.Store(&view{ring: cluster.NewRing([]string{n.self}, 1), addrs: map[string]string{}})
	n.http = &fasthttp.Server{
		Handler:            n.serveHTTP,
		ErrorHandler:       httpRequestError,
		Name:               "pushd",
		Concurrency:        maxHTTPConns(limit),
		MaxRequestBodySize: 64 << 10,
		ReadTimeout:        30 * time.Second,
		WriteTimeout:       30 * time.Second,
		IdleTimeout:        2 * time.Minute,
		// fasthttp's pool cleaner outlives Shutdown by up to this long.
		MaxIdleWorkerDuration: 2 * time.Second,
		NoDefaultContentType:  true,
		Logger:                fasthttpLogger{n.log},
	}
	return n, nil
}

func (n *Node) registerGauges() {
	r := n.metrics.reg
	r.GaugeFunc("pushd_connection_cap", "Client connections this node accepts before refusing.", func() float64 { return float64(n.maxConns) })
	r.GaugeFunc("pushd_connections_in_setup", "Client connections whose first hello arrived and is not yet answered.", func() float64 { return float64(n.setup.inflight.Load()) })
	r.GaugeFunc("pushd_wait_lane_busy", "Waiting-lane goroutines carrying out a connection's messages now.", func() float64 { return float64(n.lane.busy.Load()) })
	r.GaugeFunc("pushd_gc_percent", "The Go GC target the node set (-gc-percent, or -gc-percent-busy while delivering).", func() float64 { return float64(n.gc.current.Load()) })
	r.GaugeFunc("pushd_setup_limit", "Connections in set-up at which the node stops accepting until some finish (0: no bound).", func() float64 { return float64(max(n.setup.limit.Load(), 0)) })
	r.GaugeFunc("pushd_uaids_connected", "UAIDs with a connection on this node.", func() float64 { return float64(n.hub.n.Load()) })
	r.GaugeFunc("pushd_uaids_in_flight", "UAIDs with an unacknowledged UPDATE.", func() float64 { return float64(n.locks.inflight.Load()) })
	r.GaugeFunc("pushd_cluster_members", "Members in the ring in force.", func() float64 { return float64(n.view.Load().ring.Len()) })
	r.GaugeFunc("pushd_cluster_ring_share", "Fraction of the ring this node owns.", func() float64 { return n.view.Load().ring.Share(n.self) })
	r.CounterFunc("pushd_store_commits_total", "Store commits.", func() float64 { return float64(n.store.Stats().Commits) })
	r.CounterFunc("pushd_store_record_cache_hits_total", "Store record reads answered by the record cache.", func() float64 { return float64(n.store.Stats().CacheHits) })
	r.CounterFunc("pushd_store_record_cache_misses_total", "Store record reads of cached kinds that went to Pebble.", func() float64 { return float64(n.store.Stats().CacheMisses) })
	r.CounterFunc("pushd_store_synced_commits_total", "Store commits synced to disk.", func() float64 { return float64(n.store.Stats().SyncedCommits) })
}

// WSAddr is the bound address of the client listener.
func (n *Node) WSAddr() net.Addr { return n.wsLn.Addr() }

// HTTPAddr is the bound address of the HTTP listener.
func (n *Node) HTTPAddr() net.Addr { return n.httpLn.Addr() }

// MaxConns is the client connection cap in force.
func (n *Node) MaxConns() int { return n.maxConns }

// Start starts the event loops, workers and listeners.
func (n *Node) Start() error {
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithLogger(gnetLogger{n.log.With("component", "gnet")}),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
	}
	if n.cfg.EventLoops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(n.cfg.EventLoops))
	}
	if n.cfg.SocketSendBuffer > 0 {
		opts = append(opts, gnet.WithSocketSendBuffer(n.cfg.SocketSendBuffer))
	}
	if err := n.startCluster(); err != nil {
		return err
	}
	var err error
	if n.gcli, err = gnet.NewClient(&loopHandler{n: n}, opts...); err != nil {
		return fmt.Errorf("engine: event loops: %w", err)
	}
	if err = n.gcli.Start(); err != nil {
		return fmt.Errorf("engine: start event loops: %w", err)
	}
	for i := 0; i < n.cfg.Workers; i++ {
		n.wg.Add(1)
		go n.worker()
	}
	// Enrolling waits for the event loop to open the connection, so a few
	// accept loops keep the listener busy while others wait.
	for i := 0; i < acceptLoops; i++ {
		n.bg.Add(1)
		go n.acceptLoop()
	}
	for i := 0; i < kickWorkers; i++ {
		n.bg.Add(1)
		go n.kickWorker()
	}
	if n.cfg.UAIDTTL > 0 {
		n.bg.Add(1)
		go n.expireLoop()
	}
	n.bg.Add(2)
	go n.sweep()
	go func() {
		defer n.bg.Done()
		if err := n.http.Serve(n.httpLn); err != nil && !n.shutdown.Load() {
			n.log.Error("http listener stopped", "err", err)
		}
	}()
	n.ready.Store(true)
	gossip := "" // standalone
	if n.ml != nil {
		gossip = n.ml.Addr() // the bound address, also when -cluster-addr's port is 0
	}
	n.log.Info("pushd node serving", "ws", n.WSAddr().String(), "http", n.HTTPAddr().String(),
		"max_conns", n.maxConns, "data_dir", n.cfg.DataDir, "node", n.self, "members", n.view.Load().ring.Len(), "gossip", gossip)
	return nil
}

// acceptLoops is the number of goroutines accepting client sockets.
const acceptLoops = 4

// acceptLoop accepts client sockets and enrolls them into the event loops.
// It refuses sockets beyond the connection cap at once, pauses while as
// many connections are in set-up as the set-up gate allows, and waits out
// accept failures such as EMFILE instead of stopping.
func (n *Node) acceptLoop() {
	defer n.bg.Done()
	var backoff time.Duration
	for {
		// Wait before accepting, so that waiting connections stay in the
		// listen queue; a loop that was already waiting in Accept when
		// set-up filled holds the socket it got, unenrolled, below.
		if !n.awaitSetupRoom() {
			return
		}
		nc, err := n.wsLn.Accept()
		if err != nil {
			if n.shutdown.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			n.metrics.acceptErrors.Inc()
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			n.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			select {
			case <-time.After(backoff):
			case <-n.quit:
				return
			}
			continue
		}
		backoff = 0
		n.metrics.accepted.Inc()
		if n.nconns.Add(1) > int64(n.maxConns) {
			n.nconns.Add(-1)
			n.metrics.refused.Inc()
			_ = nc.Close()
			continue
		}
		if !n.awaitSetupRoom() || n.shutdown.Load() {
			// Shutting down: its 1001 pass may be over already.
			n.nconns.Add(-1)
			_ = nc.Close()
			return
		}
		c := &client{relayOK: n.relayAllowed(nc.RemoteAddr())}
		n.compactAddrs(nc)
		if _, err := n.gcli.EnrollContext(nc, c); err != nil || c.gc == nil {
			// EnrollContext closed nc; OnOpen did not run. (gnet returns
			// no error when the event loop fails to register the socket,
			// e.g. epoll_ctl ENOSPC, but then OnOpen, which sets gc, did
			// not run either; EnrollContext returns after that attempt.)
			n.nconns.Add(-1)
			n.metrics.acceptErrors.Inc()
			n.log.Debug("enroll failed", "err", err)
		}
	}
}

// setupPoll is how often a paused accept loop looks for room in set-up.
const setupPoll = 5 * time.Millisecond

// awaitSetupRoom returns true once the set-up gate has room, false if the
// node is shutting down first.
func (n *Node) awaitSetupRoom() bool {
	if n.setup.room() {
		return true
	}
	n.metrics.setupPauses.Inc()
	t := time.NewTicker(setupPoll)
	defer t.Stop()
	for !n.setup.room() {
		select {
		case <-t.C:
		case <-n.quit:
			return false
		}
	}
	return true
}

// relayAllowed reports whether a peer at addr may send multi-UAID hellos
// (Config.RelayNetworks).
func (n *Node) relayAllowed(addr net.Addr) bool {
	if len(n.cfg.RelayNetworks) == 0 {
		return true
	}
	ta, ok := addr.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for _, p := range n.cfg.RelayNetworks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// compactAddrs makes the addresses gnet keeps for the connection's
// lifetime small: Go's net package builds them with IP slices that point
// into the accept and getsockname results, which would then stay alive
// with them (64 bytes per connection). The local IP is the listener's,
// shared by all; the remote IP gets its own 4- or 16-byte copy.
func (n *Node) compactAddrs(nc net.Conn) {
	if la, ok := nc.LocalAddr().(*net.TCPAddr); ok {
		la.IP = n.internIP(la.IP)
	}
	if ra, ok := nc.RemoteAddr().(*net.TCPAddr); ok {
		if ip4 := ra.IP.To4(); ip4 != nil {
			ra.IP = append(net.IP(nil), ip4...)
		} else {
			ra.IP = append(net.IP(nil), ra.IP...)
		}
	}
}

// internIP returns the shared copy of a local address the listener
// accepts on (one, or a few for a wildcard listener).
func (n *Node) internIP(ip net.IP) net.IP {
	n.ipMu.Lock()
	defer n.ipMu.Unlock()
	for _, l := range n.localIPs {
		if l.Equal(ip) {
			return l
		}
	}
	l := append(net.IP(nil), ip...)
	if len(n.localIPs) < 64 {
		n.localIPs = append(n.localIPs, l)
	}
	return l
}

// sweep enforces per-connection deadlines once a second: handshake and
// hello timeouts, WebSocket pings, dead peers; and ends flights whose ack
// timeout passed.
func (n *Node) sweep() {
	defer n.bg.Done()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-n.quit:
			return
		case now := <-t.C:
			n.sweepOnce(now)
		}
	}
}

func (n *Node) sweepOnce(now time.Time) {
	ms := now.UnixMilli()
	var ping []byte
	n.conns.each(func(c *client) bool {
		_, deadline := c.liveState()
		return ms >= deadline && !c.closing.Load()
	}, func(c *client) {
		v := c.live.Load()
		phase, deadline := unpackLive(v)
		if ms < deadline {
			return // moved on since it was picked (a hello arrived or was answered)
		}
		switch phase {
		case phaseHandshake:
			c.closing.Store(true)
			_ = c.gc.Close()
		case phaseHello:
			if !c.refuseHello(v) {
				return // its hello arrived meanwhile
			}
			c.closeWith(n, ws.StatusPolicyViolation, "hello timeout")
		case phaseHelloQueued:
			// The node did not answer in time: the client should come
			// back later, and its queued hello is skipped.
			if !c.refuseHello(v) {
				return // a worker took the hello meanwhile
			}
			n.metrics.helloTimeouts.Inc()
			c.closeWith(n, closeTryAgainLater, "hello not answered in time")
		case phaseIdle:
			if ping == nil {
				ping = pingFrame()
			}
			c.setLive(phasePong, now.Add(n.cfg.PongTimeout))
			c.send(n, ping)
		case phasePong:
			c.closeWith(n, ws.StatusGoingAway, "ping timeout")
		}
	})
	n.locks.expire(now)
	n.setup.retune(now)
	n.gc.tick(n.metrics.notifications.Load())
}

// Shutdown stops the node: stop accepting, close clients with 1001, stop
// the event loops and workers, stop the HTTP listener, close the store.
// It is idempotent; ctx bounds the wait for clients to go.
func (n *Node) Shutdown(ctx context.Context) error {
	if !n.shutdown.CompareAndSwap(false, true) {
		return nil
	}
	n.ready.Store(false)
	close(n.quit)
	_ = n.wsLn.Close()
	n.conns.each(func(*client) bool { return true }, func(c *client) {
		c.closeWith(n, ws.StatusGoingAway, "server shutting down")
	})
	for n.nconns.Load() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	var errs []error
	if n.gcli != nil {
		errs = append(errs, n.gcli.Stop())
	}
	errs = append(errs, n.http.ShutdownWithContext(ctx))
	// Serve may not have registered the listener yet when Shutdown comes
	// right after Start, and then ShutdownWithContext does not close it.
	_ = n.httpLn.Close()
	n.leave()
	errs = append(errs, n.stopCluster())
	n.bg.Wait()
	close(n.runq)
	n.wg.Wait()
	// Acks queued behind the last operations, for as long as ctx allows
	// (a queued call still in the store when it ends holds store.Close).
	n.locks.wait(ctx)
	n.gc.stop()
	errs = append(errs, n.store.Close())
	n.log.Info("pushd node stopped")
	return errors.Join(errs...)
}
