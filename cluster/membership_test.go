package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testKey is the cluster secret of the test clusters.
var testKey = []byte("pushd membership test secret 32b")

// testNode is a started Membership with a record of its OnChange calls.
type testNode struct {
	*Membership
	t *testing.T

	mu      sync.Mutex
	reports [][]Member // every OnChange argument, in order

	inCallback atomic.Int32 // OnChange calls running now
	overlapped atomic.Bool  // OnChange ran concurrently with itself
	stopped    atomic.Bool  // Shutdown has returned
	lateCall   atomic.Bool  // OnChange ran after Shutdown returned
}

func (n *testNode) onChange(ms []Member) {
	if n.inCallback.Add(1) > 1 {
		n.overlapped.Store(true)
	}
	defer n.inCallback.Add(-1)
	if n.stopped.Load() {
		n.lateCall.Store(true)
	}
	// A slow callback widens the window in which a second, concurrent
	// call would be caught.
	time.Sleep(5 * time.Millisecond)
	n.mu.Lock()
	n.reports = append(n.reports, ms)
	n.mu.Unlock()
}

// lastReport returns the latest OnChange list and how many calls there were.
func (n *testNode) lastReport() ([]Member, int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.reports) == 0 {
		return nil, 0
	}
	return n.reports[len(n.reports)-1], len(n.reports)
}

// stop shuts the node down (without leaving) and checks the OnChange
// contract.
func (n *testNode) stop() {
	if err := n.Shutdown(); err != nil {
		n.t.Errorf("%s: Shutdown: %v", n.LocalName(), err)
	}
	n.stopped.Store(true)
}

func (n *testNode) check() {
	if n.overlapped.Load() {
		n.t.Errorf("%s: OnChange called concurrently", n.LocalName())
	}
	if n.lateCall.Load() {
		n.t.Errorf("%s: OnChange called after Shutdown returned", n.LocalName())
	}
}

// testMeta is the Meta node i publishes.
func testMeta(i int) Meta {
	return Meta{
		RPCAddr:  fmt.Sprintf("127.0.0.1:%d", 17000+i),
		WSAddr:   fmt.Sprintf("127.0.0.1:%d", 18000+i),
		HTTPAddr: fmt.Sprintf("127.0.0.1:%d", 19000+i),
	}
}

func testName(i int) string { return fmt.Sprintf("node-%02d", i) }

