package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/shardstore"
)

// This file holds the owner operations: everything that reads or changes a
// UAID's stored state or presence. Each runs with the UAID's lock slot held,
// off the event loops (in a worker or an HTTP handler), and may block on the
// store.

// opWait bounds how long an operation other than a PUT waits for a UAID's
// slot. Slots are held only for one store operation, so reaching it means
// the store is stuck.
const opWait = 5 * time.Second

// multiBatch is the most UAIDs carried in one multi-UAID UPDATE message.
const multiBatch = 500

// PutStatus is the outcome of a version event (PROTOCOL.md 3).
type PutStatus int

const (
	// PutDelivered: accepted, durable, and written to the client's open
	// connection (200).
	PutDelivered PutStatus = iota
	// PutStored: accepted and durable; the client is not connected (202).
	PutStored
	// PutNotFound: the channel is not registered (404).
	PutNotFound
	// PutBusy: the UAID's UPDATE stayed in flight for the whole lock wait
	// (503).
	PutBusy
	// PutFailed: the store failed; nothing is promised (503). Comes with an
	// error.
	PutFailed
)

// ErrStore wraps store failures reported to clients.
var ErrStore = errors.New("engine: store failure")

type ackItem struct {
	chid    uuid.UUID
	version uint64
}

// Put records a version event for (uaid, chid): it waits up to the lock
// wait for an in-flight UPDATE of the UAID to be acknowledged, makes the
// version durable, and delivers every pending version of the UAID to its
// connection if it has one.
func (n *Node) Put(u, chid uuid.UUID, p shardstore.Put) (PutStatus, error) {
	if !n.locks.acquire(u, true, time.Now().Add(n.cfg.LockWait)) {
		return PutBusy, nil
	}
	defer n.locks.release(u)
	return n.putLocked(u, chid, p)
}

// Store records a version event like Put, but does not wait for an
// in-flight UPDATE: a version stored meanwhile stays pending and is sent as
// soon as the client acknowledges the flight. A relay stores what its
// upstream sends this way, so that its own device's pace never holds up
// the upstream ack. It answers PutStored for a version left pending.
func (n *Node) Store(u, chid uuid.UUID, p shardstore.Put) (PutStatus, error) {
	if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
		return PutBusy, nil
	}
	defer n.locks.release(u)
	return n.putLocked(u, chid, p)
}

// putLocked stores a version event and delivers or queues it.
// REQUIRES: u's slot held.
func (n *Node) putLocked(u, chid uuid.UUID, p shardstore.Put) (PutStatus, error) {
	res, err := n.store.Put(u, chid, p)
	if err != nil {
		return PutFailed, fmt.Errorf("%w: put: %w", ErrStore, err)
	}
	if res.Outcome == shardstore.PutNotRegistered {
		return PutNotFound, nil
	}
	c := n.hub.get(u)
	if c == nil {
		if res.Outcome == shardstore.PutStored {
			n.waiters.wake(u)
			n.maybeKick(u)
		}
		return PutStored, nil
	}
	if res.Outcome == shardstore.PutStale {
		// Nothing changed; answer as the accepted PUT was answered.
		return PutDelivered, nil
	}
	if n.locks.markDirty(u) {
		return PutStored, nil // in flight (only via Store): sent after the ack
	}
	if !n.deliverLocked(c, u, res.Pending) {
		return PutStored, nil
	}
	return PutDelivered, nil
}

// deliverLocked sends pending, every pending version of u, to c and puts u
// in flight. It reports whether an UPDATE was written.
// REQUIRES: u's slot held.
func (n *Node) deliverLocked(c *client, u uuid.UUID, pending []shardstore.Channel) bool {
	if len(pending) == 0 {
		return false
	}
	updates := toUpdates(pending)
	var msg []byte
	if c.multi {
		msg = protocol.AppendUpdate(nil, []protocol.UAIDUpdates{{UAID: u, Updates: updates}})
	} else {
		msg = protocol.AppendNotification(nil, updates)
	}
	if !c.sendText(n, msg) {
		return false
	}
	n.metrics.notifications.Inc()
	n.startFlight(u, c, updates)
	return true
}

func toUpdates(chans []shardstore.Channel) []protocol.Update {
	ups := make([]protocol.Update, len(chans))
	for i, ch := range chans {
		ups[i] = protocol.Update{ChannelID: ch.ID, Version: ch.Pending, Data: ch.Data}
	}
	return ups
}

