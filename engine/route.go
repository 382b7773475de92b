package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/shardstore"
)

// This file is the edge side of every owner operation: it finds the UAID's
// owner on the ring and carries the operation out there, in this process
// when the owner is this node, through a call (rpc.go) otherwise. A single
// node is a cluster of one and takes the same path.

// errOwnerUnavailable: the UAID's owner could not be reached.
var errOwnerUnavailable = errors.New("engine: owner unavailable")

// Put records a version event for (uaid, chid) at the UAID's owner: it
// waits up to the lock wait for an in-flight UPDATE of the UAID to be
// acknowledged, makes the version durable (on the configured number of
// replicas), and delivers every pending version of the UAID to its
// connection if it has one.
func (n *Node) Put(u, chid uuid.UUID, p shardstore.Put) (PutStatus, error) {
	return n.routePut(u, chid, p, true)
}

// Store records a version event like Put, but does not wait for an
// in-flight UPDATE: a version stored meanwhile stays pending and is sent as
// soon as the client acknowledges the flight. A relay stores what its
// upstream sends this way, so that its own device's pace never holds up
// the upstream ack. It answers PutStored for a version left pending.
func (n *Node) Store(u, chid uuid.UUID, p shardstore.Put) (PutStatus, error) {
	return n.routePut(u, chid, p, false)
}

func (n *Node) routePut(u, chid uuid.UUID, p shardstore.Put, wait bool) (PutStatus, error) {
	owner, local := n.ownerOf(u)
	if local {
		return n.ownerPut(u, chid, p, wait)
	}
	var b wbuf
	b.uuid(u)
	b.uuid(chid)
	b.boolean(wait)
	b.boolean(p.Auto)
	b.u64(p.Version)
	b.u64(p.Now)
	b.optBytes(p.Data)
	resp, err := n.call(owner, mPut, b, callTimeout)
	if err != nil {
		return PutFailed, fmt.Errorf("%w: %s: %w", errOwnerUnavailable, owner, err)
	}
	r := rbuf{b: resp}
	st := PutStatus(r.byte1())
	if err := r.err(); err != nil || st > PutFailed {
		return PutFailed, fmt.Errorf("%w: %s: bad answer", errOwnerUnavailable, owner)
	}
	if st == PutFailed {
		return PutFailed, fmt.Errorf("%w: %s: store failure", ErrStore, owner)
	}
	return st, nil
}

// ownerPut is Put (wait) or Store at the owner.
func (n *Node) ownerPut(u, chid uuid.UUID, p shardstore.Put, wait bool) (PutStatus, error) {
	deadline := time.Now().Add(opWait)
	if wait {
		deadline = time.Now().Add(n.cfg.LockWait)
	}
	if !n.acquire(u, wait, deadline) {
		return PutBusy, nil
	}
	defer n.locks.release(u)
	if n.leaving.Load() {
		// Its records may be pushed already: let the new owner take it.
		return PutFailed, errNotOwner
	}
	return n.putLocked(u, chid, p)
}

// routeHello attaches c as the connection of u at u's owner (see
// ownerHello). attached runs once the UAID is attached and before any of
// its versions reach c.
func (n *Node) routeHello(c *client, u uuid.UUID, channelIDs []string, attached func()) (known, ok bool) {
	id := n.edges.add(c, u)
	defer func() {
		if !known || !ok {
			n.edges.remove(c, u)
		}
	}()
	owner, local := n.ownerOf(u)
	if local {
		return n.ownerHello(localHolder(c), u, channelIDs, attached)
	}
	var b wbuf
	b.uuid(u)
	b.u32(id)
	b.uvarint(len(channelIDs))
	for _, s := range channelIDs {
		b.str(s)
	}
	resp, err := n.call(owner, mHello, b, callTimeout)
	if err != nil {
		n.log.Warn("hello: owner unavailable", "uaid", u, "owner", owner, "err", err)
		return false, false
	}
	r := rbuf{b: resp}
	known = r.boolean()
	if r.err() != nil {
		return false, false
	}
	// The owner's versions for c were queued behind this message: the
	// hello answer goes first.
	if known {
		attached()
	}
	return known, true
}

// routeAttach attaches the UAIDs of a multi-UAID connection at their
// owners and has their pending versions sent.
func (n *Node) routeAttach(c *client, uaids []uuid.UUID) bool {
	for _, u := range uaids {
		n.edges.add(c, u)
	}
	ok := true
	for owner, group := range n.byOwner(uaids) {
		if owner == "" {
			ok = n.attachMulti(localHolder(c), group) && ok
			continue
		}
		var b wbuf
		b.u32(n.edges.id(c))
		b.uuids(group)
		if _, err := n.call(owner, mAttach, b, callTimeout); err != nil {
			n.log.Warn("hello: owner unavailable", "owner", owner, "err", err)
			ok = false
		}
	}
	return ok
}

