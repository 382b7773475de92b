package engine

import (
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
)

const hubStripes = 256

// hub is the owner's presence table: for each UAID this node owns that has
// a connection, which connection holds it. Writers hold the UAID's slot in
// the lock table, so the hub and the store change together; readers may
// look up without it.
//
// Connections of this node and of other nodes live in separate maps so
// that a single node pays one pointer per connected UAID; a UAID is in at
// most one of them.
type hub struct {
	stripes [hubStripes]hubStripe
	n       atomic.Int64
}

type hubStripe struct {
	mu sync.RWMutex
	// local, remote: guarded by mu. remote is nil until used.
	local  map[uuid.UUID]*client
	remote map[uuid.UUID]*remoteConn
}

func newHub() *hub {
	h := &hub{}
	for i := range h.stripes {
		h.stripes[i].local = make(map[uuid.UUID]*client)
	}
	return h
}

func (h *hub) stripe(u uuid.UUID) *hubStripe {
	return &h.stripes[uaidHash(u)%hubStripes]
}

// get returns the connection holding u, the zero holder if none.
func (h *hub) get(u uuid.UUID) holder {
	s := h.stripe(u)
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c := s.local[u]; c != nil {
		return holder{c: c}
	}
	return holder{r: s.remote[u]}
}

// set makes c the connection of u and returns the one it replaced (the
// zero holder if none).
// REQUIRES: u's lock slot held.
func (h *hub) set(u uuid.UUID, c holder) (prev holder) {
	s := h.stripe(u)
	s.mu.Lock()
	if p := s.local[u]; p != nil {
		prev.c = p
		delete(s.local, u)
	} else if p := s.remote[u]; p != nil {
		prev.r = p
		delete(s.remote, u)
	}
	switch {
	case c.c != nil:
		s.local[u] = c.c
	case c.r != nil:
		if s.remote == nil {
			s.remote = make(map[uuid.UUID]*remoteConn)
		}
		s.remote[u] = c.r
	}
	s.mu.Unlock()
	if prev.none() {
		h.n.Add(1)
	}
	return prev
}

// remove forgets u if c still holds it.
// REQUIRES: u's lock slot held.
func (h *hub) remove(u uuid.UUID, c holder) bool {
	s := h.stripe(u)
	s.mu.Lock()
	ok := false
	switch {
	case c.c != nil && s.local[u] == c.c:
		delete(s.local, u)
		ok = true
	case c.r != nil && s.remote[u] != nil && *s.remote[u] == *c.r:
		delete(s.remote, u)
		ok = true
	}
	s.mu.Unlock()
	if ok {
		h.n.Add(-1)
	}
	return ok
}

// each calls fn for every UAID with a connection, with the stripe
// unlocked, until fn returns false.
func (h *hub) each(fn func(u uuid.UUID) bool) {
	var batch []uuid.UUID
	for i := range h.stripes {
		s := &h.stripes[i]
		s.mu.RLock()
		for u := range s.local {
			batch = append(batch, u)
		}
		for u := range s.remote {
			batch = append(batch, u)
		}
		s.mu.RUnlock()
		for _, u := range batch {
			if !fn(u) {
				return
			}
		}
		batch = batch[:0]
	}
}
