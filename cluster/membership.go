package cluster

import (
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// Member is a live member of the cluster as Membership reports it.
type Member struct {
	Name string // unique node name (Config.Name on that node)
	Addr string // host:port its gossip listens on
	Meta Meta
}

// Config configures Membership. Start copies it; the caller's value is not
// changed.
type Config struct {
	// Name is this node's name, unique in the cluster. Required. A node
	// restarted under the same name rejoins as the same member; at a new
	// address, only once the old one has left or been declared dead.
	Name string

	// BindAddr is the host:port gossip listens on, over both TCP and UDP.
	// Port 0 picks a free port (see Membership.Addr). A host of "" or
	// 0.0.0.0 listens on every address and advertises a private one.
	// Required.
	BindAddr string

	// Join lists host:port addresses of members to contact at Start. Empty
	// means this node starts a cluster of its own. Otherwise Start fails
	// unless at least one of them answers.
	Join []string

	// Key is the cluster secret, at least MinKeySize bytes, the same on
	// every node. Gossip is encrypted (AES-256-GCM) with a key derived from
	// it, and gossip that is not encrypted with that key is refused.
	// Required.
	Key []byte

	// Meta is what this node publishes about itself. Its encoding must fit
	// in MaxMetaSize bytes.
	Meta Meta

	// Debounce is how long the member list must stay quiet before OnChange
	// reports it. A list that keeps changing is still reported at most
	// max(1s, Debounce) after its first unreported change. Zero means
	// DefaultDebounce.
	Debounce time.Duration

	// OnChange, if not nil, receives the full live member list (this node
	// included unless it has left, sorted by Name) once right after Start
	// and then after every change, debounced. Calls come from one
	// goroutine, never concurrently, and only when the list differs from
	// the last one reported. The slice is the callee's to keep. OnChange
	// blocks further reports while it runs, but never gossip; it must not
	// call Shutdown (which waits for it).
	OnChange func(members []Member)

	// Logger receives this package's warnings and memberlist's own log
	// lines, all of the latter at debug level. Nil means discard.
	Logger *slog.Logger
}

// DefaultDebounce is the Debounce used when Config.Debounce is zero.
const DefaultDebounce = 200 * time.Millisecond

// maxReportDelay is the longest a change waits for OnChange when Debounce is
// shorter: a cluster that keeps flapping still gets reports.
const maxReportDelay = time.Second

// MinKeySize is the shortest Config.Key accepted.
const MinKeySize = 16

// Failure-detection timings. memberlist's LAN defaults (probe every 1 s,
// 500 ms probe timeout, SuspicionMult 4) take 5-10 s to declare a killed
// node dead; pushd nodes share a LAN and a dead owner's UAIDs cannot be
// served until the ring moves them, so probes are twice as frequent with
// half the timeout. SuspicionMult 3 keeps one Lifeguard confirmation: a
// suspect is declared dead after 1.5 s (under 10 nodes; it grows with
// log10 of the cluster size) once a second member has confirmed the
// suspicion independently, and after at most 6x that when no one does, so
// a single slow prober cannot take a healthy node out of the ring.
// A killed node is dropped in about 3 s (2.3-2.8 s measured with 3 nodes).
const (
	probeInterval = 500 * time.Millisecond
	probeTimeout  = 250 * time.Millisecond
	suspicionMult = 3

	// deadNodeReclaim: a member declared dead may have its name taken at
	// once by a node at another address, as a member that left always
	// may (memberlist's default, 0, never allows it). A node restarted on
	// a new port then rejoins under its old name as soon as the old
	// incarnation is declared dead.
	deadNodeReclaim = time.Nanosecond
)

var (
	// ErrClosed is returned by Membership methods called after Shutdown,
	// and by Transport calls after Close.
	ErrClosed = errors.New("cluster: closed")

	// ErrJoinFailed is wrapped by Start's error when none of Config.Join
	// answered (or all refused this node, for example for a wrong key).
	ErrJoinFailed = errors.New("cluster: no join address answered")

	// ErrInvalidConfig is wrapped by Start's error for an unusable Config.
	ErrInvalidConfig = errors.New("cluster: invalid membership config")
)

// Membership is this node's view of the cluster's members, kept by gossip
// (hashicorp/memberlist with its LAN configuration). All methods are safe
// for concurrent use.
type Membership struct {
	cfg    Config // with defaults applied; not changed after Start
	list   *memberlist.Memberlist
	events *eventDelegate // the live member set
	addr   string         // advertised gossip host:port
	logger *slog.Logger

	// poke wakes the reporter goroutine; the delegates send on it without
	// blocking, so a pending token means "changed since the last look".
	poke chan struct{}
	stop chan struct{} // closed by Shutdown
	wg   sync.WaitGroup

	// mu orders Leave and Shutdown: memberlist panics on a leave after
	// shutdown. Leave holds it while the leave broadcast goes out.
	mu struct {
		sync.Mutex
		closed bool
	}
	shutdownOnce sync.Once
	shutdownErr  error

	badMeta badMetaLog

	// last is the list OnChange last received. Reporter goroutine only.
	last []Member
}

// Start joins the cluster (or starts one when cfg.Join is empty) and starts
// the goroutine that calls cfg.OnChange. It returns once the join is done:
// Members then already lists the members the join learned of.
func Start(cfg Config) (*Membership, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("%w: empty Name", ErrInvalidConfig)
	}
	if len(cfg.Key) < MinKeySize {
		return nil, fmt.Errorf("%w: Key is %d bytes, at least %d needed", ErrInvalidConfig, len(cfg.Key), MinKeySize)
	}
	host, port, err := splitBindAddr(cfg.BindAddr)
	if err != nil {
		return nil, err
	}
	meta, err := encodeMeta(cfg.Meta)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	cfg.Join = slices.Clone(cfg.Join)
	if cfg.Debounce <= 0 {
		cfg.Debounce = DefaultDebounce
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	m := &Membership{
		cfg:    cfg,
		logger: logger,
		poke:   make(chan struct{}, 1),
		stop:   make(chan struct{}),
	}
	m.events = newEventDelegate(m.poke)

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr = host
	mc.BindPort = port
	mc.SecretKey = deriveGossipKey(cfg.Key)
	mc.GossipVerifyIncoming = true
	mc.GossipVerifyOutgoing = true
	mc.ProbeInterval = probeInterval
	mc.ProbeTimeout = probeTimeout
	mc.SuspicionMult = suspicionMult
	mc.DeadNodeReclaimTime = deadNodeReclaim
	mc.Delegate = &delegate{meta: meta}
	mc.Events = m.events
	mc.Logger = log.New(&logWriter{logger: logger}, "", 0)

	list, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("cluster: start gossip on %s: %w", cfg.BindAddr, err)
	}
	m.list = list
	m.addr = list.LocalNode().Address()
	if len(cfg.Join) > 0 {
		if _, err := list.Join(cfg.Join); err != nil {
			_ = list.Shutdown()
			return nil, fmt.Errorf("%w (tried %s): %w", ErrJoinFailed, strings.Join(cfg.Join, ", "), err)
		}
	}
	m.wg.Add(1)
	go m.run()
	return m, nil
}

