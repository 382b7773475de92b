package engine

import (
	"time"

	"github.com/gobwas/ws"
	"github.com/google/uuid"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/shardstore"
)

// worker carries out mailboxes until the run queue closes. A connection is
// in the run queue at most once, so its jobs run in order, one at a time.
func (n *Node) worker() {
	defer n.wg.Done()
	for c := range n.runq {
		n.drain(c, true)
	}
}

// drain carries out c's jobs until its mailbox is empty. With offload (a
// worker), a job that may wait is handed, with the rest of the mailbox, to
// the waiting lane when it has room, so that the worker goes on with other
// connections' messages (see mayWait and waitLane).
func (n *Node) drain(c *client, offload bool) {
	for {
		j, ok := c.nextJob()
		if !ok {
			return
		}
		if offload && n.mayWait(c, &j) && n.lane.take(n, c, &j) {
			return
		}
		n.run(c, &j)
	}
}

// mayWait reports whether carrying out j may wait on another machine: a
// call to the UAID's owner node (or a wait for its partition's records
// during a handoff), a register or unregister that an owner replicates to
// the other nodes of the preference list, or an upstream push service's
// register. Those go to the waiting lane. What waits only on this node's
// own store stays on the workers (a standalone node's messages, and acks
// and closes of UAIDs it owns, whose replication does not wait): handing
// it over costs more than the wait saves there, and a stuck store holds up
// every connection anyway.
func (n *Node) mayWait(c *client, j *job) bool {
	if n.cfg.Upstream != nil && j.kind == jobMessage &&
		(j.msg.Type == protocol.TypeRegister || j.msg.Type == protocol.TypeUnregister) {
		return true
	}
	if n.ml == nil {
		return false
	}
	switch j.kind {
	case jobDeliver:
		return false
	case jobAttach:
		return true
	case jobClosed:
		return c.helloDone && (c.multi || !n.servesHere(c.uaid))
	}
	switch j.msg.Type {
	case protocol.TypeHello, protocol.TypeRegister, protocol.TypeUnregister:
		// A hello's UAID, maybe a new one, may be owned anywhere; an
		// owner's register waits for its replicas.
		return true
	case protocol.TypeAck:
		return c.multi || !n.servesHere(c.uaid)
	}
	return false
}

// servesHere reports whether this node owns u and holds its records now
// (its partition is not being filled by a handoff).
func (n *Node) servesHere(u uuid.UUID) bool {
	if _, local := n.ownerOf(u); !local {
		return false
	}
	return n.fills[cluster.PartitionOf(shardstore.RingHash(u))].Load() == nil
}

// run carries out one job of c.
func (n *Node) run(c *client, j *job) {
	switch j.kind {
	case jobClosed:
		n.disconnect(c)
		n.nconns.Add(-1)
		if c.inSetup {
			c.inSetup = false
			n.setup.done(false)
		}
	case jobMessage:
		n.handle(c, &j.msg)
	case jobDeliver:
		if !c.closing.Load() {
			c.sendText(n, encodeUpdate(c, j.packet))
		}
	case jobAttach:
		if !c.closing.Load() {
			n.reattach(c, j.uaid)
		}
	}
}

// handle carries out one client message (PROTOCOL.md 2).
func (n *Node) handle(c *client, m *protocol.Message) {
	// A closing connection's messages go unanswered, but an ack that came
	// before the close still counts: the client has the versions.
	if c.closing.Load() && (m.Type != protocol.TypeAck || !c.helloDone) {
		return
	}
	if m.Type == protocol.TypePing {
		n.ping(c, m)
		return
	}
	if !c.helloDone && m.Type != protocol.TypeHello {
		n.refuse(c, m.RawType, "hello required")
		return
	}
	switch m.Type {
	case protocol.TypeHello:
		if !c.helloDone && !c.takeHello() {
			return // refused by the sweeper while it waited
		}
		if m.HasUAIDs || c.multi {
			n.helloMulti(c, m)
		} else {
			n.hello(c, m)
		}
	case protocol.TypeRegister:
		n.registerMsg(c, m)
	case protocol.TypeUnregister:
		n.unregister(c, m)
	case protocol.TypeAck:
		n.ack(c, m)
	default:
		n.refuse(c, m.RawType, "unknown messageType")
	}
}

