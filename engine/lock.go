package engine

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/internal/protocol"
)

// lockStripes is the number of stripes of the UAID lock table. A UAID's
// stripe is fixed by its bytes; the table never grows.
const lockStripes = 4096

// maxQueued bounds the acks queued on one slot (see do). A device
// acknowledges at most the one UPDATE it was sent, so a full queue means a
// client repeating itself while its UAID's store write is stuck. A
// connection's detach is queued past it: there is one per connection.
const maxQueued = 16

// lockTable is the per-UAID lock of PROTOCOL.md 6.2. Each UAID has, while
// anyone cares about it, a slot holding two things:
//
//   - held: an owner operation (a PUT's store write and delivery, a hello,
//     an ack) is running for the UAID. Operations on one UAID are serial.
//   - flight: an UPDATE with the UAID's pending versions was sent and is not
//     yet acknowledged. PUTs wait for it to end (up to the lock wait).
//   - queue: operations handed over while the slot was held (do), carried
//     out by the goroutine that releases it, before anyone waiting.
//
// Slots live in their stripe only while held, in flight or waited for, so
// idle UAIDs cost nothing. A stripe keeps its few live slots in a slice
// searched linearly: with 4096 stripes even a million UAIDs in flight are
// a few hundred per stripe, and an empty stripe costs a slice header.
type lockTable struct {
	stripes [lockStripes]lockStripe
	// inflight counts UAIDs in flight (a metric).
	inflight atomic.Int64
	// drains counts the goroutines carrying out queued operations (wait).
	drains atomic.Int64
}

type lockStripe struct {
	mu sync.Mutex
	// slots: guarded by mu.
	slots []*slot
}

// slot is one UAID's lock state. All fields are guarded by its stripe's mu.
type slot struct {
	uaid    uuid.UUID
	held    bool
	flight  *flight
	waiters int
	// dirty: a version was stored for the UAID while its UPDATE was in
	// flight (Node.Store), so it must be sent once the flight ends.
	dirty bool
	// changed is closed (and cleared) whenever held or flight changes and
	// someone waits; nil when nobody waits.
	changed chan struct{}
	// queue holds the operations handed over by do while the slot was
	// held; never longer than maxQueued.
	queue []func()
}

// flight is an UPDATE that awaits its ack. It is immutable once started;
// acks replace it.
type flight struct {
	to       holder // the connection it was sent to (zero: a REST poller)
	sent     []protocol.Update
	deadline time.Time
}

func newLockTable() *lockTable { return &lockTable{} }

// find returns u's slot, nil if it has none.
// REQUIRES: s.mu held.
func (s *lockStripe) find(u uuid.UUID) *slot {
	for _, sl := range s.slots {
		if sl.uaid == u {
			return sl
		}
	}
	return nil
}

// slotFor returns u's slot, adding one if it has none.
// REQUIRES: s.mu held.
func (s *lockStripe) slotFor(u uuid.UUID) *slot {
	if sl := s.find(u); sl != nil {
		return sl
	}
	sl := &slot{uaid: u}
	s.slots = append(s.slots, sl)
	return sl
}

func (t *lockTable) stripe(u uuid.UUID) *lockStripe {
	return &t.stripes[uaidHash(u)%lockStripes]
}

// uaidHash spreads UAIDs over the fixed tables of this package (lock
// stripes, hub stripes, waiter stripes, kick slots). Clients choose their
// UAIDs, so no byte of one can be trusted to be random: all sixteen are
// mixed (the 64-bit finaliser of MurmurHash3).
func uaidHash(u uuid.UUID) uint64 {
	h := binary.LittleEndian.Uint64(u[:8]) ^ binary.LittleEndian.Uint64(u[8:])*0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// acquire takes the UAID's slot, waiting until deadline at most. With
// idle, it also waits for an in-flight UPDATE to be acknowledged (the PUT
// rule); without, only for the running operation. It reports whether the
// slot was taken; the caller must release it.
func (t *lockTable) acquire(u uuid.UUID, idle bool, deadline time.Time) bool {
	s := t.stripe(u)
	s.mu.Lock()
	sl := s.slotFor(u)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for sl.held || (idle && sl.flight != nil) {
		wait := time.Until(deadline)
		if wait <= 0 {
			s.dropIfIdleLocked(sl)
			s.mu.Unlock()
			return false
		}
		if sl.changed == nil {
			sl.changed = make(chan struct{})
		}
		ch := sl.changed
		sl.waiters++
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ch:
		case <-timer.C:
		}
		s.mu.Lock()
		sl.waiters--
	}
	sl.held = true
	s.mu.Unlock()
	return true
}

