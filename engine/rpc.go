package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gobwas/ws"
	"github.com/google/uuid"

	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/shardstore"
)

// Calls between nodes (cluster.Transport). Edges call owners (put, hello,
// attach, register, unregister, set-kick, ack, ack-flight, detach,
// collect); owners call edges (deliver, close) and replicas (replicate,
// replica-ack, replica-unregister, replica-drop); a node taking over UAIDs calls the
// nodes that held them (export). Payloads are written in wire.go's form;
// the method byte says which.
const (
	mPut uint8 = iota + 1
	mHello
	mAttach
	mRegister
	mUnregister
	mSetKick
	mAck
	mAckFlight
	mDetach
	mCollect
	mDeliver
	mClose
	mReplicate
	mReplicaAck
	mReplicaUnregister
	mExport
	mPresence
	mStats
	mAdopt
	mReplicaDrop
)

// callTimeout bounds a call to another node. It covers a PUT's lock wait,
// its fsyncs and its replication, with room to spare.
const callTimeout = opWait

// deliverTimeout bounds an owner's wait for an edge to take an UPDATE;
// the owner holds the UAID's slot meanwhile.
const deliverTimeout = 2 * time.Second

// errNoNode: a call named a node that is not a member.
var errNoNode = errors.New("engine: no such node")

// errNotOwner answers an operation that would create state (a version, a
// registration, presence) for a UAID the node does not own in its member
// list: the caller's list is out of date, and the client or app server
// retries once the lists agree (within a second).
var errNotOwner = errors.New("not the owner of this UAID")

