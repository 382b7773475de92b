package engine

import (
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
