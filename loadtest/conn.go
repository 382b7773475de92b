package loadtest

import (
	"bytes"
	"context"
	"errors"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/google/uuid"
	"github.com/panjf2000/gnet/v2"
)

// channel is one registered channel of a device.
type channel struct {
	id     uuid.UUID
	prefix uint16 // the endpoint's "scheme://host", an index into local.prefixes
	path   string // the endpoint's path; "" until registered
}

// conn is one simulated device. It lives in one slice per process (no
// allocation per device) and is touched only by its event loop once
// enrolled; between enrolments (before the first dial, after a drop) the
// goroutine dialling it owns it, handed over through gnet's enrol and a
// channel.
type conn struct {
	gc    gnet.Conn
	chans []channel
	t0    int64 // unix ns: start of the step awaited (dial, hello, register)
	t1    int64 // unix ns: when a storm dropped the connection
	uaid  uuid.UUID

	target uint16
	state  uint8
	phase  uint8 // setup phase the connection reports to (settle)
	flags  uint8
	nreg   uint16 // channels registered
	tries  uint8  // set-up retries made (Config.SetupRetries)
	code   uint16 // close code the server sent
}

// Connection states.
const (
	stDialing uint8 = iota
	stHandshake
	stHello
	stRegister
	stIdle
	stClosed
)

// Connection flags.
const (
	fUpgraded  uint8 = 1 << iota // counted in the open gauge
	fSettled                     // reported to its setup phase
	fSelfClose                   // closed by us: not a server close
	fDropped                     // dropped by the storm: reconnect on close
	fHasUAID                     // uaid holds the server's answer
	fFlushing                    // a ping is out; its answer ends the flush
)

// Setup phases a connection settles into (see local.settled).
const (
	phaseNone uint8 = iota
	phaseRamp
	phaseReconnect
)

// scratch is per-callback working memory, pooled because gnet runs
// several event loops.
type scratch struct {
	msg   []byte
	frame []byte
	ups   []update
}

var scratchPool = sync.Pool{New: func() any { return &scratch{msg: make([]byte, 0, 512), frame: make([]byte, 0, 512)} }}

var errUnexpected = errors.New("loadtest: unexpected message")

// OnOpen sends the opening handshake of a freshly enrolled connection.
func (l *local) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*conn)
	c.gc = gc
	c.state = stHandshake
	return l.targets[c.target].req, gnet.None
}

// OnTraffic parses the handshake response and whole frames out of gnet's
// buffer and leaves a partial frame for the next call.
func (l *local) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*conn)
	buf, _ := gc.Peek(-1)
	used := 0
	action := gnet.None
	for action == gnet.None && used < len(buf) {
		if c.state == stHandshake {
			n, err := l.hs.response(buf[used:])
			if err != nil {
				l.rec.errorf("handshake")
				action = l.fail(c)
				break
			}
			if n == 0 {
				break
			}
			used += n
			l.upgraded(c, gc)
			continue
		}
		n, f, err := parseServerFrame(buf[used:])
		if err != nil {
			l.rec.errorf("protocol")
			action = l.fail(c)
			break
		}
		if n == 0 {
			break
		}
		used += n
		action = l.frame(c, gc, f)
	}
	if used > 0 && action == gnet.None {
		_, _ = gc.Discard(used)
	}
	return action
}

// OnClose accounts for a closed connection: a drop to reconnect, our own
// close, or one by the server (counted by close code, 1006 without one).
func (l *local) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c := gc.Context().(*conn)
	state := c.state
	c.state = stClosed
	if c.flags&fUpgraded != 0 {
		c.flags &^= fUpgraded
		l.rec.open.Add(-1)
	}
	if l.sem != nil {
		<-l.sem // hello-rate: a slot is free
	}
	if c.flags&fFlushing != 0 {
		c.flags &^= fFlushing
		l.flushing.Add(-1)
	}
	if l.stopping.Load() {
		return gnet.None
	}
	switch {
	case c.flags&fDropped != 0:
		c.flags &^= fDropped | fSelfClose
		select {
		case l.reconnect <- c:
		default:
			l.rec.errorf("reconnect_queue_full")
		}
	case c.flags&fSelfClose != 0:
	default:
		code := c.code
		if code == 0 {
			code = uint16(ws.StatusAbnormalClosure)
		}
		l.rec.closed(code)
		if state < stIdle {
			l.rec.errorf("closed_during_setup")
			l.setupFailed(c)
		}
	}
	return gnet.None
}