// call sends a request to node and waits for the answer.
func (n *Node) call(node string, method uint8, req []byte, timeout time.Duration) ([]byte, error) {
	addr, ok := n.view.Load().addrs[node]
	if !ok || n.tr == nil {
		return nil, fmt.Errorf("%w: %q", errNoNode, node)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n.metrics.calls.With(methodName(method)).Inc()
	return n.tr.Call(ctx, addr, method, req)
}

// callDeliver hands packet to a connection on another node.
func (n *Node) callDeliver(r *remoteConn, packet []protocol.UAIDUpdates) sendResult {
	var b wbuf
	b.u32(r.id)
	b.packet(packet) // never empty: its first UAID finds the connection
	resp, err := n.call(r.node, mDeliver, b, deliverTimeout)
	if err != nil {
		n.log.Debug("deliver: edge unavailable", "node", r.node, "err", err)
		return sendRefused
	}
	if len(resp) == 1 && sendResult(resp[0]) <= sendGone {
		return sendResult(resp[0])
	}
	return sendRefused
}

// callClose orders the connection of u on another node closed, without
// waiting.
func (n *Node) callClose(r *remoteConn, u uuid.UUID, code ws.StatusCode) {
	var b wbuf
	b.uuid(u)
	b.u32(r.id)
	b.u32(uint32(code))
	n.goAsync(func() {
		if _, err := n.call(r.node, mClose, b, deliverTimeout); err != nil {
			n.log.Debug("close: edge unavailable", "node", r.node, "err", err)
		}
	})
}

// serveCall is the cluster.Transport handler: it carries out a call from
// node from. It runs in its own goroutine.
func (n *Node) serveCall(_ context.Context, from string, method uint8, req []byte) ([]byte, error) {
	r := rbuf{b: req}
	var out wbuf
	switch method {
	case mPut:
		u, chid, wait := r.uuid(), r.uuid(), r.boolean()
		p := shardstore.Put{Auto: r.boolean(), Version: r.u64(), Now: r.u64(), Data: r.optBytes()}
		if err := r.err(); err != nil {
			return nil, err
		}
		if !n.ownsForCall(u) {
			return nil, errNotOwner
		}
		st, err := n.ownerPut(u, chid, p, wait)
		if err != nil {
			n.log.Error("put", "uaid", u, "err", err)
		}
		out.byte1(byte(st))
	case mHello:
		u, id := r.uuid(), r.u32()
		chids := make([]string, r.count(1))
		for i := range chids {
			chids[i] = r.str()
		}
		if err := r.err(); err != nil {
			return nil, err
		}
		if !n.ownsForCall(u) {
			return nil, errNotOwner
		}
		known, ok := n.ownerHello(remoteHolder(from, id), u, chids, nil)
		if !ok {
			return nil, errors.New("store unavailable")
		}
		out.boolean(known)
	case mAttach:
		id, uaids := r.u32(), r.uuids()
		if err := r.err(); err != nil {
			return nil, err
		}
		if n.leaving.Load() || n.anyRemote(uaids) {
			return nil, errNotOwner
		}
		if !n.attachMulti(remoteHolder(from, id), uaids) {
			return nil, errors.New("store unavailable")
		}
	case mRegister:
		u, chid := r.uuid(), r.uuid()
		if err := r.err(); err != nil {
			return nil, err
		}
		if !n.ownsForCall(u) {
			return nil, errNotOwner
		}
		status, err := n.ownerRegister(u, chid)
		out.u32(uint32(status))
		if err != nil {
			out.str(err.Error())
		} else {
			out.str("")
		}
	case mUnregister:
		u, chid := r.uuid(), r.uuid()
		if err := r.err(); err != nil {
			return nil, err
		}
		return nil, n.ownerUnregister(u, chid)
	case mSetKick:
		u, meta := r.uuid(), r.bytes()
		if err := r.err(); err != nil {
			return nil, err
		}
		if !n.ownsForCall(u) {
			return nil, errNotOwner
		}
		return nil, n.ownerSetKick(u, meta)
	case mAck:
		u, id := r.uuid(), r.u32()
		acks := make([]shardstore.Ack, r.count(24))
		for i := range acks {
			acks[i] = shardstore.Ack{Channel: r.uuid(), Version: r.u64()}
		}
		if err := r.err(); err != nil {
			return nil, err
		}
		if _, local := n.ownerOf(u); !local {
			return nil, errNotOwner
		}
		n.ownerAck(remoteHolder(from, id), u, acks)
	case mAckFlight, mDetach:
		id, uaids := r.u32(), r.uuids()
		if err := r.err(); err != nil {
			return nil, err
		}
		h := holder{}
		if id != 0 {
			h = remoteHolder(from, id)
		}
		// UAIDs this node does not own go back to the caller, which
		// carries them to their owner.
		var moved []uuid.UUID
		for _, u := range uaids {
			switch _, local := n.ownerOf(u); {
			case !local:
				moved = append(moved, u)
			case method == mAckFlight:
				n.ownerAckFlight(h, u)
			default:
				n.ownerDetach(h, u)
			}
		}
		out.uuids(moved)
	case mCollect:
		uaids := r.uuids()
		if err := r.err(); err != nil {
			return nil, err
		}
		out.packet(n.ownerCollect(uaids))
	case mDeliver:
		id, packet := r.u32(), r.packet()
		if err := r.err(); err != nil {
			return nil, err
		}
		var c *client
		if len(packet) > 0 {
			c = n.edges.get(packet[0].UAID, id)
		}
		switch {
		case c == nil:
			out.byte1(byte(sendGone))
		case !c.closing.Load() && c.enqueue(n, job{kind: jobDeliver, packet: packet}):
			out.byte1(byte(sendOK))
		default:
			out.byte1(byte(sendRefused))
		}
	case mClose:
		u, id, code := r.uuid(), r.u32(), r.u32()
		if err := r.err(); err != nil {
			return nil, err
		}
		if c := n.edges.get(u, id); c != nil {
			c.closeWith(n, ws.StatusCode(code), "superseded by a newer connection")
		}
	default:
		return n.serveClusterCall(from, method, &r)
	}
	return out, nil
}

// ownsForCall reports whether this node takes a call that adds state for
// u: it owns u and is not leaving.
func (n *Node) ownsForCall(u uuid.UUID) bool {
	_, local := n.ownerOf(u)
	return local && !n.leaving.Load()
}

// methodName names a call method in metrics and logs.
func methodName(m uint8) string {
	names := [...]string{mPut: "put", mHello: "hello", mAttach: "attach", mRegister: "register",
		mUnregister: "unregister", mSetKick: "set_kick", mAck: "ack", mAckFlight: "ack_flight",
		mDetach: "detach", mCollect: "collect", mDeliver: "deliver", mClose: "close",
		mReplicate: "replicate", mReplicaAck: "replica_ack", mReplicaUnregister: "replica_unregister",
		mExport: "export", mPresence: "presence", mStats: "stats", mAdopt: "adopt", mReplicaDrop: "replica_drop"}
	if int(m) < len(names) && names[m] != "" {
		return names[m]
	}
	return "unknown"
}