// splitBindAddr splits a Config.BindAddr for memberlist.
func splitBindAddr(addr string) (string, int, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%w: BindAddr %q: %w", ErrInvalidConfig, addr, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%w: BindAddr %q: port: %w", ErrInvalidConfig, addr, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return host, int(port), nil
}

// LocalName returns this node's name.
func (m *Membership) LocalName() string {
	return m.cfg.Name
}

// Addr returns the host:port this node's gossip is reached at: the bound
// port (the one picked when BindAddr had port 0) at the advertised address,
// which is BindAddr's host unless that was unspecified.
func (m *Membership) Addr() string {
	return m.addr
}

// Members returns the live members (alive or suspected, not dead or left),
// this node included unless it has left, sorted by Name. A member whose
// metadata does not decode is left out (and logged once). The slice is the
// caller's.
func (m *Membership) Members() []Member {
	live := m.events.snapshot()
	out := make([]Member, 0, len(live))
	for name, n := range live {
		meta, err := decodeMeta(n.meta)
		if err != nil {
			m.badMeta.warn(m.logger, name, n.meta, err)
			continue
		}
		out = append(out, Member{Name: name, Addr: n.addr, Meta: meta})
	}
	slices.SortFunc(out, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Leave tells the cluster this node is leaving and waits up to timeout for
// the news to go out. Other members drop it at once instead of suspecting
// it first. Gossip keeps running (and OnChange may report lists without
// this node) until Shutdown, which should follow. Shutdown called during
// Leave waits for it.
func (m *Membership) Leave(timeout time.Duration) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.mu.closed {
		return ErrClosed
	}
	if err := m.list.Leave(timeout); err != nil {
		return fmt.Errorf("cluster: leave: %w", err)
	}
	return nil
}

// Shutdown stops the OnChange goroutine, then gossip, without telling the
// cluster (call Leave first for that; without it, other members notice the
// silence as they would a crash). OnChange is not called once Shutdown has
// returned. It is idempotent: later calls wait for the first and return its
// result.
func (m *Membership) Shutdown() error {
	m.shutdownOnce.Do(func() {
		m.mu.Lock()
		m.mu.closed = true
		m.mu.Unlock()

		close(m.stop)
		m.wg.Wait()
		if err := m.list.Shutdown(); err != nil {
			m.shutdownErr = fmt.Errorf("cluster: shut down gossip: %w", err)
		}
	})
	return m.shutdownErr
}

// run is the reporter goroutine: it reports the initial list, then waits
// for pokes and reports once the list has been quiet for Debounce, or
// max(1s, Debounce) after the first unreported poke if it never is.
func (m *Membership) run() {
	defer m.wg.Done()
	m.report()

	maxDelay := max(maxReportDelay, m.cfg.Debounce)
	timer := time.NewTimer(0)
	timer.Stop()
	defer timer.Stop()
	pending := false       // a poke has not been reported yet
	var deadline time.Time // report by then even if pokes continue
	for {
		select {
		case <-m.stop:
			return
		case <-m.poke:
			now := time.Now()
			if !pending {
				pending = true
				deadline = now.Add(maxDelay)
			}
			timer.Reset(min(m.cfg.Debounce, deadline.Sub(now)))
		case <-timer.C:
			pending = false
			m.report()
		}
	}
}

// report calls OnChange with the current list if it differs from the last
// one reported. Reporter goroutine only.
func (m *Membership) report() {
	members := m.Members()
	if m.last != nil && slices.Equal(members, m.last) {
		return
	}
	m.last = members
	if m.cfg.OnChange == nil {
		return
	}
	select {
	case <-m.stop:
		return
	default:
	}
	m.cfg.OnChange(slices.Clone(members))
}
