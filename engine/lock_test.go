package engine

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestLockTableSerialises(t *testing.T) {
	lt := newLockTable()
	u := uuid.New()
	var (
		mu      sync.Mutex
		inside  int
		maxSeen int
		wg      sync.WaitGroup
	)
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				if !lt.acquire(u, false, time.Now().Add(time.Minute)) {
					t.Error("acquire failed")
					return
				}
				mu.Lock()
				inside++
				maxSeen = max(maxSeen, inside)
				mu.Unlock()
				mu.Lock()
				inside--
				mu.Unlock()
				lt.release(u)
			}
		}()
	}
	wg.Wait()
	if maxSeen != 1 {
		t.Fatalf("%d holders at once", maxSeen)
	}
	if n := slotCount(lt); n != 0 {
		t.Fatalf("%d slots left behind", n)
	}
}

func TestLockTableFlightBlocksIdleAcquire(t *testing.T) {
	lt := newLockTable()
	u := uuid.New()
	lt.acquire(u, false, time.Now().Add(time.Second))
	lt.setFlight(u, &flight{deadline: time.Now().Add(time.Hour)})
	lt.release(u)
	if lt.inflight.Load() != 1 {
		t.Fatalf("inflight = %d", lt.inflight.Load())
	}

	// A PUT (idle acquire) times out while the flight lasts...
	if lt.acquire(u, true, time.Now().Add(20*time.Millisecond)) {
		t.Fatal("idle acquire succeeded during a flight")
	}
	// ...an ack (plain acquire) goes ahead.
	if !lt.acquire(u, false, time.Now().Add(time.Second)) {
		t.Fatal("plain acquire blocked by a flight")
	}

	// A waiting PUT proceeds as soon as the flight ends.
	got := make(chan bool)
	go func() { got <- lt.acquire(u, true, time.Now().Add(time.Minute)) }()
	lt.setFlight(u, nil)
	lt.release(u)
	if !<-got {
		t.Fatal("waiting idle acquire failed after the flight ended")
	}
	lt.release(u)
	if n := slotCount(lt); n != 0 || lt.inflight.Load() != 0 {
		t.Fatalf("slots %d, inflight %d after everything ended", n, lt.inflight.Load())
	}
}

func TestLockTableExpire(t *testing.T) {
	lt := newLockTable()
	a, b := uuid.New(), uuid.New()
	now := time.Now()
	for u, d := range map[uuid.UUID]time.Duration{a: -time.Second, b: time.Hour} {
		lt.acquire(u, false, now.Add(time.Second))
		lt.setFlight(u, &flight{deadline: now.Add(d)})
		lt.release(u)
	}
	if n := lt.expire(now); n != 1 {
		t.Fatalf("expired %d flights, want 1", n)
	}
	if !lt.acquire(a, true, now.Add(time.Second)) {
		t.Fatal("expired flight still blocks")
	}
	lt.release(a)
	if lt.acquire(b, true, time.Now().Add(10*time.Millisecond)) {
		t.Fatal("live flight was expired")
	}
}

// An operation handed to a held slot waits in its queue without holding up
// its caller, runs once the holder releases, in order, and before a
// goroutine that was waiting for the slot gets it.
func TestLockTableDoQueuesBehindTheHolder(t *testing.T) {
	lt := newLockTable()
	u := uuid.New()

	// A free slot: the operation runs at once, holding it.
	ran := false
	if !lt.do(u, false, func() {
		ran = true
		if lt.acquire(u, false, time.Now().Add(time.Millisecond)) {
			t.Error("slot free while do's operation runs")
		}
	}) || !ran {
		t.Fatal("do on a free slot did not run its operation")
	}

	lt.acquire(u, false, time.Now().Add(time.Second))
	var (
		mu    sync.Mutex
		order []string
	)
	note := func(s string) {
		mu.Lock()
		order = append(order, s)
		mu.Unlock()
	}
	waiter := make(chan struct{})
	go func() {
		defer close(waiter)
		if !lt.acquire(u, false, time.Now().Add(time.Minute)) {
			t.Error("waiter's acquire failed")
			return
		}
		note("waiter")
		lt.release(u)
	}()
	for lt.waitersOf(u) == 0 {
		time.Sleep(time.Millisecond)
	}
	for i := range maxQueued {
		if !lt.do(u, false, func() { note(string(rune('a' + i))) }) {
			t.Fatalf("do %d refused with %d queued", i, i)
		}
	}
	if lt.do(u, false, func() { note("over") }) {
		t.Fatal("do accepted past maxQueued")
	}
	// An operation that must not be lost queues past the bound.
	if !lt.do(u, true, func() { note("must") }) {
		t.Fatal("do dropped an operation that must run")
	}
	mu.Lock()
	if len(order) != 0 {
		t.Fatalf("queued operations ran while the slot was held: %v", order)
	}
	mu.Unlock()

	lt.release(u)
	<-waiter
	lt.wait(context.Background())
	want := []string{}
	for i := range maxQueued {
		want = append(want, string(rune('a'+i)))
	}
	want = append(want, "must", "waiter")
	if fmt.Sprint(order) != fmt.Sprint(want) {
		t.Fatalf("ran %v, want %v", order, want)
	}
	if n := slotCount(lt); n != 0 {
		t.Fatalf("%d slots left behind", n)
	}
}

// Operations queued while a queue is being carried out are carried out
// too, by the same hand-over, before the slot is free.
func TestLockTableDoQueuedDuringDrain(t *testing.T) {
	lt := newLockTable()
	u := uuid.New()
	lt.acquire(u, false, time.Now().Add(time.Second))
	done := make(chan string, 2)
	lt.do(u, false, func() {
		// The slot is held by the drain: this one queues.
		if !lt.do(u, false, func() { done <- "second" }) {
			t.Error("do from a queued operation refused")
		}
		done <- "first"
	})
	lt.release(u)
	if a, b := <-done, <-done; a != "first" || b != "second" {
		t.Fatalf("ran %s, %s", a, b)
	}
	lt.wait(context.Background())
	if !lt.acquire(u, false, time.Now().Add(time.Second)) {
		t.Fatal("slot still held after the queue was carried out")
	}
	lt.release(u)
	if n := slotCount(lt); n != 0 {
		t.Fatalf("%d slots left behind", n)
	}
}

func (t *lockTable) waitersOf(u uuid.UUID) int {
	s := t.stripe(u)
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl := s.find(u); sl != nil {
		return sl.waiters
	}
	return 0
}

func slotCount(lt *lockTable) (n int) {
	for i := range lt.stripes {
		s := &lt.stripes[i]
		s.mu.Lock()
		n += len(s.slots)
		s.mu.Unlock()
	}
	return n
}

func BenchmarkLockAcquireRelease(b *testing.B) {
	lt := newLockTable()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		u := uuid.New()
		for pb.Next() {
			lt.acquire(u, true, time.Now().Add(time.Second))
			lt.release(u)
		}
	})
}
