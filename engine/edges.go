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
// connection on this node, the connection. Owners on other nodes name a
// connection by (node, id) (remoteConn) and reach it through this table;
// an owner that takes over UAIDs asks every edge which of them it holds.
// Only clustered nodes fill it, so a standalone node pays nothing.
type edgeTable struct {
	on      bool // set once, before the node serves
	next    atomic.Uint32
	stripes [edgeStripes]struct {
		mu sync.Mutex
		m  map[uuid.UUID]*client // guarded by mu
	}
}

// edgeConn is one (UAID, connection id) pair an edge holds.
type edgeConn struct {
	uaid uuid.UUID
	id   uint32
}

// id returns c's id, giving it one if it has none. Called by the worker
// carrying out c's mailbox, before c is shared through the table.
func (t *edgeTable) id(c *client) uint32 {
	for c.id == 0 {
		// Ids wrap after 2^32 connections; 0 means none.
		c.id = t.next.Add(1)
	}
	return c.id
}

// add records c as the connection of u and returns c's id. Called by c's
// worker.
func (t *edgeTable) add(c *client, u uuid.UUID) uint32 {
	id := t.id(c)
	if !t.on {
		return id
	}
	s := &t.stripes[uaidHash(u)%edgeStripes]
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[uuid.UUID]*client)
	}
	s.m[u] = c
	s.mu.Unlock()
	return id
}

// get returns the connection of u if its id is id, nil otherwise.
func (t *edgeTable) get(u uuid.UUID, id uint32) *client {
	s := &t.stripes[uaidHash(u)%edgeStripes]
	s.mu.Lock()
	c := s.m[u]
	s.mu.Unlock()
	if c == nil || c.id != id {
		return nil
	}
	return c
}

// remove forgets u if c still holds it. Called by c's worker.
func (t *edgeTable) remove(c *client, u uuid.UUID) {
	if !t.on {
		return
	}
	s := &t.stripes[uaidHash(u)%edgeStripes]
	s.mu.Lock()
	if s.m[u] == c {
		delete(s.m, u)
	}
	s.mu.Unlock()
}

// in returns the pairs whose UAID's ring partition is in parts.
func (t *edgeTable) in(parts map[int]bool) []edgeConn {
	var out []edgeConn
	for i := range t.stripes {
		s := &t.stripes[i]
		s.mu.Lock()
		for u, c := range s.m {
			if parts[cluster.PartitionOf(shardstore.RingHash(u))] {
				out = append(out, edgeConn{uaid: u, id: c.id})
			}
		}
		s.mu.Unlock()
	}
	return out
}
