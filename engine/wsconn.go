package engine

import (
	"errors"
	"time"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/internal/wsframe"
)

// loopHandler is the gnet event handler of the client listener. Its
// methods run on event loops: they parse and hand off, and never wait on
// disk or network.
type loopHandler struct {
	gnet.BuiltinEventEngine
	n *Node
}

var _ gnet.EventHandler = (*loopHandler)(nil)

func (h *loopHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c := gc.Context().(*client)
	c.gc = gc
	c.setLive(phaseHandshake, time.Now().Add(h.n.cfg.HandshakeTimeout))
	h.n.conns.add(c)
	h.n.metrics.connections.Add(1)
	return nil, gnet.None
}

func (h *loopHandler) OnClose(gc gnet.Conn, _ error) gnet.Action {
	c, ok := gc.Context().(*client)
	if !ok {
		return gnet.None
	}
	c.closing.Store(true)
	h.n.conns.remove(c)
	h.n.metrics.connections.Add(-1)
	if c.upgraded {
		// The connection keeps counting against the cap until a worker has
		// undone its presence, so that the run queue (sized to the cap)
		// always has room for it.
		c.enqueue(h.n, job{kind: jobClosed})
	} else {
		h.n.nconns.Add(-1)
	}
	return gnet.None
}

func (h *loopHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	c := gc.Context().(*client)
	for {
		buf, _ := gc.Peek(-1)
		if len(buf) == 0 {
			return gnet.None
		}
		if c.closing.Load() {
			_, _ = gc.Discard(len(buf))
			return gnet.None
		}
		var (
			n      int
			action gnet.Action
		)
		if !c.upgraded {
			n, action = h.handshake(c, buf)
		} else {
			n, action = h.frame(c, buf)
		}
		if n > 0 {
			_, _ = gc.Discard(n)
		}
		if action != gnet.None || n == 0 {
			return action
		}
	}
}

func (h *loopHandler) handshake(c *client, buf []byte) (int, gnet.Action) {
	n, resp, err := wsframe.Handshake(buf, nil)
	if n == 0 {
		return 0, gnet.None
	}
	_, _ = c.gc.Write(resp)
	if err != nil {
		h.n.metrics.handshakeFailures.Inc()
		return n, gnet.Close
	}
	c.upgraded = true
	c.setLive(phaseHello, time.Now().Add(h.n.cfg.HelloTimeout))
	return n, gnet.None
}

func (h *loopHandler) frame(c *client, buf []byte) (int, gnet.Action) {
	n, f, err := c.rd.Next(buf, h.n.cfg.MaxMessage)
	if err != nil {
		var ce *wsframe.CloseError
		if errors.As(err, &ce) {
			return len(buf), h.closeOnLoop(c, ce.Code, ce.Reason)
		}
		return len(buf), gnet.Close
	}
	if n == 0 {
		return 0, gnet.None
	}
	// Any complete frame proves the peer alive: push the next ping out.
	if ph, _ := c.liveState(); ph == phaseIdle || ph == phasePong {
		c.setLive(phaseIdle, time.Now().Add(h.n.cfg.PingInterval))
	}
	switch f.Kind {
	case wsframe.Ping:
		// A ping flood from a client that does not read would grow the
		// outbound buffer without end: pongs obey the same bound.
		if c.gc.OutboundBuffered() > h.n.cfg.MaxOutbound {
			h.n.metrics.slowClients.Inc()
			c.closing.Store(true)
			return len(buf), gnet.Close
		}
		_, _ = c.gc.Write(wsframe.AppendPong(nil, f.Payload))
	case wsframe.Close:
		// Echo the close and end the connection (RFC 6455 5.5.1).
		code := f.Code
		if code == ws.StatusNoStatusRcvd {
			code = ws.StatusNormalClosure
		}
		return n, h.closeOnLoop(c, code, "")
	case wsframe.Text:
		msg, err := protocol.Decode(f.Payload)
		if err != nil {
			return n, h.closeOnLoop(c, ws.StatusInvalidFramePayloadData, "invalid JSON")
		}
		h.n.metrics.messages.Inc()
		if msg.Type == protocol.TypeHello && c.helloQueued(time.Now(), h.n.cfg.HelloTimeout) {
			c.inSetup = true
			h.n.setup.enter()
		}
		if !c.enqueue(h.n, job{kind: jobMessage, msg: msg}) {
			return n, h.closeOnLoop(c, ws.StatusPolicyViolation, "too many messages")
		}
	}
	return n, gnet.None
}

// closeOnLoop writes a close frame and tells gnet to close the connection,
// which flushes the frame first.
func (h *loopHandler) closeOnLoop(c *client, code ws.StatusCode, reason string) gnet.Action {
	if c.closing.CompareAndSwap(false, true) {
		h.n.metrics.closeCode(code)
		_, _ = c.gc.Write(wsframe.AppendClose(nil, code, reason))
	}
	return gnet.Close
}
