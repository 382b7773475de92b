package engine

import (
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/pushd/pushd/cluster"
	"github.com/pushd/pushd/shardstore"
)

const edgeStripes = 256

// edgeTable is the edge side of presence in a cluster: for each UAID with a
// connection on this node, the connection (more than one while a newer
// connection's hello is on its way to the owner, which then closes the
// older one). Owners on other nodes name a
// connection by (node, id) (remoteConn) and reach it through this table;
// an owner that takes over UAIDs asks every edge which of them it holds.
// Only clustered nodes fill it, so a standalone node pays nothing.
type edgeTable struct {
	on      bool // set once, before the node serves
	next    atomic.Uint32
	stripes [edgeStripes]struct {
		mu sync.Mutex
		m  map[edgeConn]*client // guarded by mu
	}
}

// edgeConn is one (UAID, connection id) pair an edge holds.
type edgeConn struct {
	uaid uuid.UUID
	id   uint32
}

// id returns c's id, giving it one if it has none. Called by the goroutine
// draining c's mailbox, before c is shared through the table.
func (t *edgeTable) id(c *client) uint32 {
	for c.id == 0 {
		// Ids wrap after 2^32 connections; 0 means none.
		c.id = t.next.Add(1)
	}
	return c.id
}

// add records c as the connection of u and returns c's id. Called by the
// goroutine draining c's mailbox.
func (t *edgeTable) add(c *client, u uuid.UUID) uint32 {
	id := t.id(c)
	if !t.on {
		return id
	}
	s := &t.stripes[uaidHash(u)%edgeStripes]
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[edgeConn]*client)
	}
	s.m[edgeConn{u, id}] = c
	s.mu.Unlock()
	return id
}

// get returns the connection with id that holds u, nil if none.
func (t *edgeTable) get(u uuid.UUID, id uint32) *client {
	s := &t.stripes[uaidHash(u)%edgeStripes]
	s.mu.Lock()
	c := s.m[edgeConn{u, id}]
	s.mu.Unlock()
	return c
}

// remove forgets c as a connection of u. Called by the goroutine draining
// c's mailbox.
func (t *edgeTable) remove(c *client, u uuid.UUID) {
	if !t.on || c.id == 0 {
		return
	}
	s := &t.stripes[uaidHash(u)%edgeStripes]
	s.mu.Lock()
	delete(s.m, edgeConn{u, c.id})
	s.mu.Unlock()
}

// in returns, for each UAID whose ring partition is in parts, the newest
// open connection that holds it (an older one is about to be closed by
// the newer one's hello).
func (t *edgeTable) in(parts map[int]bool) []edgeConn {
	newest := make(map[uuid.UUID]uint32)
	for i := range t.stripes {
		s := &t.stripes[i]
		s.mu.Lock()
		for ec, c := range s.m {
			if c.closing.Load() || !parts[cluster.PartitionOf(shardstore.RingHash(ec.uaid))] {
				continue
			}
			if id, ok := newest[ec.uaid]; !ok || ec.id > id {
				newest[ec.uaid] = ec.id
			}
		}
		s.mu.Unlock()
	}
	out := make([]edgeConn, 0, len(newest))
	for u, id := range newest {
		out = append(out, edgeConn{uaid: u, id: id})
	}
	return out
}