// ownerHello attaches c as the connection of u (or of a fresh UAID when the
// server holds no registration for one of channelIDs: the client's state
// was lost), calls attached with the UAID in use, then sends the pending
// versions. It reports false when the store failed.
func (n *Node) ownerHello(c *client, u uuid.UUID, channelIDs []string, attached func(uuid.UUID)) bool {
	if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
		return false
	}
	if len(channelIDs) > 0 {
		known, err := n.knowsChannels(u, channelIDs)
		if err != nil {
			n.locks.release(u)
			n.log.Error("hello: reading channels", "uaid", u, "err", err)
			return false
		}
		if !known {
			n.locks.release(u)
			n.metrics.uaidResets.Inc()
			u = uuid.New()
			if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
				return false
			}
		}
	}
	defer n.locks.release(u)
	n.attachLocked(c, u)
	attached(u)
	n.flushLocked(c, u)
	return true
}

// knowsChannels reports whether every channel ID names a registration of
// u. It looks each one up by key (a client names at most a message's worth).
func (n *Node) knowsChannels(u uuid.UUID, channelIDs []string) (bool, error) {
	for _, s := range channelIDs {
		id, ok := protocol.ParseUUID(s)
		if !ok {
			return false, nil
		}
		if _, ok, err := n.store.Channel(u, id); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// attachLocked makes c the connection of u; the newest connection wins and
// the one it replaces is closed with 4001.
// REQUIRES: u's slot held.
func (n *Node) attachLocked(c *client, u uuid.UUID) {
	prev := n.hub.set(u, c)
	if prev != nil && prev != c {
		n.metrics.superseded.Inc()
		prev.closeWith(n, closeSuperseded, "superseded by a newer connection")
	}
}

// flushLocked sends u's pending versions to c on its first attach, taking
// over a flight to an older connection.
// REQUIRES: u's slot held.
func (n *Node) flushLocked(c *client, u uuid.UUID) {
	if f := n.locks.flightOf(u); f != nil {
		if f.to == c {
			return
		}
		n.locks.setFlight(u, nil)
	}
	n.sendPendingLocked(c, u)
}

// attachMulti attaches newly named UAIDs of a multi-UAID connection and
// sends their pending versions as UPDATE packets of at most multiBatch
// UAIDs. It reports false if a UAID could not be attached (the store is
// stuck).
func (n *Node) attachMulti(c *client, uaids []uuid.UUID) bool {
	var packet []protocol.UAIDUpdates
	flush := func() {
		if len(packet) > 0 {
			c.sendText(n, protocol.AppendUpdate(nil, packet))
			n.metrics.notifications.Inc()
			packet = packet[:0]
		}
	}
	defer flush()
	for _, u := range uaids {
		if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
			return false
		}
		n.attachLocked(c, u)
		if f := n.locks.flightOf(u); f != nil && f.to != c {
			n.locks.setFlight(u, nil) // taken over from an older connection
		}
		pending, err := n.store.Pending(u)
		if err != nil {
			n.log.Error("hello: reading pending versions", "uaid", u, "err", err)
		}
		if len(pending) > 0 {
			ups := toUpdates(pending)
			packet = append(packet, protocol.UAIDUpdates{UAID: u, Updates: ups})
			n.startFlight(u, c, ups)
		}
		n.locks.release(u)
		if len(packet) >= multiBatch {
			flush()
		}
	}
	return true
}

// ownerRegister registers (u, chid) and returns its endpoint, or the
// status to answer and an error.
func (n *Node) ownerRegister(u, chid uuid.UUID) (string, int, error) {
	if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
		return "", protocol.StatusServerFailure, errors.New("server busy")
	}
	_, err := n.store.Register(u, chid)
	n.locks.release(u)
	switch {
	case errors.Is(err, shardstore.ErrTooManyChannels):
		return "", protocol.StatusTooManyChans, errors.New("too many channels")
	case err != nil:
		n.log.Error("register", "uaid", u, "err", err)
		return "", protocol.StatusServerFailure, errors.New("server error")
	}
	if n.cfg.Upstream != nil {
		ctx, cancel := context.WithTimeout(context.Background(), opWait)
		defer cancel()
		ep, err := n.cfg.Upstream.Register(ctx, u, chid)
		if err != nil {
			n.log.Warn("register upstream", "uaid", u, "err", err)
			return "", protocol.StatusServerFailure, errors.New("upstream unavailable")
		}
		return ep, protocol.StatusOK, nil
	}
	return n.endpoint(u, chid), protocol.StatusOK, nil
}