// helloAnswered marks c's session as said hello; its first hello ends its
// set-up (setupGate).
func (n *Node) helloAnswered(c *client) {
	c.helloDone = true
	if c.inSetup {
		c.inSetup = false
		n.setup.done(true)
	}
}

// refuse answers status 401 and closes the connection with 1008.
func (n *Node) refuse(c *client, messageType, why string) {
	c.sendText(n, protocol.AppendError(nil, messageType, protocol.StatusUnauthorized, why))
	c.closeWith(n, ws.StatusPolicyViolation, why)
}

func (n *Node) ping(c *client, m *protocol.Message) {
	now := time.Now().UnixMilli()
	if c.lastPing != 0 && now-c.lastPing < n.cfg.MinPingInterval.Milliseconds() {
		c.closeWith(n, closePingTooOften, "pinging too often")
		return
	}
	c.lastPing = now
	c.sendText(n, protocol.AppendPing(nil))
}

// hello is the single-UAID hello (PROTOCOL.md 2.1).
func (n *Node) hello(c *client, m *protocol.Message) {
	u, valid := protocol.ParseUUID(m.UAID)
	if c.helloDone {
		if valid && u == c.uaid {
			c.sendText(n, protocol.AppendHello(nil, c.uaid, n.cfg.ClientPing))
			return
		}
		n.refuse(c, "hello", "hello with a different uaid")
		return
	}
	if !valid {
		u = uuid.New()
	}
	attached := func(u uuid.UUID) func() {
		return func() {
			c.uaid = u
			n.helloAnswered(c)
			c.setLive(phaseIdle, time.Now().Add(n.cfg.PingInterval))
			c.sendText(n, protocol.AppendHello(nil, u, n.cfg.ClientPing))
		}
	}
	known, ok := n.routeHello(c, u, m.ChannelIDs, attached(u))
	if ok && !known {
		// The server lost the client's state: it starts over.
		u = uuid.New()
		_, ok = n.routeHello(c, u, nil, attached(u))
	}
	if !ok {
		c.sendText(n, protocol.AppendError(nil, "hello", protocol.StatusServerFailure, "server error"))
		c.closeWith(n, closeTryAgainLater, "server error")
		return
	}
	n.metrics.hellos.Inc()
	// A wake-up address the node may not use is left out, not refused:
	// the client is served without kicks.
	if t, ok, err := kickTarget(nil, m.WakeupHostport, m.MobileNetwork); ok && err == nil {
		if err := n.setKick(c.uaid, t); err != nil {
			n.log.Debug("hello: wake-up address not kept", "uaid", c.uaid, "err", err)
		}
	}
}

// helloMulti is the seed's multi-UAID hello. Each hello adds its UAIDs to
// the connection, up to the per-connection limit, so a relay may name more
// UAIDs than fit one message, and add user agents later. The reply goes
// out before any UAID is attached, so no UPDATE can precede it.
func (n *Node) helloMulti(c *client, m *protocol.Message) {
	if c.helloDone && !c.multi {
		n.refuse(c, "hello", "hello with a different uaid")
		return
	}
	if !c.relayOK {
		n.refuse(c, "hello", "multi-UAID hellos are not accepted from this address")
		return
	}
	if !c.helloDone {
		c.multi = true
		c.uaids = make(map[uuid.UUID]struct{})
	}
	accepted := make([]uuid.UUID, 0, len(m.UAIDs))
	var fresh []uuid.UUID
	for _, s := range m.UAIDs {
		u, ok := protocol.ParseUUID(s)
		if !ok {
			continue
		}
		if _, dup := c.uaids[u]; !dup {
			if len(c.uaids) >= n.cfg.MaxUAIDs {
				continue
			}
			c.uaids[u] = struct{}{}
			fresh = append(fresh, u)
		}
		accepted = append(accepted, u)
	}
	n.helloAnswered(c)
	c.setLive(phaseIdle, time.Now().Add(n.cfg.PingInterval))
	c.sendText(n, protocol.AppendHelloMulti(nil, accepted, n.cfg.ClientPing))
	n.metrics.hellos.Inc()
	if !n.routeAttach(c, fresh) {
		c.closeWith(n, closeTryAgainLater, "server error")
	}
}