// register registers (u, chid) at u's owner (and upstream, on a relay)
// and returns its endpoint, or the status to answer and an error.
func (n *Node) register(u, chid uuid.UUID) (string, int, error) {
	if status, err := n.routeRegister(u, chid); err != nil {
		return "", status, err
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

func (n *Node) routeRegister(u, chid uuid.UUID) (int, error) {
	owner, local := n.ownerOf(u)
	if local {
		return n.ownerRegister(u, chid)
	}
	var b wbuf
	b.uuid(u)
	b.uuid(chid)
	resp, err := n.call(owner, mRegister, b, callTimeout)
	if err != nil {
		n.log.Warn("register: owner unavailable", "uaid", u, "owner", owner, "err", err)
		return protocol.StatusServerFailure, errors.New("server error")
	}
	r := rbuf{b: resp}
	status, msg := int(r.u32()), r.str()
	if r.err() != nil {
		return protocol.StatusServerFailure, errors.New("server error")
	}
	if status != protocol.StatusOK {
		return status, errors.New(msg)
	}
	return status, nil
}

// unregisterChannel drops (u, chid) at u's owner (and upstream, on a
// relay). Failures are logged: unregister always answers success.
func (n *Node) unregisterChannel(u, chid uuid.UUID) {
	owner, local := n.ownerOf(u)
	var err error
	if local {
		err = n.ownerUnregister(u, chid)
	} else {
		var b wbuf
		b.uuid(u)
		b.uuid(chid)
		_, err = n.call(owner, mUnregister, b, callTimeout)
	}
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

// routeSetKick stores u's kick target at its owner.
func (n *Node) routeSetKick(u uuid.UUID, meta []byte) error {
	owner, local := n.ownerOf(u)
	if local {
		return n.ownerSetKick(u, meta)
	}
	var b wbuf
	b.uuid(u)
	b.bytes(meta)
	_, err := n.call(owner, mSetKick, b, callTimeout)
	return err
}

// notOwnerRetries and notOwnerBackoff bound how an ack or detach chases a
// UAID whose owner changed while it was on its way.
const (
	notOwnerRetries = 3
	notOwnerBackoff = 300 * time.Millisecond
)

// isNotOwner reports whether err is a node's errNotOwner answer.
func isNotOwner(err error) bool {
	var re *cluster.RemoteError
	return errors.As(err, &re) && re.Msg == errNotOwner.Error()
}

// routeAck carries a single-UAID connection's ack to u's owner.
func (n *Node) routeAck(c *client, u uuid.UUID, acks []shardstore.Ack) {
	var b wbuf
	b.uuid(u)
	b.u32(n.edges.id(c))
	b.uvarint(len(acks))
	for _, a := range acks {
		b.uuid(a.Channel)
		b.u64(a.Version)
	}
	for try := range notOwnerRetries {
		if try > 0 {
			time.Sleep(notOwnerBackoff)
		}
		owner, local := n.ownerOf(u)
		if local {
			n.ownerAck(localHolder(c), u, acks)
			return
		}
		_, err := n.call(owner, mAck, b, callTimeout)
		if err == nil {
			return
		}
		if !isNotOwner(err) {
			n.log.Warn("ack: owner unavailable", "uaid", u, "owner", owner, "err", err)
			return
		}
	}
}

// routeAckFlight carries the seed's ACK of uaids, from a multi-UAID
// connection or (c nil) a REST poller, to their owners.
// A UAID named twice is acknowledged once: every copy would queue on its
// slot.
func (n *Node) routeAckFlight(c *client, uaids []uuid.UUID) {
	slices.SortFunc(uaids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	n.eachOwner(c, slices.Compact(uaids), mAckFlight, n.ownerAckFlight)
}

// routeDetach tells the owners of uaids that c closed.
func (n *Node) routeDetach(c *client, uaids []uuid.UUID) {
	n.eachOwner(c, uaids, mDetach, n.ownerDetach)
}

// eachOwner carries out op for every UAID at its owner, one call per
// owner node, chasing UAIDs whose owner changed on the way (the called
// node answers the ones it does not own).
func (n *Node) eachOwner(c *client, uaids []uuid.UUID, method uint8, op func(holder, uuid.UUID)) {
	for try := 0; try < notOwnerRetries && len(uaids) > 0; try++ {
		if try > 0 {
			time.Sleep(notOwnerBackoff)
		}
		var moved []uuid.UUID
		for owner, group := range n.byOwner(uaids) {
			if owner == "" {
				h := holder{}
				if c != nil {
					h = localHolder(c)
				}
				for _, u := range group {
					op(h, u)
				}
				continue
			}
			var b wbuf
			var id uint32
			if c != nil {
				id = n.edges.id(c)
			}
			b.u32(id)
			b.uuids(group)
			resp, err := n.call(owner, method, b, callTimeout)
			if err != nil {
				n.log.Warn("owner unavailable", "owner", owner, "method", methodName(method), "err", err)
				continue
			}
			r := rbuf{b: resp}
			back := r.uuids()
			if r.err() == nil {
				moved = append(moved, back...)
			}
		}
		uaids = moved
	}
}

// routeCollect gathers, at their owners, the pending versions of uaids
// not in flight and puts them in flight to a REST poller.
func (n *Node) routeCollect(uaids []uuid.UUID) []protocol.UAIDUpdates {
	var packet []protocol.UAIDUpdates
	for owner, group := range n.byOwner(uaids) {
		if owner == "" {
			packet = append(packet, n.ownerCollect(group)...)
			continue
		}
		var b wbuf
		b.uuids(group)
		resp, err := n.call(owner, mCollect, b, callTimeout)
		if err != nil {
			n.log.Warn("poll: owner unavailable", "owner", owner, "err", err)
			continue
		}
		r := rbuf{b: resp}
		p := r.packet()
		if r.err() == nil {
			packet = append(packet, p...)
		}
	}
	return packet
}

// byOwner groups uaids by owner node; this node's are under "".
func (n *Node) byOwner(uaids []uuid.UUID) map[string][]uuid.UUID {
	groups := make(map[string][]uuid.UUID)
	for _, u := range uaids {
		owner, local := n.ownerOf(u)
		if local {
			owner = ""
		}
		groups[owner] = append(groups[owner], u)
	}
	return groups
}
