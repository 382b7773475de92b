package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// maxKeptBatch is the largest write buffer a connection keeps for reuse
// after a write; a larger one (a big frame went out) is left to the GC.
const maxKeptBatch = 1 << 20

// errConnClosed is what sendQueue.put returns once its connection closed.
var errConnClosed = errors.New("cluster: connection closed")

// result is the answer a waiting call receives.
type result struct {
	payload []byte
	err     error
}

// resultChans recycles the one-slot channels calls wait on. A channel goes
// back only when nothing can send on it any more.
var resultChans = sync.Pool{New: func() any { return make(chan result, 1) }}

// conn is one established (or handshaking) TCP connection to a peer.
//
// A dialled conn (slot != nil) sends requests and reads answers; an
// accepted one reads requests and sends answers. Each has one reader
// goroutine and, once the handshake is done, one writer goroutine. Fields
// above mu are set before those start and are read-only afterwards.
type conn struct {
	t        *Transport
	nc       net.Conn
	r        *bufio.Reader
	slot     *slot  // dialled: the slot this conn fills; nil when accepted
	addr     string // remote address, for errors and logs
	peerName string // the peer's name from the handshake

	// ctx ends when the conn closes (or the Transport does). Handlers on
	// an accepted conn get it; the writer and blocked senders watch it.
	ctx    context.Context
	cancel context.CancelFunc

	out    sendQueue
	nextID atomic.Uint64 // dialled: last request id used

	// inflight is a semaphore of maxInflight handlers (accepted conns).
	inflight chan struct{}

	hdr [frameHeaderLen]byte // the reader's scratch header

	mu struct {
		sync.Mutex
		closed bool
		err    error // why it closed; what waiting calls get
		// pending maps request ids to the channel of the call waiting
		// for the answer (dialled conns).
		pending map[uint64]chan result
	}
}

func newConn(t *Transport, nc net.Conn, s *slot, addr string) *conn {
	c := &conn{
		t:    t,
		nc:   nc,
		r:    newBufReader(nc),
		slot: s,
		addr: addr,
	}
	c.ctx, c.cancel = context.WithCancel(t.ctx)
	c.out.wake = make(chan struct{}, 1)
	if s == nil {
		c.inflight = make(chan struct{}, maxInflight)
	} else {
		c.mu.pending = make(map[uint64]chan result)
	}
	return c
}

// call sends one request on c and waits for its answer. retry reports that
// the request never entered c's queue because c had closed, so another
// connection may take it.
func (c *conn) call(ctx context.Context, method uint8, req []byte) (resp []byte, retry bool, err error) {
	ch := resultChans.Get().(chan result)
	id := c.nextID.Add(1)
	c.mu.Lock()
	if c.mu.closed {
		err := c.mu.err
		c.mu.Unlock()
		resultChans.Put(ch)
		return nil, true, err
	}
	c.mu.pending[id] = ch
	c.mu.Unlock()

	if err := putFrame(&c.out, ctx, c.ctx.Done(), kindRequest, id, method, req); err != nil {
		if c.forget(id) {
			resultChans.Put(ch)
		} else {
			// close took the call over and answered it.
			err = (<-ch).err
			resultChans.Put(ch)
		}
		if err == errConnClosed {
			err = c.closeErr()
		}
		return nil, ctx.Err() == nil, err
	}

	select {
	case r := <-ch:
		resultChans.Put(ch)
		return r.payload, false, r.err
	case <-ctx.Done():
		if c.forget(id) {
			resultChans.Put(ch)
		}
		// Otherwise the answer is in ch, or about to be: ch is dropped
		// with it.
		return nil, false, ctx.Err()
	}
}

// forget removes the call with id from pending. It returns false if the
// call was already taken by an answer or by close.
func (c *conn) forget(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.mu.pending[id]; !ok {
		return false
	}
	delete(c.mu.pending, id)
	return true
}

func (c *conn) closeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.err
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.closed
}

// close closes c once: it fails waiting calls with err, ends c.ctx (its
// handlers' ctx, its writer), closes the socket and forgets c. Later calls
// do nothing.
func (c *conn) close(err error) {
	c.mu.Lock()
	if c.mu.closed {
		c.mu.Unlock()
		return
	}
	c.mu.closed = true
	c.mu.err = err
	pending := c.mu.pending
	c.mu.pending = nil
	c.mu.Unlock()

	if c.slot != nil {
		// First, so that new Calls stop picking c.
		c.slot.conn.CompareAndSwap(c, nil)
	}
	c.cancel()
	c.nc.Close()
	for _, ch := range pending {
		ch <- result{err: err}
	}
	c.t.untrack(c)
}

// fail closes c after a read or write error. An error that follows a
// deliberate close is its echo and is not logged.
func (c *conn) fail(err error) {
	if c.isClosed() {
		return
	}
	if errors.Is(err, errFrameShort) || errors.Is(err, errFrameTooLarge) || errors.Is(err, errFrameKind) {
		c.t.log.Warn("cluster: bad frame from peer, closing connection",
			slog.String("remote", c.addr), slog.String("peer", c.peerName), slog.Any("err", err))
	} else {
		c.t.log.Debug("cluster: connection lost",
			slog.String("remote", c.addr), slog.String("peer", c.peerName), slog.Any("err", err))
	}
	c.close(fmt.Errorf("%w: %s: %w", ErrUnavailable, c.addr, err))
}

