package shardstore

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

func TestRingHashIsXXHash64OfTheUAIDBytes(t *testing.T) {
	u := uuid.MustParse("9b7d5a1e-4c2f-4e2a-8d3b-0f1e2d3c4b5a")
	if got, want := RingHash(u), xxhash.Sum64(u[:]); got != want {
		t.Errorf("RingHash = %#x, want %#x", got, want)
	}
	// Pinned (checked against an independent XXH64): the cluster's ring and
	// stores on disk depend on this value.
	if got := RingHash(uuid.Nil); got != 0xaf09f71516247c32 {
		t.Errorf("RingHash(Nil) = %#x; the hash function changed", got)
	}
}

func TestKeyEncoding(t *testing.T) {
	u := uuid.MustParse("00112233-4455-6677-8899-aabbccddeeff")
	c := uuid.MustParse("ffeeddcc-bbaa-9988-7766-554433221100")
	p := uaidPrefix(u)
	want := binary.BigEndian.AppendUint64(nil, RingHash(u))
	want = append(want, u[:]...)
	if !bytes.Equal(p[:], want) {
		t.Fatalf("prefix = %x, want %x", p[:], want)
	}
	mk := p.metaKey()
	if !bytes.Equal(mk[:], append(slices.Clone(want), kindMeta)) {
		t.Errorf("meta key = %x", mk[:])
	}
	ck := p.channelKey(c)
	if !bytes.Equal(ck[:], append(append(slices.Clone(want), kindChannel), c[:]...)) {
		t.Errorf("channel key = %x", ck[:])
	}
	if got, ok := channelIDFromKey(ck[:]); !ok || got != c {
		t.Errorf("channelIDFromKey = %s, %v", got, ok)
	}
	if _, ok := channelIDFromKey(mk[:]); ok {
		t.Errorf("channelIDFromKey accepted a meta key")
	}
}

// TestKeyLayout writes records for many UAIDs and walks the whole store:
// every UAID's records are contiguous under its 24-byte prefix, the store is
// ordered by ring hash, and ringBounds selects exactly the UAIDs of a ring
// range.
func TestKeyLayout(t *testing.T) {
	s := newStore(t, Options{})
	rng := rand.New(rand.NewPCG(1, 2))
	randUUID := func() uuid.UUID {
		var u uuid.UUID
		binary.LittleEndian.PutUint64(u[:8], rng.Uint64())
		binary.LittleEndian.PutUint64(u[8:], rng.Uint64())
		return u
	}
	uaids := map[uuid.UUID]bool{}
	for range 200 {
		u := randUUID()
		uaids[u] = true
		for range 1 + rng.IntN(4) {
			c := randUUID()
			mustRegister(t, s, u, c)
			mustPut(t, s, u, c, Put{Version: 1, Data: []byte("x")})
		}
		if rng.IntN(2) == 0 {
			if err := s.SetMeta(u, []byte("m")); err != nil {
				t.Fatal(err)
			}
		}
	}

	it, err := s.db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var prev []byte
	seen := map[uuid.UUID]bool{}
	var cur uuid.UUID
	for valid := it.First(); valid; valid = it.Next() {
		k := it.Key()
		if len(k) != metaKeyLen && len(k) != channelKeyLen {
			t.Fatalf("key %x has length %d", k, len(k))
		}
		var u uuid.UUID
		copy(u[:], k[8:prefixLen])
		if !uaids[u] {
			t.Fatalf("key %x names an unknown UAID", k)
		}
		if h := binary.BigEndian.Uint64(k[:8]); h != RingHash(u) {
			t.Fatalf("key %x: ring hash %#x, want %#x", k, h, RingHash(u))
		}
		if prev != nil && binary.BigEndian.Uint64(prev[:8]) > binary.BigEndian.Uint64(k[:8]) {
			t.Fatalf("keys not ordered by ring hash: %x then %x", prev, k)
		}
		if u != cur {
			if seen[u] {
				t.Fatalf("records of %s are not contiguous", u)
			}
			seen[u], cur = true, u
		}
		prev = slices.Clone(k)
	}
	if len(seen) != len(uaids) {
		t.Fatalf("walked %d UAIDs, wrote %d", len(seen), len(uaids))
	}

	// A ring range [lo, hi) as a key range holds exactly its UAIDs.
	lo, hi := uint64(1)<<62, uint64(3)<<62
	start, end := ringBounds(lo, hi)
	rit, err := s.db.NewIter(&pebble.IterOptions{LowerBound: start, UpperBound: end})
	if err != nil {
		t.Fatal(err)
	}
	defer rit.Close()
	inRange := map[uuid.UUID]bool{}
	for valid := rit.First(); valid; valid = rit.Next() {
		var u uuid.UUID
		copy(u[:], rit.Key()[8:prefixLen])
		inRange[u] = true
	}
	for u := range uaids {
		h := RingHash(u)
		if want := h >= lo && h < hi; inRange[u] != want {
			t.Errorf("UAID %s (hash %#x) in range [%#x, %#x): got %v, want %v", u, h, lo, hi, inRange[u], want)
		}
	}
	if _, end := ringBounds(lo, 0); end != nil {
		t.Errorf("ringBounds(lo, 0) has an upper bound; 0 means the top of the ring")
	}
}