func testConfig(t *testing.T, i int, join ...string) Config {
	return Config{
		Name:     testName(i),
		BindAddr: "127.0.0.1:0",
		Join:     join,
		Key:      testKey,
		Meta:     testMeta(i),
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// startNode starts node i with cfg (OnChange is replaced by the recorder)
// and shuts it down when the test ends.
func startNode(t *testing.T, cfg Config) *testNode {
	t.Helper()
	n := &testNode{t: t}
	cfg.OnChange = n.onChange
	m, err := Start(cfg)
	if err != nil {
		t.Fatalf("Start %s: %v", cfg.Name, err)
	}
	n.Membership = m
	t.Cleanup(func() {
		n.stop()
		n.check()
	})
	return n
}

// startCluster starts count nodes, each joining the first.
func startCluster(t *testing.T, count int) []*testNode {
	t.Helper()
	nodes := []*testNode{startNode(t, testConfig(t, 0))}
	for i := 1; i < count; i++ {
		nodes = append(nodes, startNode(t, testConfig(t, i, nodes[0].Addr())))
	}
	return nodes
}

// waitFor polls cond until it holds and returns how long that took, or
// fails the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

func memberNames(ms []Member) []string {
	names := make([]string, len(ms))
	for i, m := range ms {
		names[i] = m.Name
	}
	return names
}

// sees reports whether n lists exactly the nodes named, in order.
func sees(n *testNode, names ...string) bool {
	return slices.Equal(memberNames(n.Members()), names)
}

func seesNames(nodes []*testNode, names ...string) func() bool {
	return func() bool {
		for _, n := range nodes {
			if !sees(n, names...) {
				return false
			}
		}
		return true
	}
}

func namesOf(nodes []*testNode) []string {
	var names []string
	for _, n := range nodes {
		names = append(names, n.LocalName())
	}
	return names
}

func TestMembershipThreeNodesJoin(t *testing.T) {
	nodes := startCluster(t, 3)
	all := namesOf(nodes)
	took := waitFor(t, 10*time.Second, "all three see three members", seesNames(nodes, all...))
	t.Logf("3 nodes converged %v after the last join", took)

	for _, n := range nodes {
		for i, m := range n.Members() {
			if m.Meta != testMeta(i) {
				t.Errorf("%s lists %s with Meta %+v, want %+v", n.LocalName(), m.Name, m.Meta, testMeta(i))
			}
			if m.Addr != nodes[i].Addr() {
				t.Errorf("%s lists %s at %s, its Addr is %s", n.LocalName(), m.Name, m.Addr, nodes[i].Addr())
			}
		}
	}
	// Every node's OnChange catches up with the full list.
	waitFor(t, 5*time.Second, "OnChange reports all three", func() bool {
		for _, n := range nodes {
			if last, _ := n.lastReport(); !slices.Equal(memberNames(last), all) {
				return false
			}
		}
		return true
	})
}

func TestMembershipTenNodesConverge(t *testing.T) {
	start := time.Now()
	nodes := startCluster(t, 10)
	joined := time.Since(start)
	took := waitFor(t, 10*time.Second, "all ten see ten members", seesNames(nodes, namesOf(nodes)...))
	t.Logf("10 nodes: joins took %v, converged %v after the last join", joined, took)
}

func TestMembershipInitialReport(t *testing.T) {
	n := startNode(t, testConfig(t, 0))
	waitFor(t, 5*time.Second, "the initial OnChange", func() bool {
		_, calls := n.lastReport()
		return calls == 1
	})
	last, _ := n.lastReport()
	if len(last) != 1 || last[0].Name != n.LocalName() || last[0].Meta != testMeta(0) || last[0].Addr != n.Addr() {
		t.Errorf("initial report %+v, want only this node", last)
	}
}

func TestMembershipWrongKeyRefused(t *testing.T) {
	nodes := startCluster(t, 2)
	waitFor(t, 10*time.Second, "two members", seesNames(nodes, namesOf(nodes)...))

	// A node with another key cannot join through a member.
	bad := testConfig(t, 9, nodes[0].Addr())
	bad.Key = []byte("another cluster's secret, 32 by.")
	if m, err := Start(bad); !errors.Is(err, ErrJoinFailed) {
		if m != nil {
			m.Shutdown()
		}
		t.Fatalf("Start with a wrong key: %v, want ErrJoinFailed", err)
	} else {
		t.Logf("Start with a wrong key: %v", err)
	}

	// Nor do members that contact it take it in: a node with the right key
	// joining through both ends up with the good member only.
	bad.Join = nil
	outsider := startNode(t, bad)
	third := startNode(t, testConfig(t, 2, outsider.Addr(), nodes[0].Addr()))
	good := append(nodes, third)
	waitFor(t, 10*time.Second, "three good members", seesNames(good, namesOf(good)...))
	// Several probe rounds later, still nobody lists it, nor it them.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range good {
			if slices.Contains(memberNames(n.Members()), outsider.LocalName()) {
				t.Fatalf("%s lists the node with the wrong key", n.LocalName())
			}
		}
		if !sees(outsider, outsider.LocalName()) {
			t.Fatalf("the node with the wrong key lists %v", memberNames(outsider.Members()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestMembershipConfigErrors(t *testing.T) {
	base := testConfig(t, 0)
	for name, mod := range map[string]func(*Config){
		"no name":      func(c *Config) { c.Name = "" },
		"short key":    func(c *Config) { c.Key = []byte("fifteen bytes!!") },
		"no key":       func(c *Config) { c.Key = nil },
		"bad bind":     func(c *Config) { c.BindAddr = "127.0.0.1" },
		"bad port":     func(c *Config) { c.BindAddr = "127.0.0.1:99999" },
		"meta too big": func(c *Config) { c.Meta.HTTPAddr = "h:" + strings.Repeat("1", MaxMetaSize) },
		"meta no port": func(c *Config) { c.Meta.RPCAddr = "127.0.0.1" },
	} {
		cfg := base
		mod(&cfg)
		if m, err := Start(cfg); !errors.Is(err, ErrInvalidConfig) {
			if m != nil {
				m.Shutdown()
			}
			t.Errorf("%s: Start = %v, want ErrInvalidConfig", name, err)
		}
	}
	// Nobody answers at the join address.
	dead := startNode(t, testConfig(t, 1))
	addr := dead.Addr()
	dead.stop()
	if m, err := Start(testConfig(t, 2, addr)); !errors.Is(err, ErrJoinFailed) {
		if m != nil {
			m.Shutdown()
		}
		t.Errorf("join to a stopped node: %v, want ErrJoinFailed", err)
	}
}

func TestMembershipGracefulLeave(t *testing.T) {
	nodes := startCluster(t, 3)
	all := namesOf(nodes)
	waitFor(t, 10*time.Second, "three members", seesNames(nodes, all...))
	waitFor(t, 5*time.Second, "OnChange reports three", func() bool {
		last, _ := nodes[0].lastReport()
		return len(last) == 3
	})

	leaver := nodes[2]
	start := time.Now()
	if err := leaver.Leave(2 * time.Second); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	leaver.stop()
	if err := leaver.Leave(time.Second); !errors.Is(err, ErrClosed) {
		t.Errorf("Leave after Shutdown: %v, want ErrClosed", err)
	}
	rest := nodes[:2]
	waitFor(t, 10*time.Second, "the others drop the leaver", seesNames(rest, all[:2]...))
	dropped := time.Since(start)
	waitFor(t, 5*time.Second, "OnChange reports two", func() bool {
		for _, n := range rest {
			if last, _ := n.lastReport(); !slices.Equal(memberNames(last), all[:2]) {
				return false
			}
		}
		return true
	})
	t.Logf("after Leave: dropped in %v, OnChange reported in %v", dropped, time.Since(start))
}

func TestMembershipCrashDetected(t *testing.T) {
	nodes := startCluster(t, 3)
	all := namesOf(nodes)
	waitFor(t, 10*time.Second, "three members", seesNames(nodes, all...))

	start := time.Now()
	nodes[2].stop() // no Leave: the others must notice the silence
	took := waitFor(t, 10*time.Second, "the others drop the crashed node", seesNames(nodes[:2], all[:2]...))
	t.Logf("crashed node dropped after %v", took)
	waitFor(t, 5*time.Second, "OnChange reports two", func() bool {
		last, _ := nodes[0].lastReport()
		return slices.Equal(memberNames(last), all[:2])
	})
	t.Logf("OnChange reported it after %v", time.Since(start))
}

func TestMembershipRestartSameName(t *testing.T) {
	nodes := startCluster(t, 3)
	all := namesOf(nodes)
	waitFor(t, 10*time.Second, "three members", seesNames(nodes, all...))
	oldAddr := nodes[2].Addr()
	nodes[2].stop()
	waitFor(t, 10*time.Second, "the others drop the crashed node", seesNames(nodes[:2], all[:2]...))

	// Back under its old name, on a new port.
	start := time.Now()
	restarted := startNode(t, testConfig(t, 2, nodes[0].Addr()))
	if restarted.Addr() == oldAddr {
		t.Logf("restarted on the same address %s", oldAddr)
	}
	now := []*testNode{nodes[0], nodes[1], restarted}
	took := waitFor(t, 10*time.Second, "the restarted node is back", func() bool {
		if !seesNames(now, all...)() {
			return false
		}
		for _, n := range now {
			if n.Members()[2].Addr != restarted.Addr() {
				return false
			}
		}
		return true
	})
	t.Logf("restarted node (%s -> %s) listed everywhere %v after its Start began (%v after it returned)",
		oldAddr, restarted.Addr(), time.Since(start), took)
}

func TestMembershipOnChangeDebouncesBurst(t *testing.T) {
	const joiners = 8
	first := startNode(t, testConfig(t, 0))
	waitFor(t, 5*time.Second, "the initial OnChange", func() bool {
		_, calls := first.lastReport()
		return calls == 1
	})

	// A burst of joins, all at once.
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		nodes = []*testNode{first}
		errs  []error
	)
	start := time.Now()
	for i := 1; i <= joiners; i++ {
		wg.Go(func() {
			cfg := testConfig(t, i, first.Addr())
			n := &testNode{t: t}
			cfg.OnChange = n.onChange
			m, err := Start(cfg)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			n.Membership = m
			nodes = append(nodes, n)
		})
	}
	wg.Wait()
	t.Cleanup(func() {
		for _, n := range nodes[1:] {
			n.stop()
			n.check()
		}
	})
	if len(errs) > 0 {
		t.Fatalf("Start: %v", errs)
	}
	waitFor(t, 10*time.Second, "the first node reports all nine", func() bool {
		last, _ := first.lastReport()
		return len(last) == joiners+1
	})
	_, calls := first.lastReport()
	t.Logf("%d joins in %v reported in %d OnChange calls after the initial one (%v after the burst began)",
		joiners, time.Since(start), calls-1, time.Since(start))
	if calls-1 > 3 {
		t.Errorf("%d calls for a burst of %d joins, want at most 3", calls-1, joiners)
	}
}

// TestMembershipDebounceCap drives the reporter alone, without gossip: a
// list that changes every 50 ms never stays quiet for Debounce, yet is
// reported about once a second, and a last report follows the last change.
func TestMembershipDebounceCap(t *testing.T) {
	var (
		mu    sync.Mutex
		times []time.Duration
	)
	start := time.Now()
	m := &Membership{
		cfg: Config{Debounce: 200 * time.Millisecond, OnChange: func(ms []Member) {
			mu.Lock()
			times = append(times, time.Since(start).Round(10*time.Millisecond))
			mu.Unlock()
		}},
		logger: slog.New(slog.DiscardHandler),
		poke:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	m.events = newEventDelegate(m.poke)
	meta, err := encodeMeta(testMeta(0))
	if err != nil {
		t.Fatal(err)
	}
	m.wg.Add(1)
	go m.run()
	defer func() {
		close(m.stop)
		m.wg.Wait()
	}()

	const churn = 2500 * time.Millisecond
	for i := 0; time.Since(start) < churn; i++ {
		m.events.NotifyJoin(&memberlist.Node{Name: testName(i), Addr: net.IPv4(127, 0, 0, 1), Port: 7946, Meta: meta})
		time.Sleep(50 * time.Millisecond)
	}
	last := time.Since(start)
	waitFor(t, 5*time.Second, "a report after the churn stops", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return times[len(times)-1] > last
	})
	mu.Lock()
	defer mu.Unlock()
	t.Logf("changes every 50 ms for %v, Debounce 200 ms: reports at %v", churn, times)
	// The initial report, one per second of churn, and the final one.
	if len(times) < 4 || len(times) > 6 {
		t.Errorf("%d reports, want 4-6", len(times))
	}
	for i := 2; i < len(times)-1; i++ {
		if gap := times[i] - times[i-1]; gap > 1500*time.Millisecond {
			t.Errorf("reports %d and %d %v apart during churn, want about 1 s", i-1, i, gap)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestMembershipIgnoresPeerWithBadMeta(t *testing.T) {
	var logs syncBuffer
	cfg := testConfig(t, 0)
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	n := startNode(t, cfg)

	// A peer that speaks the gossip with the right key but publishes
	// metadata that is not a Meta.
	mc := memberlist.DefaultLANConfig()
	mc.Name = "node-bad"
	mc.BindAddr = "127.0.0.1"
	mc.BindPort = 0
	mc.SecretKey = deriveGossipKey(testKey)
	mc.Delegate = &delegate{meta: []byte{1, 0xff, 0xff, 0xff}}
	mc.Logger = log.New(io.Discard, "", 0)
	peer, err := memberlist.Create(mc)
	if err != nil {
		t.Fatalf("memberlist.Create: %v", err)
	}
	defer peer.Shutdown()
	if _, err := peer.Join([]string{n.Addr()}); err != nil {
		t.Fatalf("peer Join: %v", err)
	}

	waitFor(t, 5*time.Second, "gossip knows the peer", func() bool { return n.list.NumMembers() == 2 })
	for range 3 {
		if !sees(n, n.LocalName()) {
			t.Fatalf("Members = %v, want only the local node", memberNames(n.Members()))
		}
	}
	waitFor(t, 5*time.Second, "the bad metadata is logged", func() bool {
		return strings.Contains(logs.String(), "bad metadata")
	})
	// Give the reporter a debounce period to have looked at the peer too.
	time.Sleep(2 * DefaultDebounce)
	if c := strings.Count(logs.String(), "bad metadata"); c != 1 {
		t.Errorf("bad metadata logged %d times, want once:\n%s", c, logs.String())
	}
	n.mu.Lock()
	for _, r := range n.reports {
		if slices.Contains(memberNames(r), "node-bad") {
			t.Errorf("OnChange reported the peer with bad metadata: %v", memberNames(r))
		}
	}
	n.mu.Unlock()
}

// TestMembershipNoGoroutinesLeft checks that shutting every node down stops
// every goroutine they started: the reporters and memberlist's own.
func TestMembershipNoGoroutinesLeft(t *testing.T) {
	before := runtime.NumGoroutine()
	nodes := make([]*Membership, 0, 4)
	for i := range 4 {
		cfg := testConfig(t, i)
		if i > 0 {
			cfg.Join = []string{nodes[0].Addr()}
		}
		cfg.OnChange = func([]Member) {}
		m, err := Start(cfg)
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		nodes = append(nodes, m)
	}
	waitFor(t, 10*time.Second, "four members", func() bool {
		for _, m := range nodes {
			if len(m.Members()) != 4 {
				return false
			}
		}
		return true
	})
	during := runtime.NumGoroutine()
	if err := nodes[3].Leave(time.Second); err != nil {
		t.Errorf("Leave: %v", err)
	}
	for _, m := range nodes {
		if err := m.Shutdown(); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := m.Shutdown(); err != nil {
			t.Errorf("second Shutdown: %v", err)
		}
	}
	// A probe in progress at Shutdown runs to its timeout: wait for the
	// goroutines to end, not only for their number to drop.
	stillRunning := func() (fn string, stacks string) {
		var b bytes.Buffer
		pprof.Lookup("goroutine").WriteTo(&b, 1)
		for _, fn := range []string{"cluster.(*Membership).run", "memberlist."} {
			if strings.Contains(b.String(), fn) {
				return fn, b.String()
			}
		}
		return "", ""
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before || func() bool { fn, _ := stillRunning(); return fn != "" }() {
		if time.Now().After(deadline) {
			fn, stacks := stillRunning()
			t.Fatalf("goroutines: %d before, %d with 4 nodes, %d 10 s after Shutdown; one in %q:\n%s",
				before, during, runtime.NumGoroutine(), fn, stacks)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