// do carries out op with u's slot held, without waiting for it: at once in
// the calling goroutine when the slot is free, else queued on the slot and
// carried out by the goroutine that releases it, before any waiter gets
// the slot. Queued operations run in the order they came. do reports false
// when op was dropped because the slot already has maxQueued operations
// and must is false; an operation that must not be lost passes must.
//
// It is for operations that must not hold up their caller behind another
// operation of the UAID (a PUT's synced write and replication): a device's
// ack, carried out by one of the workers that serve every connection.
func (t *lockTable) do(u uuid.UUID, must bool, op func()) bool {
	s := t.stripe(u)
	s.mu.Lock()
	sl := s.slotFor(u)
	if sl.held {
		if len(sl.queue) >= maxQueued && !must {
			s.mu.Unlock()
			return false
		}
		sl.queue = append(sl.queue, op)
		s.mu.Unlock()
		return true
	}
	sl.held = true
	s.mu.Unlock()
	op()
	t.release(u)
	return true
}

// wait returns once no goroutine is carrying out queued operations, or
// when ctx ends. The caller has stopped what takes slots, so none starts.
func (t *lockTable) wait(ctx context.Context) {
	for t.drains.Load() > 0 && ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Millisecond):
		}
	}
}

// release gives the slot back, or hands it with the operations queued on
// it to a new goroutine that carries them out and then releases it again,
// so that the caller is not held up by them.
func (t *lockTable) release(u uuid.UUID) {
	s := t.stripe(u)
	s.mu.Lock()
	sl := s.find(u)
	if len(sl.queue) > 0 {
		ops := sl.queue
		sl.queue = nil
		t.drains.Add(1)
		s.mu.Unlock()
		go func() {
			defer t.drains.Add(-1)
			for _, op := range ops {
				op()
			}
			t.release(u)
		}()
		return
	}
	sl.held = false
	sl.signalLocked()
	s.dropIfIdleLocked(sl)
	s.mu.Unlock()
}

// flightOf returns the UAID's current flight, nil if none.
// REQUIRES: the caller holds the UAID's slot.
func (t *lockTable) flightOf(u uuid.UUID) *flight {
	s := t.stripe(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.find(u).flight
}

// setFlight replaces the UAID's flight. With nil it ends the flight and
// reports whether a version was stored meanwhile (markDirty), which then
// must be sent.
// REQUIRES: the caller holds the UAID's slot.
func (t *lockTable) setFlight(u uuid.UUID, f *flight) (dirty bool) {
	s := t.stripe(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	return t.setFlightLocked(s.find(u), f)
}

// markDirty notes that u got a version while in flight; false if u is not
// in flight.
// REQUIRES: the caller holds the UAID's slot.
func (t *lockTable) markDirty(u uuid.UUID) bool {
	s := t.stripe(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.find(u)
	if sl.flight == nil {
		return false
	}
	sl.dirty = true
	return true
}

// setFlightLocked replaces the slot's flight and returns the dirty mark,
// which an ending flight clears.
// REQUIRES: the slot's stripe mu held.
func (t *lockTable) setFlightLocked(sl *slot, f *flight) (dirty bool) {
	switch {
	case sl.flight == nil && f != nil:
		t.inflight.Add(1)
	case sl.flight != nil && f == nil:
		t.inflight.Add(-1)
	}
	dirty = sl.dirty
	if f == nil {
		sl.dirty = false
	}
	sl.flight = f
	sl.signalLocked()
	return dirty
}

// startFlight puts u in flight to h (the zero holder: a REST poller) with
// the versions sent, until the ack timeout.
// REQUIRES: the caller holds u's slot.
func (n *Node) startFlight(u uuid.UUID, h holder, sent []protocol.Update) {
	n.locks.setFlight(u, &flight{to: h, sent: sent, deadline: time.Now().Add(n.cfg.AckTimeout)})
}

// expire ends every flight whose ack timeout passed before now, so that
// waiting PUTs go ahead; the versions stay pending in the store and are
// sent again on the next UPDATE or connection.
func (t *lockTable) expire(now time.Time) (n int) {
	for i := range t.stripes {
		s := &t.stripes[i]
		s.mu.Lock()
		for i := 0; i < len(s.slots); i++ {
			sl := s.slots[i]
			if sl.flight != nil && now.After(sl.flight.deadline) {
				t.setFlightLocked(sl, nil)
				if s.dropIfIdleLocked(sl) {
					i-- // the last slot moved into i
				}
				n++
			}
		}
		s.mu.Unlock()
	}
	return n
}

// REQUIRES: the slot's stripe mu held.
func (sl *slot) signalLocked() {
	if sl.changed != nil {
		close(sl.changed)
		sl.changed = nil
	}
}

// dropIfIdleLocked removes sl from the stripe when nobody needs it and
// reports whether it did.
// REQUIRES: s.mu held.
func (s *lockStripe) dropIfIdleLocked(sl *slot) bool {
	if sl.held || sl.flight != nil || sl.waiters != 0 || len(sl.queue) != 0 {
		return false
	}
	for i, x := range s.slots {
		if x == sl {
			last := len(s.slots) - 1
			s.slots[i] = s.slots[last]
			s.slots[last] = nil
			s.slots = s.slots[:last]
			if len(s.slots) == 0 {
				s.slots = nil
			}
			return true
		}
	}
	return false
}
