package engine

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/shardstore"
)

// This file holds the owner operations: everything that reads or changes a
// UAID's stored state or presence, carried out by the node that owns the
// UAID (route.go brings them there). Each runs with the UAID's lock slot
// held, off the event loops (in a worker, an HTTP handler or a call from
// another node), and may block on the store. Connections are named by
// holders (holder.go), so a connection on another node is served exactly
// like one of this node.

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

// putLocked stores a version event and delivers or queues it.
//
// A new version is written to the device's connection while its store
// write is being synced, so the notification does not wait for the fsync:
// the answer to the app server (and the replication) still does. If the
// sync then fails the PUT is answered with an error, and the device may
// hold a version the store lost; the failure fails the store, so a retry
// is accepted only elsewhere or after a restart, and clients ignore
// versions they already have (PROTOCOL.md 6.4). The
// device's ack, which may come back before the sync ends, is queued on u's
// slot (ownerAck) and carried out after the commit and the replication, so
// it never clears a version that is not yet stored.
// REQUIRES: u's slot held.
func (n *Node) putLocked(u, chid uuid.UUID, p shardstore.Put) (PutStatus, error) {
	res, w, err := n.store.PreparePut(u, chid, p)
	if err != nil {
		return PutFailed, fmt.Errorf("%w: put: %w", ErrStore, err)
	}
	switch res.Outcome {
	case shardstore.PutNotRegistered:
		return PutNotFound, nil
	case shardstore.PutStale:
		// A stale version may be the retry of one whose replication
		// failed (answered 503 but stored here): it is replicated again
		// too, then answered as the accepted PUT was answered, and what
		// is pending is sent if nothing is in flight (the retry case).
		if err := n.replicate(u, []uuid.UUID{chid}, false); err != nil {
			return PutFailed, err
		}
		h := n.hub.get(u)
		if h.none() {
			return PutStored, nil
		}
		if n.locks.flightOf(u) == nil {
			n.sendPendingLocked(h, u)
		}
		return PutDelivered, nil
	}
	status := PutStored
	h := n.hub.get(u)
	// In flight (only via Store): sent after the ack; else sent now.
	if !h.none() && !n.locks.markDirty(u) && n.deliverLocked(h, u, res.Pending) {
		status = PutDelivered
	}
	if err := w.Commit(); err != nil {
		if status == PutDelivered {
			n.locks.setFlight(u, nil) // nothing stored to wait for
		}
		return PutFailed, fmt.Errorf("%w: put: %w", ErrStore, err)
	}
	if err := n.replicate(u, []uuid.UUID{chid}, false); err != nil {
		return PutFailed, err
	}
	if h.none() {
		n.offline(u)
	}
	return status, nil
}

// offline wakes REST pollers and kicks the device: u got a version while
// no connection holds it.
func (n *Node) offline(u uuid.UUID) {
	n.waiters.wake(u)
	n.maybeKick(u)
}

// deliverLocked sends pending, every pending version of u, to h and puts u
// in flight. It reports whether an UPDATE was written.
// REQUIRES: u's slot held.
func (n *Node) deliverLocked(h holder, u uuid.UUID, pending []shardstore.Channel) bool {
	if len(pending) == 0 {
		return false
	}
	updates := toUpdates(pending)
	switch n.sendTo(h, packetOf(u, updates)) {
	case sendGone:
		// Presence left behind by a lost detach: forget it.
		n.hub.remove(u, h)
		n.offline(u)
		return false
	case sendRefused:
		return false
	}
	n.metrics.notifications.Inc()
	n.startFlight(u, h, updates)
	return true
}

func toUpdates(chans []shardstore.Channel) []protocol.Update {
	ups := make([]protocol.Update, len(chans))
	for i, ch := range chans {
		ups[i] = protocol.Update{ChannelID: ch.ID, Version: ch.Pending, Data: ch.Data}
	}
	return ups
}

