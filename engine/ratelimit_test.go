package engine

import (
	"testing"
	"time"
)

func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(10, 5)
	now := time.Unix(1000, 0)
	for i := 0; i < 5; i++ {
		if ok, _ := l.allow(7, now); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := l.allow(7, now)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("after the burst: ok=%v wait=%v, want refused for 100ms", ok, wait)
	}
	if ok, _ := l.allow(8, now); !ok {
		t.Fatal("another key shares the exhausted bucket")
	}
	if ok, _ := l.allow(7, now.Add(100*time.Millisecond)); !ok {
		t.Fatal("no token after the refill time")
	}
	if ok, _ := l.allow(7, now.Add(100*time.Millisecond)); ok {
		t.Fatal("more tokens than the rate refilled")
	}
	// Refill never exceeds the burst.
	later := now.Add(time.Hour)
	for i := 0; i < 5; i++ {
		if ok, _ := l.allow(7, later); !ok {
			t.Fatalf("request %d after an hour refused", i)
		}
	}
	if ok, _ := l.allow(7, later); ok {
		t.Fatal("burst exceeded after a long idle time")
	}
	if ok, _ := newRateLimiter(0, 0).allow(7, now); !ok {
		t.Fatal("a zero rate limits")
	}
}
