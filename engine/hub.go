package engine

import (
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
)

const hubStripes = 256

// hub maps each UAID connected to this node to its connection: presence.
// Writers hold the UAID's slot in the lock table, so the hub and the store
// change together; readers may look up without it.
type hub struct {
	stripes [hubStripes]hubStripe
	n       atomic.Int64
}

type hubStripe struct {
	mu sync.RWMutex
	// m: guarded by mu.
	m map[uuid.UUID]*client
}

func newHub() *hub {
	h := &hub{}
	for i := range h.stripes {
		h.stripes[i].m = make(map[uuid.UUID]*client)
	}
	return h
}

func (h *hub) stripe(u uuid.UUID) *hubStripe {
	return &h.stripes[uaidHash(u)%hubStripes]
}

// get returns the connection holding u, nil if none.
func (h *hub) get(u uuid.UUID) *client {
	s := h.stripe(u)
	s.mu.RLock()
	c := s.m[u]
	s.mu.RUnlock()
	return c
}

// set makes c the connection of u and returns the one it replaced (nil if
// none, or c itself when it already held u).
// REQUIRES: u's lock slot held.
func (h *hub) set(u uuid.UUID, c *client) (prev *client) {
	s := h.stripe(u)
	s.mu.Lock()
	prev = s.m[u]
	s.m[u] = c
	s.mu.Unlock()
	if prev == nil {
		h.n.Add(1)
	}
	return prev
}

// remove forgets u if c still holds it.
// REQUIRES: u's lock slot held.
func (h *hub) remove(u uuid.UUID, c *client) bool {
	s := h.stripe(u)
	s.mu.Lock()
	ok := s.m[u] == c
	if ok {
		delete(s.m, u)
	}
	s.mu.Unlock()
	if ok {
		h.n.Add(-1)
	}
	return ok
}