// ownerHello attaches h as the connection of u, calls attached (when not
// nil) and sends u's pending versions. known is false, and nothing
// attached, when the server holds no registration for one of channelIDs:
// the client's state was lost and it starts over with a fresh UAID. ok is
// false when the store failed.
func (n *Node) ownerHello(h holder, u uuid.UUID, channelIDs []string, attached func()) (known, ok bool) {
	if !n.acquire(u, false, time.Now().Add(opWait)) {
		return false, false
	}
	defer n.locks.release(u)
	if len(channelIDs) > 0 {
		known, err := n.knowsChannels(u, channelIDs)
		if err != nil {
			n.log.Error("hello: reading channels", "uaid", u, "err", err)
			return false, false
		}
		if !known {
			n.metrics.uaidResets.Inc()
			return false, true
		}
	}
	n.attachLocked(h, u)
	n.touchLocked(u)
	if attached != nil {
		attached()
	}
	n.flushLocked(h, u)
	return true, true
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

// attachLocked makes h the connection of u; the newest connection wins and
// the one it replaces is closed with 4001.
// REQUIRES: u's slot held.
func (n *Node) attachLocked(h holder, u uuid.UUID) {
	prev := n.hub.set(u, h)
	if !prev.none() && !prev.is(h) {
		n.supersede(prev, u)
	}
}

// flushLocked sends u's pending versions to h on its first attach, taking
// over a flight to an older connection.
// REQUIRES: u's slot held.
func (n *Node) flushLocked(h holder, u uuid.UUID) {
	if f := n.locks.flightOf(u); f != nil {
		if f.to.is(h) {
			return
		}
		n.locks.setFlight(u, nil)
	}
	n.sendPendingLocked(h, u)
}

// attachMulti attaches newly named UAIDs of a multi-UAID connection and
// sends their pending versions as UPDATE packets of at most multiBatch
// UAIDs. It reports false if a UAID could not be attached (the store is
// stuck).
func (n *Node) attachMulti(h holder, uaids []uuid.UUID) bool {
	var packet []protocol.UAIDUpdates
	flush := func() {
		if len(packet) == 0 {
			return
		}
		if n.sendTo(h, packet) == sendOK {
			n.metrics.notifications.Inc()
		} else {
			n.unsent(h, packet)
		}
		packet = packet[:0]
	}
	defer flush()
	for _, u := range uaids {
		if !n.acquire(u, false, time.Now().Add(opWait)) {
			return false
		}
		n.attachLocked(h, u)
		n.touchLocked(u)
		if f := n.locks.flightOf(u); f != nil && !f.to.is(h) {
			n.locks.setFlight(u, nil) // taken over from an older connection
		}
		pending, err := n.store.Pending(u)
		if err != nil {
			n.log.Error("hello: reading pending versions", "uaid", u, "err", err)
		}
		if len(pending) > 0 {
			ups := toUpdates(pending)
			packet = append(packet, protocol.UAIDUpdates{UAID: u, Updates: ups})
			n.startFlight(u, h, ups)
		}
		n.locks.release(u)
		if len(packet) >= multiBatch {
			flush()
		}
	}
	return true
}

// unsent ends the flights that attachMulti started for a packet h did not
// take; the versions stay pending for the next connection.
func (n *Node) unsent(h holder, packet []protocol.UAIDUpdates) {
	for _, p := range packet {
		if n.locks.acquire(p.UAID, false, time.Now().Add(opWait)) {
			if f := n.locks.flightOf(p.UAID); f != nil && f.to.is(h) {
				n.locks.setFlight(p.UAID, nil)
			}
			n.locks.release(p.UAID)
		}
	}
}

// ownerRegister registers (u, chid) and returns the status to answer and
// an error.
func (n *Node) ownerRegister(u, chid uuid.UUID) (int, error) {
	if !n.acquire(u, false, time.Now().Add(opWait)) {
		return protocol.StatusServerFailure, errors.New("server busy")
	}
	defer n.locks.release(u)
	_, err := n.store.Register(u, chid)
	if err == nil {
		// A first registration starts the UAID's clock; the seen record
		// goes to the replicas with it.
		touched := n.touchLocal(u)
		err = n.replicate(u, []uuid.UUID{chid}, touched)
	}
	switch {
	case errors.Is(err, shardstore.ErrTooManyChannels):
		return protocol.StatusTooManyChans, errors.New("too many channels")
	case err != nil:
		n.log.Error("register", "uaid", u, "err", err)
		return protocol.StatusServerFailure, errors.New("server error")
	}
	return protocol.StatusOK, nil
}

// endpoint is the push endpoint URL of (u, chid).
func (n *Node) endpoint(u, chid uuid.UUID) string {
	return n.cfg.EndpointURL + "/update/" + n.keys.Seal(u, chid)
}

// ownerUnregister ends (u, chid) and sends its tombstone to u's replicas,
// where it beats their copy of the registration (shardstore.Import).
func (n *Node) ownerUnregister(u, chid uuid.UUID) error {
	if !n.acquire(u, false, time.Now().Add(opWait)) {
		return errors.New("server busy")
	}
	defer n.locks.release(u)
	if err := n.store.Unregister(u, chid); err != nil {
		return err
	}
	return n.replicate(u, []uuid.UUID{chid}, false)
}

// ownerSetKick stores u's kick target (meta), writing only what changed:
// Firefox OS repeats its wake-up address in every hello.
func (n *Node) ownerSetKick(u uuid.UUID, meta []byte) error {
	if !n.acquire(u, false, time.Now().Add(opWait)) {
		return errors.New("server busy")
	}
	defer n.locks.release(u)
	if old, err := n.store.Meta(u); err == nil && bytes.Equal(old, meta) {
		return nil
	}
	if err := n.store.SetMeta(u, meta); err != nil {
		return err
	}
	return n.replicate(u, nil, true)
}

// ownerAck clears acknowledged versions of a single-UAID connection and
// ends u's flight once every version sent in it is acknowledged. It does
// not wait for u's slot: while an operation of u runs (a PUT's synced
// write), the ack is queued on the slot and carried out when it ends.
func (n *Node) ownerAck(h holder, u uuid.UUID, acks []shardstore.Ack) {
	n.do(u, false, func() { n.ackLocked(h, u, acks) })
}

// REQUIRES: u's slot held.
func (n *Node) ackLocked(h holder, u uuid.UUID, acks []shardstore.Ack) {
	cleared, err := n.store.Ack(u, acks)
	if err != nil {
		n.log.Error("ack", "uaid", u, "err", err)
		return
	}
	if cleared > 0 { // an ack of nothing pending is not worth a call
		n.replicateAck(u, acks)
	}
	f := n.locks.flightOf(u)
	if f == nil || !f.to.is(h) {
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
			n.sendPendingLocked(h, u)
		}
	} else if len(left) < len(f.sent) {
		n.locks.setFlight(u, &flight{to: h, sent: left, deadline: f.deadline})
	}
}

