package engine

import (
	"math"
	"sync"
	"time"
)

// rateBuckets is the number of token buckets of a rateLimiter. Keys share a
// bucket when their hashes collide, which can only make the limit stricter
// for them; the table never grows.
const rateBuckets = 1 << 14

// rateLimiter is a fixed table of token buckets indexed by a key hash: per
// endpoint or per source address limits for PUTs (429). The zero rate
// means no limit. Safe for concurrent use; each bucket has its own mutex,
// held for a few arithmetic operations.
type rateLimiter struct {
	rate    float64 // tokens per second
	burst   float64
	buckets []rateBucket
}

type rateBucket struct {
	mu     sync.Mutex
	tokens float64 // guarded by mu
	last   int64   // guarded by mu: unix nanoseconds of the last refill; 0 = full
}

func newRateLimiter(rate float64, burst int) *rateLimiter {
	if rate <= 0 {
		return &rateLimiter{}
	}
	b := float64(burst)
	if b < 1 {
		b = math.Max(1, rate)
	}
	return &rateLimiter{rate: rate, burst: b, buckets: make([]rateBucket, rateBuckets)}
}

// allow takes a token for key at now. When none is left it returns false
// and how long until one is.
func (l *rateLimiter) allow(key uint64, now time.Time) (bool, time.Duration) {
	if l.rate == 0 {
		return true, 0
	}
	b := &l.buckets[key%rateBuckets]
	ns := now.UnixNano()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last == 0 {
		b.tokens = l.burst
	} else if ns > b.last {
		b.tokens = math.Min(l.burst, b.tokens+float64(ns-b.last)*l.rate/1e9)
	}
	b.last = ns
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * 1e9)
}