// endpoint is the push endpoint URL of (u, chid).
func (n *Node) endpoint(u, chid uuid.UUID) string {
	return n.cfg.EndpointURL + "/update/" + n.keys.Seal(u, chid)
}

func (n *Node) ownerUnregister(u, chid uuid.UUID) {
	if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
		return
	}
	err := n.store.Unregister(u, chid)
	n.locks.release(u)
	if err != nil {
		n.log.Error("unregister", "uaid", u, "err", err)
	}
	if n.cfg.Upstream != nil {
		ctx, cancel := context.WithTimeout(context.Background(), opWait)
		defer cancel()
		if err := n.cfg.Upstream.Unregister(ctx, u, chid); err != nil {
			n.log.Warn("unregister upstream", "uaid", u, "err", err)
		}
	}
}

// ownerAck clears acknowledged versions of a single-UAID connection and
// ends u's flight once every version sent in it is acknowledged.
func (n *Node) ownerAck(c *client, u uuid.UUID, acks []ackItem) {
	if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
		return
	}
	defer n.locks.release(u)
	sacks := make([]shardstore.Ack, len(acks))
	for i, a := range acks {
		sacks[i] = shardstore.Ack{Channel: a.chid, Version: a.version}
	}
	if err := n.store.Ack(u, sacks); err != nil {
		n.log.Error("ack", "uaid", u, "err", err)
		return
	}
	f := n.locks.flightOf(u)
	if f == nil || f.to != c {
		return
	}
	var left []protocol.Update
	for _, s := range f.sent {
		if !acked(acks, s) {
			left = append(left, s)
		}
	}
	if len(left) == 0 {
		if n.locks.setFlight(u, nil) {
			n.sendPendingLocked(c, u)
		}
	} else if len(left) < len(f.sent) {
		n.locks.setFlight(u, &flight{to: c, sent: left, deadline: f.deadline})
	}
}

// sendPendingLocked reads u's pending versions and sends them to c: on
// attach, and after a flight ended with versions stored meanwhile (Store).
// REQUIRES: u's slot held.
func (n *Node) sendPendingLocked(c *client, u uuid.UUID) {
	pending, err := n.store.Pending(u)
	if err != nil {
		n.log.Error("reading pending versions", "uaid", u, "err", err)
		return
	}
	n.deliverLocked(c, u, pending)
}

func acked(acks []ackItem, s protocol.Update) bool {
	for _, a := range acks {
		if a.chid == s.ChannelID && a.version >= s.Version {
			return true
		}
	}
	return false
}

// ownerAckFlight is the seed's ACK for one UAID of a multi-UAID connection
// (or, with c nil, of a REST poller): every version sent to c in u's flight
// was received.
func (n *Node) ownerAckFlight(c *client, u uuid.UUID) {
	if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
		return
	}
	defer n.locks.release(u)
	f := n.locks.flightOf(u)
	if f == nil || f.to != c {
		return
	}
	sacks := make([]shardstore.Ack, len(f.sent))
	for i, s := range f.sent {
		sacks[i] = shardstore.Ack{Channel: s.ChannelID, Version: s.Version}
	}
	if err := n.store.Ack(u, sacks); err != nil {
		n.log.Error("ack", "uaid", u, "err", err)
		return
	}
	if n.locks.setFlight(u, nil) {
		if c != nil {
			n.sendPendingLocked(c, u)
		} else {
			n.waiters.wake(u) // a REST poller polls again
		}
	}
}

// ownerDetach forgets c as u's connection and ends a flight sent to it;
// unacknowledged versions stay pending for the next connection.
func (n *Node) ownerDetach(c *client, u uuid.UUID) {
	if !n.locks.acquire(u, false, time.Now().Add(opWait)) {
		return
	}
	defer n.locks.release(u)
	n.hub.remove(u, c)
	if f := n.locks.flightOf(u); f != nil && f.to == c {
		n.locks.setFlight(u, nil)
	}
}