// sendPendingLocked reads u's pending versions and sends them to h: on
// attach, and after a flight ended with versions stored meanwhile (Store).
// REQUIRES: u's slot held.
func (n *Node) sendPendingLocked(h holder, u uuid.UUID) {
	pending, err := n.store.Pending(u)
	if err != nil {
		n.log.Error("reading pending versions", "uaid", u, "err", err)
		return
	}
	n.deliverLocked(h, u, pending)
}

func acked(acks []shardstore.Ack, s protocol.Update) bool {
	for _, a := range acks {
		if a.Channel == s.ChannelID && a.Version >= s.Version {
			return true
		}
	}
	return false
}

// ownerAckFlight is the seed's ACK for one UAID of a multi-UAID connection
// (or, with the zero holder, of a REST poller): every version sent to h in
// u's flight was received. Like ownerAck it is queued on a held slot.
func (n *Node) ownerAckFlight(h holder, u uuid.UUID) {
	n.do(u, false, func() { n.ackFlightLocked(h, u) })
}

// REQUIRES: u's slot held.
func (n *Node) ackFlightLocked(h holder, u uuid.UUID) {
	f := n.locks.flightOf(u)
	if f == nil || !f.to.is(h) {
		return
	}
	sacks := make([]shardstore.Ack, len(f.sent))
	for i, s := range f.sent {
		sacks[i] = shardstore.Ack{Channel: s.ChannelID, Version: s.Version}
	}
	cleared, err := n.store.Ack(u, sacks)
	if err != nil {
		n.log.Error("ack", "uaid", u, "err", err)
		return
	}
	if cleared > 0 {
		n.replicateAck(u, sacks)
	}
	if n.locks.setFlight(u, nil) {
		if !h.none() {
			n.sendPendingLocked(h, u)
		} else {
			n.waiters.wake(u) // a REST poller polls again
		}
	}
}

// ownerDetach forgets h as u's connection and ends a flight sent to it;
// unacknowledged versions stay pending for the next connection. Like
// ownerAck it is queued on a held slot, so a closing connection does not
// hold up a worker, but never dropped: a presence left behind would keep
// PUTs from kicking the device.
func (n *Node) ownerDetach(h holder, u uuid.UUID) {
	n.do(u, true, func() {
		if n.hub.remove(u, h) {
			n.touchClosed(u)
		}
		if f := n.locks.flightOf(u); f != nil && f.to.is(h) {
			n.locks.setFlight(u, nil)
		}
	})
}

// ownerCollect gathers the pending versions of the UAIDs that are not in
// flight and puts those UAIDs in flight to a REST poller.
func (n *Node) ownerCollect(uaids []uuid.UUID) []protocol.UAIDUpdates {
	var packet []protocol.UAIDUpdates
	for _, u := range uaids {
		if !n.acquire(u, false, time.Now().Add(opWait)) {
			continue
		}
		n.touchLocked(u)
		if n.locks.flightOf(u) == nil {
			pending, err := n.store.Pending(u)
			if err != nil {
				n.log.Error("poll: reading pending versions", "uaid", u, "err", err)
			}
			if len(pending) > 0 {
				ups := toUpdates(pending)
				packet = append(packet, protocol.UAIDUpdates{UAID: u, Updates: ups})
				n.startFlight(u, holder{}, ups)
			}
		}
		n.locks.release(u)
	}
	return packet
}