// uaidFor returns the UAID a register/unregister acts on: the connection's,
// or on a multi-UAID connection the message's "uaid", which must be one of
// the connection's.
func (n *Node) uaidFor(c *client, m *protocol.Message) (uuid.UUID, bool) {
	if !c.multi {
		return c.uaid, true
	}
	u, ok := protocol.ParseUUID(m.UAID)
	if !ok {
		return u, false
	}
	_, ok = c.uaids[u]
	return u, ok
}

func (n *Node) registerMsg(c *client, m *protocol.Message) {
	u, ok := n.uaidFor(c, m)
	if !ok {
		c.sendText(n, protocol.AppendError(nil, "register", protocol.StatusUnauthorized, "invalid uaid"))
		return
	}
	chid, ok := protocol.ParseUUID(m.ChannelID)
	if !ok {
		c.sendText(n, protocol.AppendError(nil, "register", protocol.StatusUnauthorized, "invalid channelID"))
		return
	}
	if t, ok, err := kickTarget(m.Kick, nil, nil); err != nil || ok {
		if err == nil {
			err = n.setKick(u, t)
		}
		if err != nil {
			c.sendText(n, protocol.AppendError(nil, "register", protocol.StatusUnauthorized, "invalid kick target"))
			return
		}
	}
	endpoint, status, err := n.register(u, chid)
	switch {
	case err != nil:
		c.sendText(n, protocol.AppendError(nil, "register", status, err.Error()))
	default:
		n.metrics.registers.Inc()
		c.sendText(n, protocol.AppendRegister(nil, chid, endpoint))
	}
}

func (n *Node) unregister(c *client, m *protocol.Message) {
	u, ok := n.uaidFor(c, m)
	chid, valid := protocol.ParseUUID(m.ChannelID)
	if ok && valid {
		n.unregisterChannel(u, chid)
		n.metrics.unregisters.Inc()
	}
	c.sendText(n, protocol.AppendUnregister(nil, m.ChannelID))
}

func (n *Node) ack(c *client, m *protocol.Message) {
	n.metrics.acks.Inc()
	if c.multi {
		uaids := make([]uuid.UUID, 0, len(m.UAIDs))
		for _, s := range m.UAIDs {
			u, ok := protocol.ParseUUID(s)
			if !ok {
				continue
			}
			if _, mine := c.uaids[u]; mine {
				uaids = append(uaids, u)
			}
		}
		n.routeAckFlight(c, uaids)
		return
	}
	acks := make([]shardstore.Ack, 0, len(m.Updates))
	for _, up := range m.Updates {
		chid, ok := protocol.ParseUUID(up.ChannelID)
		if up.OK && ok {
			acks = append(acks, shardstore.Ack{Channel: chid, Version: up.Version})
		}
	}
	if len(acks) > 0 {
		n.routeAck(c, c.uaid, acks)
	}
}

// disconnect undoes a closed connection's presence and ends its flights.
func (n *Node) disconnect(c *client) {
	if !c.helloDone {
		return
	}
	uaids := []uuid.UUID{c.uaid}
	if c.multi {
		uaids = make([]uuid.UUID, 0, len(c.uaids))
		for u := range c.uaids {
			uaids = append(uaids, u)
		}
	}
	for _, u := range uaids {
		n.edges.remove(c, u)
	}
	n.routeDetach(c, uaids)
}