// upgraded counts the connect latency and says hello.
func (l *local) upgraded(c *conn, gc gnet.Conn) {
	now := time.Now().UnixNano()
	l.rec.latency(kConnect, (now-c.t0)/1e3)
	c.flags |= fUpgraded
	l.rec.open.Add(1)
	s := scratchPool.Get().(*scratch)
	if c.phase == phaseReconnect && c.flags&fHasUAID != 0 {
		s.msg = appendHello(s.msg[:0], &c.uaid, c.chans)
	} else {
		s.msg = appendHello(s.msg[:0], nil, nil)
	}
	s.frame = appendClientFrame(s.frame[:0], ws.OpText, s.msg)
	_, _ = gc.Write(s.frame)
	scratchPool.Put(s)
	c.t0 = now
	c.state = stHello
}

// frame handles one frame from the server.
func (l *local) frame(c *conn, gc gnet.Conn, f serverFrame) gnet.Action {
	switch f.op {
	case ws.OpText:
		if !f.fin {
			l.rec.errorf("protocol")
			return l.fail(c)
		}
		return l.message(c, gc, f.payload)
	case ws.OpPing:
		s := scratchPool.Get().(*scratch)
		s.frame = appendClientFrame(s.frame[:0], ws.OpPong, f.payload)
		_, _ = gc.Write(s.frame)
		scratchPool.Put(s)
		return gnet.None
	case ws.OpPong:
		return gnet.None
	case ws.OpClose:
		c.code = closeCode(f.payload)
		s := scratchPool.Get().(*scratch)
		s.frame = appendClientClose(s.frame[:0], c.code)
		_, _ = gc.Write(s.frame)
		scratchPool.Put(s)
		return gnet.Close
	}
	l.rec.errorf("protocol")
	return l.fail(c)
}

// message handles one text message by the connection's state.
func (l *local) message(c *conn, gc gnet.Conn, msg []byte) gnet.Action {
	if c.flags&fFlushing != 0 && string(msg) == "{}" {
		c.flags &^= fFlushing
		l.flushing.Add(-1)
		return gnet.None
	}
	if bytes.HasPrefix(msg, notificationPrefix) || c.state == stIdle {
		return l.notification(c, gc, msg)
	}
	now := time.Now().UnixNano()
	r, err := parseReply(msg)
	switch c.state {
	case stHello:
		var u uuid.UUID
		if err == nil && r.MessageType == "hello" && r.Status == 200 {
			u, err = uuid.Parse(r.UAID)
		} else if err == nil {
			err = errUnexpected
		}
		if err != nil {
			l.rec.helloFailures.Add(1)
			l.rec.errorf("hello")
			return l.fail(c)
		}
		l.rec.hellos.Add(1)
		l.rec.latency(kHello, (now-c.t0)/1e3)
		if l.sem != nil {
			c.flags |= fSelfClose
			return gnet.Close
		}
		if c.phase == phaseReconnect {
			l.rec.latency(kReconnect, (now-c.t1)/1e3)
			if u != c.uaid {
				l.rec.uaidResets.Add(1)
			}
		}
		c.uaid = u
		c.flags |= fHasUAID
		if c.phase == phaseReconnect || len(c.chans) == 0 {
			c.state = stIdle
			l.settled(c, true)
			return gnet.None
		}
		c.state = stRegister
		l.register(c, gc, now)
		return gnet.None
	case stRegister:
		ch := &c.chans[c.nreg]
		prefix, path, ok := splitEndpoint(r.PushEndpoint)
		if err != nil || r.MessageType != "register" || r.Status != 200 || !ok || !sameUUID(r.ChannelID, ch.id) {
			l.rec.registerFailures.Add(1)
			l.rec.errorf("register")
			return l.fail(c)
		}
		l.rec.registers.Add(1)
		l.rec.latency(kRegister, (now-c.t0)/1e3)
		ch.prefix, ch.path = l.prefixIndex(prefix), strings.Clone(path)
		c.nreg++
		if int(c.nreg) < len(c.chans) {
			l.register(c, gc, now)
			return gnet.None
		}
		c.state = stIdle
		l.settled(c, true)
		return gnet.None
	}
	l.rec.errorf("unexpected_message")
	return gnet.None
}

func (l *local) register(c *conn, gc gnet.Conn, now int64) {
	s := scratchPool.Get().(*scratch)
	s.msg = appendRegister(s.msg[:0], c.chans[c.nreg].id)
	s.frame = appendClientFrame(s.frame[:0], ws.OpText, s.msg)
	_, _ = gc.Write(s.frame)
	scratchPool.Put(s)
	c.t0 = now
}

