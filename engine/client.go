package engine

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/google/uuid"
	"github.com/panjf2000/gnet/v2"

	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/internal/wsframe"
)

// client is one WebSocket connection. Its fields have three owners:
//
//   - the event loop: upgraded, rd (handshake and frame parsing);
//   - the goroutine draining the connection's mailbox (a worker, or a
//     waiting-lane goroutine: one at a time, see session.go): the
//     session fields uaid, uaids, helloDone, lastPing;
//   - anyone, through atomics or mu: live, closing, mailbox.
//
// gc is set before the client is shared and never changes.
//
// An idle connection costs this struct (128 bytes: keep it there), gnet's
// connection and a hub entry; fields are ordered to pack.
type client struct {
	gc gnet.Conn

	// Event loop only.
	rd wsframe.Reader

	// live packs the liveness deadline (unix milliseconds) and phase:
	// deadline<<3 | phase. The sweeper and the event loop update it.
	live atomic.Int64

	mu sync.Mutex
	// queue: guarded by mu; nil while empty, so an idle connection keeps no
	// buffer.
	queue []job

	// Session: owned by the goroutine draining the mailbox.
	uaid     uuid.UUID
	uaids    map[uuid.UUID]struct{} // multi-UAID connections only
	lastPing int64                  // unix milliseconds of the last client ping

	// prev, next link the client into its connList shard; guarded by
	// that shard's mu.
	prev, next *client

	closing atomic.Bool
	// upgraded: event loop only.
	upgraded bool
	// scheduled: guarded by mu.
	scheduled bool
	// helloDone, multi: session fields (see above). multi is also read by
	// owners delivering to the client; it is written once, before the
	// client is put in the hub.
	helloDone bool
	multi     bool
	// inSetup: the connection's hello is counted in the set-up gate. Set
	// by the event loop before it queues the hello, cleared by the
	// goroutine draining the mailbox (the mailbox orders the two).
	inSetup bool
	shard   uint8
	// retired: guarded by mu; set when the close job is queued, after
	// which nothing else is.
	retired bool
	// relayOK: the peer's address may send multi-UAID hellos
	// (Config.RelayNetworks). Set before the client is shared.
	relayOK bool
	// id names the connection to owners on other nodes (edgeTable); 0
	// until it is first needed. Written by the goroutine draining the
	// mailbox before the client is shared through the edge table.
	id uint32
}

// Close codes pushd sends besides gobwas/ws's RFC 6455 ones (PROTOCOL.md
// 2.7).
const (
	// closeTryAgainLater: the node cannot serve the client now.
	closeTryAgainLater ws.StatusCode = 1013
	// closeSuperseded: a newer connection said hello with the same UAID.
	closeSuperseded ws.StatusCode = 4001
	// closePingTooOften: client pings closer than the minimum interval.
	closePingTooOften ws.StatusCode = 4774
)

// Liveness phases.
const (
	phaseHandshake    = iota // waiting for the opening handshake
	phaseHello               // upgraded, waiting for hello
	phaseHelloQueued         // hello received, its answer due by the deadline
	phaseHelloTaken          // a worker is carrying the hello out (no deadline)
	phaseHelloRefused        // closed by the sweeper before its hello was taken (no deadline)
	phaseIdle                // deadline is when to send the next ping
	phasePong                // ping sent, deadline is when to give up
)

// noDeadline is the live deadline of phases the sweeper leaves alone.
const noDeadline = math.MaxInt64 >> 3

func (c *client) setLive(phase int, deadline time.Time) {
	c.live.Store(deadline.UnixMilli()<<3 | int64(phase))
}

// helloQueued moves an upgraded connection whose first hello arrived at now
// from phaseHello to phaseHelloQueued, due by now+timeout, and reports
// whether it did. Only the first hello does it: a worker may already have
// moved the connection on, and that is never undone.
func (c *client) helloQueued(now time.Time, timeout time.Duration) bool {
	v := c.live.Load()
	return int(v&7) == phaseHello && c.live.CompareAndSwap(v, now.Add(timeout).UnixMilli()<<3|phaseHelloQueued)
}

func (c *client) liveState() (phase int, deadline int64) {
	return unpackLive(c.live.Load())
}

func unpackLive(v int64) (phase int, deadline int64) {
	return int(v & 7), v >> 3
}

// takeHello is called by the worker about to carry out the connection's
// first hello. It moves the connection out of the sweeper's reach
// (phaseHelloTaken: the hello's own steps are bounded) and reports
// whether it did; false means the sweeper closed it first (1013, or 1008
// for a hello that came too late), and the hello is skipped. The two race
// on one compare-and-swap, so a hello is either answered or refused, never
// both.
func (c *client) takeHello() bool {
	for {
		v := c.live.Load()
		switch phase, _ := unpackLive(v); phase {
		case phaseHello, phaseHelloQueued:
			if c.live.CompareAndSwap(v, noDeadline<<3|phaseHelloTaken) {
				return true
			}
		case phaseHelloRefused:
			return false
		default:
			return true
		}
	}
}

