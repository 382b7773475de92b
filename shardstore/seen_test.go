package shardstore

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
)

func mustSeen(t *testing.T, s *Store, u uuid.UUID) int64 {
	t.Helper()
	at, err := s.Seen(u)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func mustTouch(t *testing.T, s *Store, u uuid.UUID, now time.Time, every time.Duration) bool {
	t.Helper()
	wrote, err := s.Touch(u, now, every)
	if err != nil {
		t.Fatal(err)
	}
	return wrote
}

func TestTouch(t *testing.T) {
	s := newStore(t, Options{})
	u := id(1)
	t0 := time.Unix(1_800_000_000, 0)
	if mustTouch(t, s, u, t0, time.Hour) || mustSeen(t, s, u) != 0 {
		t.Fatal("a UAID without records got a seen record")
	}
	mustRegister(t, s, u, id(10))
	if !mustTouch(t, s, u, t0, time.Hour) {
		t.Fatal("first touch of a registered UAID wrote nothing")
	}
	if got := mustSeen(t, s, u); got != t0.Unix() {
		t.Fatalf("seen %d, want %d", got, t0.Unix())
	}
	if mustTouch(t, s, u, t0.Add(59*time.Minute), time.Hour) {
		t.Error("touch within the hour wrote")
	}
	if !mustTouch(t, s, u, t0.Add(time.Hour), time.Hour) || mustSeen(t, s, u) != t0.Add(time.Hour).Unix() {
		t.Errorf("touch an hour later: seen %d, want %d", mustSeen(t, s, u), t0.Add(time.Hour).Unix())
	}
	// A UAID with only a meta record (its kick target) has records too.
	m := id(2)
	if err := s.SetMeta(m, []byte("kick")); err != nil {
		t.Fatal(err)
	}
	if !mustTouch(t, s, m, t0, time.Hour) {
		t.Error("touch of a UAID with a meta record wrote nothing")
	}
	if err := s.DropUAID(u); err != nil {
		t.Fatal(err)
	}
	if got := mustSeen(t, s, u); got != 0 {
		t.Errorf("seen %d after DropUAID, want none", got)
	}
}

func TestSeenPage(t *testing.T) {
	s := newStore(t, Options{})
	uaids := randomUAIDs(7, 5)
	t0 := time.Unix(1_800_000_000, 0)
	want := map[uuid.UUID]int64{}
	for i, u := range uaids {
		for c := range byte(3) {
			mustRegister(t, s, u, id(10+c))
		}
		mustPut(t, s, u, id(10), Put{Version: 1}) // a pending index too
		if i%2 == 0 {
			at := t0.Add(time.Duration(i) * time.Minute)
			mustTouch(t, s, u, at, time.Hour)
			want[u] = at.Unix()
		} else {
			want[u] = 0
		}
	}
	var (
		got   []UAIDSeen
		after []byte
		pages int
	)
	for {
		page, next, err := s.SeenPage(after, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, page...)
		if next == nil {
			break
		}
		after = next
	}
	if len(got) != len(uaids) || pages != 4 {
		t.Fatalf("%d UAIDs in %d pages, want %d in 4", len(got), pages, len(uaids))
	}
	if !slices.IsSortedFunc(got, func(a, b UAIDSeen) int {
		pa, pb := uaidPrefix(a.UAID), uaidPrefix(b.UAID)
		return slices.Compare(pa[:], pb[:])
	}) {
		t.Error("not in key order")
	}
	for _, e := range got {
		if w, ok := want[e.UAID]; !ok || e.Seen != w {
			t.Errorf("%s: seen %d, want %d (known %v)", e.UAID, e.Seen, w, ok)
		}
	}
}

// Seen records travel with a UAID's other records and merge to the later
// time; a UAID left with tombstones and a seen record is not counted.
func TestSeenTransfers(t *testing.T) {
	a, b := newStore(t, Options{}), newStore(t, Options{})
	u := id(1)
	t0 := time.Unix(1_800_000_000, 0)
	mustRegister(t, a, u, id(10))
	mustTouch(t, a, u, t0.Add(time.Hour), time.Hour)
	kvs, _ := exportAll(t, a, 0, math.MaxUint64, 0, 0)
	if len(kvs) != 2 || kvs[1].Key[prefixLen] != kindSeen {
		t.Fatalf("exported %d records, want the channel and the seen record", len(kvs))
	}
	mustRegister(t, b, u, id(10))
	mustTouch(t, b, u, t0, time.Hour)
	mustImport(t, b, kvs)
	if got := mustSeen(t, b, u); got != t0.Add(time.Hour).Unix() {
		t.Errorf("b's seen %d after importing a later one, want %d", got, t0.Add(time.Hour).Unix())
	}
	mustTouch(t, a, u, t0, 0) // a clock that went back
	rec, err := b.Records(u, nil, true)
	if err != nil || len(rec) != 1 {
		t.Fatalf("Records with meta: %v, %v; want the seen record", rec, err)
	}
	mustImport(t, a, rec)
	if got := mustSeen(t, a, u); got != t0.Add(time.Hour).Unix() {
		t.Errorf("a's seen %d after importing a later one, want %d", got, t0.Add(time.Hour).Unix())
	}
	if err := a.Unregister(u, id(10)); err != nil {
		t.Fatal(err)
	}
	if n := mustCount(t, a, 0, math.MaxUint64); n != 0 {
		t.Errorf("CountRange counted %d UAIDs with only a tombstone and a seen record", n)
	}
}

// A seen record alone makes no UAID: Import keeps it only for a UAID with
// records, here or earlier in the same call.
func TestImportSeenNeedsTheUAIDsRecords(t *testing.T) {
	a, b := newStore(t, Options{}), newStore(t, Options{})
	u := id(1)
	mustRegister(t, a, u, id(10))
	mustTouch(t, a, u, time.Unix(1_800_000_000, 0), time.Hour)
	seen, err := a.Records(u, nil, true)
	if err != nil || len(seen) != 1 {
		t.Fatalf("Records: %v, %v", seen, err)
	}
	mustImport(t, b, seen)
	if got := mustSeen(t, b, u); got != 0 {
		t.Errorf("a UAID with no records got seen %d", got)
	}
	channel, err := a.Records(u, []uuid.UUID{id(10)}, false)
	if err != nil || len(channel) != 1 {
		t.Fatalf("Records: %v, %v", channel, err)
	}
	mustImport(t, b, append(seen, channel...)) // the seen record first
	if got := mustSeen(t, b, u); got != 1_800_000_000 {
		t.Errorf("seen %d after importing it with the channel, want 1800000000", got)
	}
}
