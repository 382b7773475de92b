package shardstore

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// checkCacheCoherent fails t if any record cache entry differs from what
// Pebble holds for its key.
func checkCacheCoherent(t *testing.T, s *Store) {
	t.Helper()
	for i := range s.cache.stripes {
		st := &s.cache.stripes[i]
		st.mu.Lock()
		for k, e := range st.m {
			v, closer, err := s.db.Get([]byte(k))
			var want []byte
			switch {
			case errors.Is(err, pebble.ErrNotFound):
			case err != nil:
				t.Fatalf("Get %x: %v", k, err)
			default:
				want, _ = cachedForm([]byte(k), v)
				closer.Close()
			}
			if !bytes.Equal(e.val, want) || (e.val == nil) != (want == nil) {
				t.Errorf("cache entry %x = %x, Pebble holds %x", k, e.val, want)
			}
		}
		st.mu.Unlock()
	}
}

// TestRecordCacheMatchesUncachedStore runs the same random operations on a
// store with a tiny record cache (so entries are evicted all the time) and
// on one without, and compares every answer and the final contents.
func TestRecordCacheMatchesUncachedStore(t *testing.T) {
	cached := newStore(t, Options{RecordCacheEntries: cacheStripes})
	plain := newStore(t, Options{RecordCacheEntries: -1})
	source := newStore(t, Options{}) // where imported records come from
	if plain.cache != nil || cached.cache == nil {
		t.Fatal("RecordCacheEntries did not switch the cache")
	}
	uaids := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	chids := []uuid.UUID{id(1), id(2), id(3)}
	for _, u := range uaids {
		for _, c := range chids {
			if _, err := source.Register(u, c); err != nil {
				t.Fatal(err)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	both := func(op string, f func(s *Store) (any, error)) {
		t.Helper()
		a, errA := f(cached)
		b, errB := f(plain)
		if !reflect.DeepEqual(a, b) || (errA == nil) != (errB == nil) {
			t.Fatalf("%s: cached store answered %+v, %v; uncached %+v, %v", op, a, errA, b, errB)
		}
	}
	for step := range 5000 {
		u, c := uaids[rng.IntN(len(uaids))], chids[rng.IntN(len(chids))]
		v := rng.Uint64N(40)
		switch r := rng.IntN(100); {
		case r < 15:
			both(fmt.Sprintf("%d Register", step), func(s *Store) (any, error) { return s.Register(u, c) })
		case r < 20:
			both(fmt.Sprintf("%d Unregister", step), func(s *Store) (any, error) { return nil, s.Unregister(u, c) })
		case r < 55:
			var data []byte
			if rng.IntN(2) == 0 {
				data = []byte(fmt.Sprint("data ", step))
			}
			both(fmt.Sprintf("%d Put v%d", step, v), func(s *Store) (any, error) { return s.Put(u, c, Put{Version: v, Data: data}) })
		case r < 80:
			both(fmt.Sprintf("%d Ack v%d", step, v), func(s *Store) (any, error) { n, err := s.Ack(u, []Ack{{c, v}}); return n, err })
		case r < 90:
			both(fmt.Sprintf("%d Pending", step), func(s *Store) (any, error) { return s.Pending(u) })
		case r < 97:
			// Records from elsewhere, merged in (replication, handoff).
			if _, err := source.Put(u, c, Put{Version: v + uint64(rng.IntN(5)), Data: []byte("imported")}); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 {
				if _, err := source.Ack(u, []Ack{{c, v + 5}}); err != nil {
					t.Fatal(err)
				}
			}
			h := RingHash(u)
			kvs, _, err := source.Export(h, h, nil, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			both(fmt.Sprintf("%d Import", step), func(s *Store) (any, error) { return nil, s.Import(kvs) })
		default:
			h := RingHash(u)
			both(fmt.Sprintf("%d DropRanges", step), func(s *Store) (any, error) { return nil, s.DropRanges([]Range{{h, h}}) })
		}
		if step%500 == 0 {
			checkCacheCoherent(t, cached)
		}
	}
	for _, u := range uaids {
		for _, c := range chids {
			both("Channel", func(s *Store) (any, error) {
				ch, ok, err := s.Channel(u, c)
				return fmt.Sprint(ch, ok), err
			})
		}
		both("Pending", func(s *Store) (any, error) { return s.Pending(u) })
	}
	checkCacheCoherent(t, cached)
	st := cached.Stats()
	if st.CacheHits == 0 || st.CacheMisses == 0 {
		t.Errorf("cache hits %d, misses %d: the test did not exercise both", st.CacheHits, st.CacheMisses)
	}
}

// TestRecordCacheConcurrentReadersAndWriters races lock-free readers
// (Pending, which fills the cache on a miss) against the writers of the same
// UAIDs, with a cache small enough to evict constantly, and then checks
// that no entry is older than Pebble's record.
func TestRecordCacheConcurrentReadersAndWriters(t *testing.T) {
	s := newStore(t, Options{RecordCacheEntries: 4 * cacheStripes})
	const uaidCount = 16
	uaids := make([]uuid.UUID, uaidCount)
	for i := range uaids {
		uaids[i] = uuid.New()
		mustRegister(t, s, uaids[i], id(1))
		mustRegister(t, s, uaids[i], id(2))
	}
	var (
		stop atomic.Bool
		wg   sync.WaitGroup
		errs = make(chan error, 2*uaidCount)
	)
	for _, u := range uaids {
		wg.Add(2)
		go func() { // the UAID's only writer, as the contract requires
			defer wg.Done()
			for v := uint64(1); v <= 300; v++ {
				c := id(byte(1 + v%2))
				if _, err := s.Put(u, c, Put{Version: v}); err != nil {
					errs <- err
					return
				}
				if v%3 != 0 {
					if _, err := s.Ack(u, []Ack{{c, v}}); err != nil {
						errs <- err
						return
					}
				}
			}
			stop.Store(true)
		}()
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := s.Pending(u); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	checkCacheCoherent(t, s)
	// And what the hot path reads through the cache is what Pebble holds.
	for _, u := range uaids {
		p := uaidPrefix(u)
		for _, c := range []uuid.UUID{id(1), id(2)} {
			key := p.channelKey(c)
			got, ok, err := s.readChannel(key[:], false)
			want, wantOK, err2 := s.readChannel(key[:], true)
			want.data = nil
			if err != nil || err2 != nil || ok != wantOK || !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s: cached read %+v %v %v, Pebble %+v %v %v", u, c, got, ok, err, want, wantOK, err2)
			}
		}
	}
}

// TestRecordCacheFillNeverInstallsAReplacedValue walks the interleavings a
// lock-free read can have with a commit of the same key.
func TestRecordCacheFillNeverInstallsAReplacedValue(t *testing.T) {
	p := uaidPrefix(uuid.New())
	k := p.channelKey(id(1))
	key := k[:]
	old := encodeChannel(channelRecord{version: 1, pending: 1})
	newer := encodeChannel(channelRecord{version: 2})

	t.Run("commit of an uncached key between the read and the fill", func(t *testing.T) {
		c := newRecordCache(1024)
		_, hit, gen := c.get(key)
		if hit {
			t.Fatal("hit in an empty cache")
		}
		c.put(key, cacheEntry{seq: 7, val: newer}, false) // update-only: not added
		c.fill(key, old, gen)
		if v, hit, _ := c.get(key); hit {
			t.Fatalf("the read's value %x was installed after a newer commit", v)
		}
	})
	t.Run("commit written through between the read and the fill", func(t *testing.T) {
		c := newRecordCache(1024)
		_, _, gen := c.get(key)
		c.put(key, cacheEntry{seq: 7, val: newer}, true)
		c.fill(key, old, gen)
		if v, _, _ := c.get(key); !bytes.Equal(v, newer) {
			t.Fatalf("cached %x, want the commit's %x", v, newer)
		}
	})
	t.Run("eviction between the read and the fill", func(t *testing.T) {
		c := newRecordCache(cacheStripes) // one entry per stripe
		_, _, gen := c.get(key)
		other := append([]byte(nil), key...)
		other[len(other)-1]++ // same stripe, another channel
		c.put(other, cacheEntry{seq: 3, val: newer}, true)
		c.fill(key, old, gen)
		if _, hit, _ := c.get(key); hit {
			t.Fatal("a read older than an eviction in its stripe was installed")
		}
	})
	t.Run("an older commit never replaces a newer one", func(t *testing.T) {
		c := newRecordCache(1024)
		c.put(key, cacheEntry{seq: 9, val: newer}, true)
		c.put(key, cacheEntry{seq: 8, val: old}, true)
		if v, _, _ := c.get(key); !bytes.Equal(v, newer) {
			t.Fatalf("cached %x, want the newer commit's %x", v, newer)
		}
	})
	t.Run("a commit older than a range deletion writes through after it", func(t *testing.T) {
		// A Put visible before a partition is dropped (seq 8 < 10), whose
		// write-through runs only after the drop emptied the cache.
		c := newRecordCache(1024)
		c.put(key, cacheEntry{seq: 5, val: old}, true)
		c.clear(10)
		c.put(key, cacheEntry{seq: 8, val: newer}, true)
		if v, hit, _ := c.get(key); hit {
			t.Fatalf("cached %x from a commit the range deletion superseded", v)
		}
		c.put(key, cacheEntry{seq: 11, val: newer}, true)
		if v, _, _ := c.get(key); !bytes.Equal(v, newer) {
			t.Fatalf("cached %x, want the later commit's %x", v, newer)
		}
	})
	t.Run("a fill without interference is kept, without data", func(t *testing.T) {
		c := newRecordCache(1024)
		withData := encodeChannel(channelRecord{version: 3, pending: 3, hasData: true, data: []byte("payload")})
		_, _, gen := c.get(key)
		c.fill(key, withData, gen)
		v, hit, _ := c.get(key)
		if !hit || !bytes.Equal(v, withData[:channelHeaderLen]) {
			t.Fatalf("cached %x (hit %v), want the header %x", v, hit, withData[:channelHeaderLen])
		}
		rec, err := decodeChannel(v)
		if err != nil || rec.version != 3 || rec.pending != 3 {
			t.Fatalf("cached header decodes to %+v, %v", rec, err)
		}
	})
}

// TestRecordCacheBoundedInBytes fills the cache with pending indexes of
// many channels: the cache keeps within its byte budget, its byte count
// matches its entries, and reads stay right.
func TestRecordCacheBoundedInBytes(t *testing.T) {
	s := newStore(t, Options{RecordCacheEntries: 4 * cacheStripes, MaxChannels: 40})
	uaids := randomUAIDs(40, 9)
	for _, u := range uaids {
		for c := range byte(30) {
			mustRegister(t, s, u, id(c))
			mustPut(t, s, u, id(c), Put{Version: 1})
		}
	}
	for i := range s.cache.stripes {
		st := &s.cache.stripes[i]
		sum := 0
		for k, e := range st.m {
			sum += entrySize(k, e)
		}
		if st.bytes != sum || st.bytes > s.cache.perStripeBytes {
			t.Errorf("stripe %d: %d bytes counted, %d held, budget %d", i, st.bytes, sum, s.cache.perStripeBytes)
		}
	}
	for _, u := range uaids {
		if p, err := s.Pending(u); err != nil || len(p) != 30 {
			t.Fatalf("Pending(%s): %d channels, %v; want 30", u, len(p), err)
		}
	}
}

// A write too large to cache still marks its stripe written, so a read
// that began before it cannot fill the value it replaced.
func TestRecordCacheOversizedWriteStopsAnOlderFill(t *testing.T) {
	c := newRecordCache(cacheStripes) // one entry's budget per stripe
	p := uaidPrefix(id(1))
	key := p.pendingKey()
	_, found, gen := c.get(key[:])
	if found {
		t.Fatal("cached before any write")
	}
	big := make([]byte, 2*cacheEntryBytes)
	big[0] = pendingEncV1
	c.put(key[:], cacheEntry{seq: 7, val: big}, true)
	old := []byte{pendingEncV1}
	c.fill(key[:], old, gen)
	if v, found, _ := c.get(key[:]); found {
		t.Fatalf("cached %d bytes: the read from before the write filled its stale value", len(v))
	}
}
