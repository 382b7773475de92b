package engine

import (
	"sync"

	"github.com/google/uuid"
)

const waiterStripes = 256

// waiters holds the long polls (GET /v1/updates?wait=) waiting for a version
// of their UAIDs. Entries exist only while a poll waits. A PUT that stores a
// version for a UAID with no WebSocket wakes them; the poll then reads the
// store itself.
type waiters struct {
	stripes [waiterStripes]struct {
		mu sync.Mutex
		m  map[uuid.UUID][]chan struct{} // guarded by mu
	}
}

func (w *waiters) stripe(u uuid.UUID) int {
	return int(uaidHash(u) % waiterStripes)
}

// add registers ch to be woken by a version for any of uaids. ch must have
// room for one value; wake never blocks on it.
func (w *waiters) add(uaids []uuid.UUID, ch chan struct{}) {
	for _, u := range uaids {
		s := &w.stripes[w.stripe(u)]
		s.mu.Lock()
		if s.m == nil {
			s.m = make(map[uuid.UUID][]chan struct{})
		}
		s.m[u] = append(s.m[u], ch)
		s.mu.Unlock()
	}
}

// remove undoes add.
func (w *waiters) remove(uaids []uuid.UUID, ch chan struct{}) {
	for _, u := range uaids {
		s := &w.stripes[w.stripe(u)]
		s.mu.Lock()
		list := s.m[u]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.m, u)
		} else {
			s.m[u] = list
		}
		s.mu.Unlock()
	}
}

// wake signals every poll waiting for u.
func (w *waiters) wake(u uuid.UUID) {
	s := &w.stripes[w.stripe(u)]
	s.mu.Lock()
	for _, ch := range s.m[u] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}
