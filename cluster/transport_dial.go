package cluster

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// peer is the set of connections this node keeps to one address.
type peer struct {
	addr  string
	next  atomic.Uint32 // round-robin position
	slots []*slot       // ConnsPerPeer of them
}

// slot holds one of a peer's persistent connections and redials it, one dial
// at a time, after it breaks.
type slot struct {
	// conn is the live connection, nil while there is none. It is stored
	// under mu and cleared by the conn's close (CompareAndSwap), and read
	// without a lock on every Call.
	conn atomic.Pointer[conn]

	mu sync.Mutex
	// dialing is closed when the dial in progress ends; nil when none.
	dialing chan struct{}
	// err is why the last dial failed; Calls get it until retryAt.
	err     error
	retryAt time.Time
	backoff time.Duration
}

// peer returns the peer for addr, creating it on first use.
func (t *Transport) peer(addr string) *peer {
	if p, ok := t.peers.Load(addr); ok {
		return p.(*peer)
	}
	p := &peer{addr: addr, slots: make([]*slot, t.cfg.ConnsPerPeer)}
	for i := range p.slots {
		p.slots[i] = new(slot)
	}
	actual, _ := t.peers.LoadOrStore(addr, p)
	return actual.(*peer)
}

// pick returns a live connection to p. It takes the next slot round-robin;
// if that one is down it starts (or joins) its dial, serves the call from
// any other live slot meanwhile, and otherwise waits for the dial or ctx.
func (p *peer) pick(ctx context.Context, t *Transport) (*conn, error) {
	n := uint32(len(p.slots))
	start := p.next.Add(1)
	first := p.slots[start%n]
	if c := first.conn.Load(); c != nil {
		return c, nil
	}
	wait, err := first.startDial(t, p.addr)
	for i := uint32(1); i < n; i++ {
		if c := p.slots[(start+i)%n].conn.Load(); c != nil {
			return c, nil
		}
	}
	if err != nil {
		return nil, err
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c := first.conn.Load(); c != nil {
		return c, nil
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	if first.err != nil {
		return nil, first.err
	}
	return nil, fmt.Errorf("%w: %s: connection closed after dial", ErrUnavailable, p.addr)
}

// startDial starts a dial of s unless one is in progress, and returns the
// channel closed when the dial ends. During the backoff after a failed dial
// it returns the dial's error instead.
func (s *slot) startDial(t *Transport, addr string) (<-chan struct{}, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conn.Load() != nil {
		return closedChan, nil
	}
	if s.dialing != nil {
		return s.dialing, nil
	}
	if time.Now().Before(s.retryAt) {
		return nil, s.err
	}
	done := make(chan struct{})
	if !t.goOwned(func() { t.redial(addr, s, done) }) {
		return nil, ErrClosed
	}
	s.dialing = done
	return done, nil
}

// closedChan is a channel that is always closed.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// redial dials addr for s, installs the connection and starts its reader
// and writer, or records the failure and the backoff; then closes done.
// It runs as an owned goroutine.
func (t *Transport) redial(addr string, s *slot, done chan struct{}) {
	c, err := t.dial(addr, s)
	s.mu.Lock()
	defer s.mu.Unlock()
	defer close(done)
	s.dialing = nil
	if err != nil {
		s.backoff = min(max(2*s.backoff, minRedialBackoff), maxRedialBackoff)
		s.retryAt = time.Now().Add(s.backoff)
		s.err = fmt.Errorf("%w: %s: %w", ErrUnavailable, addr, err)
		return
	}
	s.err, s.backoff, s.retryAt = nil, 0, time.Time{}
	s.conn.Store(c)
	if c.isClosed() {
		// Close got to it first; its close may have run before the
		// Store, so clear the slot here too.
		s.conn.CompareAndSwap(c, nil)
	}
	t.wg.Add(2) // owned: redial is counted
	go func() {
		defer t.wg.Done()
		c.readLoop()
	}()
	go c.writeLoop()
}
