package engine

import (
	"github.com/google/uuid"

	"github.com/pushd/pushd/internal/protocol"
)

// holder is a UAID's connection as the UAID's owner sees it: a client of
// this node (c), a connection held by another node (r), or, as the zero
// value, nobody (also the "connection" of a REST poller's flight).
type holder struct {
	c *client
	r *remoteConn
}

// remoteConn names a connection on another node: the node and the
// connection's id there. It is immutable.
type remoteConn struct {
	node string
	id   uint32
}

func localHolder(c *client) holder { return holder{c: c} }

func remoteHolder(node string, id uint32) holder {
	return holder{r: &remoteConn{node: node, id: id}}
}

// none reports whether h names no connection.
func (h holder) none() bool { return h.c == nil && h.r == nil }

// is reports whether h and o name the same connection.
func (h holder) is(o holder) bool {
	switch {
	case h.c != nil || o.c != nil:
		return h.c == o.c
	case h.r != nil && o.r != nil:
		return *h.r == *o.r
	default:
		return h.r == nil && o.r == nil
	}
}

// sendResult is what became of an UPDATE given to a holder.
type sendResult uint8

// The values travel in the deliver call's answer.
const (
	sendRefused sendResult = iota // the connection is closing or unreachable
	sendOK                        // handed to the connection
	sendGone                      // its node holds no such connection
)

// sendTo writes one UPDATE to h: packet holds the versions of one UAID
// for a single-UAID connection, of up to multiBatch UAIDs for a multi-UAID
// one. Called by owners with the UAIDs' slots held; a remote connection is
// reached through its node, which queues the message in the connection's
// mailbox, behind the message being carried out (so a hello's answer
// always precedes the versions its owner sends).
func (n *Node) sendTo(h holder, packet []protocol.UAIDUpdates) sendResult {
	switch {
	case h.c != nil:
		if h.c.closing.Load() {
			// Its detach is on its way (or was dropped): the UAID is
			// offline now, as it is for a connection on another node
			// that has gone.
			return sendGone
		}
		if h.c.sendText(n, encodeUpdate(h.c, packet)) {
			return sendOK
		}
	case h.r != nil:
		return n.callDeliver(h.r, packet)
	}
	return sendRefused
}

// encodeUpdate formats packet for c: the seed's UPDATE for a multi-UAID
// connection, a notification otherwise.
func encodeUpdate(c *client, packet []protocol.UAIDUpdates) []byte {
	if c.multi {
		return protocol.AppendUpdate(nil, packet)
	}
	var ups []protocol.Update
	for _, p := range packet {
		ups = append(ups, p.Updates...)
	}
	return protocol.AppendNotification(nil, ups)
}

// supersede closes h with 4001: a newer connection said hello with u, one
// of its UAIDs.
func (n *Node) supersede(h holder, u uuid.UUID) {
	n.metrics.superseded.Inc()
	switch {
	case h.c != nil:
		h.c.closeWith(n, closeSuperseded, "superseded by a newer connection")
	case h.r != nil:
		n.callClose(h.r, u, closeSuperseded)
	}
}

// packetOf is the one-UAID packet of u's pending versions.
func packetOf(u uuid.UUID, ups []protocol.Update) []protocol.UAIDUpdates {
	return []protocol.UAIDUpdates{{UAID: u, Updates: ups}}
}