// refuseHello is the sweeper's side of takeHello: it moves a connection
// whose hello is overdue (not received, or not answered), seen as v, to
// phaseHelloRefused and reports whether it did; false means the hello
// arrived or a worker took it meanwhile.
func (c *client) refuseHello(v int64) bool {
	return c.live.CompareAndSwap(v, noDeadline<<3|phaseHelloRefused)
}

// jobKind says what a mailbox job is.
type jobKind uint8

const (
	jobMessage jobKind = iota
	jobClosed          // the connection closed: undo its presence
	jobDeliver         // an owner on another node sends packet
	jobAttach          // this node took over uaid's ownership: attach it
)

type job struct {
	kind   jobKind
	msg    protocol.Message
	packet []protocol.UAIDUpdates // jobDeliver
	uaid   uuid.UUID              // jobAttach
}

// mailboxLimit bounds a connection's queued messages; a client that sends
// faster than its messages are carried out is disconnected.
const mailboxLimit = 32

// enqueue adds a job to the mailbox and schedules the connection on the
// worker pool if it is not already. It never blocks: the run queue has room
// for every connection. It reports false when the mailbox is full or the
// connection retired. Deliveries are not bounded here: an owner has at
// most one UPDATE in flight per UAID.
func (c *client) enqueue(n *Node, j job) bool {
	c.mu.Lock()
	if c.retired || (j.kind == jobMessage && len(c.queue) >= mailboxLimit) {
		c.mu.Unlock()
		return false
	}
	if j.kind == jobClosed {
		c.retired = true
	}
	c.queue = append(c.queue, j)
	schedule := !c.scheduled
	c.scheduled = true
	c.mu.Unlock()
	if schedule {
		n.runq <- c
	}
	return true
}

// nextJob pops the next job; ok is false (and the client unscheduled) when
// the mailbox is empty.
func (c *client) nextJob() (j job, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.queue) == 0 {
		c.queue, c.scheduled = nil, false
		return j, false
	}
	j = c.queue[0]
	c.queue[0] = job{}
	c.queue = c.queue[1:]
	return j, true
}

// send queues a frame to the client. It is safe off the event loop. A
// client whose unsent output exceeds the configured bound is disconnected.
func (c *client) send(n *Node, frame []byte) bool {
	if c.closing.Load() {
		return false
	}
	err := c.gc.AsyncWrite(frame, func(gc gnet.Conn, err error) error {
		if err == nil && gc.OutboundBuffered() > n.cfg.MaxOutbound {
			n.metrics.slowClients.Inc()
			c.closing.Store(true)
			return gc.Close()
		}
		return nil
	})
	return err == nil
}

// sendText frames msg as a text message and sends it.
func (c *client) sendText(n *Node, msg []byte) bool {
	return c.send(n, wsframe.AppendText(make([]byte, 0, len(msg)+10), msg))
}

// pingFrame is the server's WebSocket ping.
func pingFrame() []byte { return wsframe.AppendFrame(nil, ws.OpPing, nil) }

// closeWith sends a close frame with code and closes the connection once it
// is written. Safe off the event loop; only the first call has effect.
func (c *client) closeWith(n *Node, code ws.StatusCode, reason string) {
	if !c.closing.CompareAndSwap(false, true) {
		return
	}
	n.metrics.closeCode(code)
	frame := wsframe.AppendClose(nil, code, reason)
	err := c.gc.AsyncWrite(frame, func(gc gnet.Conn, _ error) error { return gc.Close() })
	if err != nil {
		_ = c.gc.Close()
	}
}

// connShards is the number of shards of the connection list.
const connShards = 64

// connList holds every open connection for the sweeper, in intrusive lists
// so that a connection costs two pointers here.
type connList struct {
	shards [connShards]struct {
		mu   sync.Mutex
		head *client // guarded by mu
	}
	next atomic.Uint32
}

func (l *connList) add(c *client) {
	i := uint8(l.next.Add(1) % connShards)
	c.shard = i
	s := &l.shards[i]
	s.mu.Lock()
	c.next = s.head
	if s.head != nil {
		s.head.prev = c
	}
	s.head = c
	s.mu.Unlock()
}

func (l *connList) remove(c *client) {
	s := &l.shards[c.shard]
	s.mu.Lock()
	if c.prev != nil {
		c.prev.next = c.next
	} else if s.head == c {
		s.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
	s.mu.Unlock()
}

// each calls act for every connection that pick chooses. pick runs with
// the connection's shard locked and must be cheap; act runs after the
// shard is unlocked, so its writes and syscalls never hold up the event
// loops that add and remove connections.
func (l *connList) each(pick func(c *client) bool, act func(c *client)) {
	var batch []*client
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		for c := s.head; c != nil; c = c.next {
			if pick(c) {
				batch = append(batch, c)
			}
		}
		s.mu.Unlock()
		for j, c := range batch {
			act(c)
			batch[j] = nil
		}
		batch = batch[:0]
	}
}