// readLoop reads frames until c fails or closes. On an accepted conn it
// starts a handler per request; on a dialled one it hands each answer to
// its waiting call.
func (c *conn) readLoop() {
	maxFrame := c.t.cfg.MaxFrame
	for {
		fh, payload, err := readFrame(c.r, &c.hdr, maxFrame)
		if err != nil {
			c.fail(err)
			return
		}
		if c.slot == nil {
			if fh.kind != kindRequest {
				c.fail(fmt.Errorf("%w: %d on an accepted connection", errFrameKind, fh.kind))
				return
			}
			select {
			case c.inflight <- struct{}{}:
			case <-c.ctx.Done():
				return
			}
			c.t.wg.Add(1) // owned: the reader is counted
			go c.serve(fh.id, fh.method, payload)
			continue
		}
		var r result
		switch fh.kind {
		case kindResponse:
			r.payload = payload
		case kindError:
			r.err = &RemoteError{Msg: string(payload)}
		default:
			c.fail(fmt.Errorf("%w: %d on a dialled connection", errFrameKind, fh.kind))
			return
		}
		c.mu.Lock()
		ch, ok := c.mu.pending[fh.id]
		delete(c.mu.pending, fh.id)
		c.mu.Unlock()
		if ok {
			ch <- r // never blocks: one slot, one answer
		}
	}
}

// serve runs the handler for one request and queues its answer.
func (c *conn) serve(id uint64, method uint8, req []byte) {
	defer func() {
		<-c.inflight
		c.t.wg.Done()
	}()
	resp, err := c.t.handler(c.ctx, c.peerName, method, req)
	if err == nil && len(resp) > c.t.cfg.MaxFrame {
		c.t.log.Warn("cluster: response larger than MaxFrame, sending an error instead",
			slog.String("peer", c.peerName), slog.Int("method", int(method)), slog.Int("bytes", len(resp)))
		err = fmt.Errorf("response of %d bytes is larger than MaxFrame", len(resp))
	}
	// A failed put means c closed: the answer has nowhere to go.
	if err != nil {
		msg := err.Error()
		if n := min(maxErrorText, c.t.cfg.MaxFrame); len(msg) > n {
			msg = msg[:n]
		}
		putFrame(&c.out, context.Background(), c.ctx.Done(), kindError, id, method, msg)
		return
	}
	putFrame(&c.out, context.Background(), c.ctx.Done(), kindResponse, id, method, resp)
}

// writeLoop writes what senders queue, one batch per write, until c
// closes. Frames queued while a write is in progress leave together in the
// next one, so a burst of concurrent calls costs a few syscalls.
func (c *conn) writeLoop() {
	defer c.t.wg.Done()
	var batch []byte
	for {
		select {
		case <-c.out.wake:
		case <-c.ctx.Done():
			return
		}
		// Let the goroutines that are ready to send (callers woken by
		// the reader, handlers finishing) queue their frames first, so
		// that they share this write.
		runtime.Gosched()
		var frames int
		batch, frames = c.out.take(batch)
		if frames == 0 {
			continue
		}
		c.nc.SetWriteDeadline(time.Now().Add(writeTimeout))
		if _, err := c.nc.Write(batch); err != nil {
			c.fail(err)
			return
		}
		c.t.stats.writes.Add(1)
		c.t.stats.framesSent.Add(uint64(frames))
		if cap(batch) > maxKeptBatch {
			batch = nil
		}
	}
}

// sendQueue holds the encoded frames waiting for a connection's writer, at
// most maxQueued bytes (but always at least one frame).
type sendQueue struct {
	// wake has one slot; a sender fills it after queuing a frame.
	wake chan struct{}

	mu     sync.Mutex
	buf    []byte // encoded frames, in order
	frames int    // frames in buf
	// room, when not nil, is closed by the writer when it takes buf; full
	// senders wait on it.
	room chan struct{}
}

// putFrame encodes a frame into q, waiting while q is full until the
// writer makes room, ctx ends (ctx.Err()) or done closes (errConnClosed).
// The payload is copied: the caller may reuse it once putFrame returns.
func putFrame[P []byte | string](q *sendQueue, ctx context.Context, done <-chan struct{}, kind frameKind, id uint64, method uint8, payload P) error {
	select {
	case <-done:
		return errConnClosed
	default:
	}
	n := frameHeaderLen + len(payload)
	q.mu.Lock()
	for len(q.buf) > 0 && len(q.buf)+n > maxQueued {
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-done:
			return errConnClosed
		case <-ctx.Done():
			return ctx.Err()
		}
		q.mu.Lock()
	}
	q.buf = appendFrame(q.buf, kind, id, method, payload)
	q.frames++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	return nil
}

// take hands the queued frames to the writer and gives the queue spare (the
// previous batch, already written) to fill next.
func (q *sendQueue) take(spare []byte) ([]byte, int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	b, n := q.buf, q.frames
	q.buf, q.frames = spare[:0], 0
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
	return b, n
}