// notification matches a notification's versions to the PUT schedule
// (each settles its PUT and the earlier PUTs of its channel, see putPlan)
// and acknowledges it as the ack mode says.
func (l *local) notification(c *conn, gc gnet.Conn, msg []byte) gnet.Action {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	ups, ok := scanNotification(msg, s.ups[:0])
	if !ok {
		r, err := parseReply(msg)
		if err != nil || r.MessageType != "notification" {
			l.rec.errorf("unexpected_message")
			return gnet.None
		}
		ups = ups[:0]
		for _, u := range r.Updates {
			ups = append(ups, update{chid: []byte(u.ChannelID), version: u.Version})
		}
	}
	s.ups = ups
	l.rec.notifications.Add(1)
	now := time.Now().UnixNano()
	if plan := l.plan.Load(); plan != nil {
		for _, u := range ups {
			plan.notified(l.rec, u.chid, u.version, now)
		}
	}
	switch l.cfg.Ack.Kind {
	case AckNever:
		return gnet.None
	case AckFraction:
		if mrand.Float64() >= l.cfg.Ack.Fraction {
			return gnet.None
		}
	}
	s.msg = appendAck(s.msg[:0], ups)
	if l.cfg.Ack.Kind == AckDelay {
		frame := appendClientFrame(make([]byte, 0, len(s.msg)+14), ws.OpText, s.msg)
		l.acks.push(gc, now+int64(l.cfg.Ack.Delay), frame)
		return gnet.None
	}
	s.frame = appendClientFrame(s.frame[:0], ws.OpText, s.msg)
	if _, err := gc.Write(s.frame); err == nil {
		l.rec.acks.Add(1)
	}
	return gnet.None
}

// fail ends a connection's setup as failed and closes it.
func (l *local) fail(c *conn) gnet.Action {
	c.flags |= fSelfClose
	l.settled(c, false)
	return gnet.Close
}

// drop closes an established connection abruptly (RST) on its event loop
// and marks it for reconnection; from here on it reports to the
// reconnect phase.
func (l *local) drop(ctx context.Context, c *conn) {
	gc := c.gc
	err := gc.EventLoop().Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
		c.phase = phaseReconnect
		c.flags &^= fSettled
		if c.state != stIdle || c.gc != gc {
			// Closed by the server meanwhile: nothing to drop.
			l.rec.errorf("drop_not_idle")
			l.settled(c, false)
			return nil
		}
		c.flags |= fDropped
		c.t1 = time.Now().UnixNano()
		_ = gc.SetLinger(0)
		return gc.EventLoop().Close(gc)
	}))
	if err != nil {
		l.rec.errorf("drop")
	}
}

// pingFrame is a SimplePush ping ("{}"); masked once, which is allowed
// (the mask need only be unpredictable to intermediaries, and loopback
// has none).
var pingFrame = appendClientFrame(nil, ws.OpText, []byte("{}"))

// flush sends every established, idle connection a SimplePush ping and
// waits (at most cfg.Drain, after delayed acks are out) for the answers. pushd carries out a
// connection's messages in order, so once the ping is answered every ack
// sent before it has been counted; a connection closed right after its
// last ack could otherwise lose that ack in the server's queue.
func (l *local) flush(ctx context.Context) {
	deadline := time.Now().Add(l.cfg.Drain)
	for l.acks != nil && l.acks.len() > 0 && time.Now().Before(deadline) {
		if !sleepUntil(ctx, time.Now().Add(5*time.Millisecond)) {
			return
		}
	}
	est := l.established()
	l.flushing.Add(int64(len(est)))
	for _, c := range est {
		gc := c.gc
		err := gc.EventLoop().Execute(ctx, gnet.RunnableFunc(func(context.Context) error {
			if c.state != stIdle || c.gc != gc || c.flags&fUpgraded == 0 {
				l.flushing.Add(-1)
				return nil
			}
			c.flags |= fFlushing
			_, _ = gc.Write(pingFrame)
			return nil
		}))
		if err != nil {
			l.flushing.Add(-1)
		}
	}
	for l.flushing.Load() > 0 && time.Now().Before(deadline) {
		if !sleepUntil(ctx, time.Now().Add(5*time.Millisecond)) {
			return
		}
	}
}

// splitEndpoint splits "http://host:port/update/x" into its
// "http://host:port" and "/update/x".
func splitEndpoint(ep string) (prefix, path string, ok bool) {
	i := strings.Index(ep, "://")
	if i < 0 {
		return "", "", false
	}
	j := strings.IndexByte(ep[i+3:], '/')
	if j < 0 {
		return "", "", false
	}
	return ep[:i+3+j], ep[i+3+j:], true
}

func sameUUID(s string, u uuid.UUID) bool {
	v, err := uuid.Parse(s)
	return err == nil && v == u
}
