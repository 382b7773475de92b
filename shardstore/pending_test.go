package shardstore

import (
	"slices"
	"testing"

	"github.com/google/uuid"
)

// The pending index must equal the set of channels with a pending version
// after any sequence of writes.
func TestPendingIndexTracksChannels(t *testing.T) {
	s := newStore(t, Options{})
	u := uuid.New()
	chs := []uuid.UUID{uuid.New(), uuid.New(), uuid.New(), uuid.New()}
	for _, c := range chs {
		if _, err := s.Register(u, c); err != nil {
			t.Fatal(err)
		}
	}
	want := map[uuid.UUID]uint64{}
	check := func(step string) {
		t.Helper()
		p := uaidPrefix(u)
		ids, err := s.readPendingSet(&p)
		if err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		var wantIDs []uuid.UUID
		for id := range want {
			wantIDs = append(wantIDs, id)
		}
		slices.SortFunc(wantIDs, compareIDs)
		if !slices.Equal(ids, wantIDs) {
			t.Fatalf("%s: index %v, want %v", step, ids, wantIDs)
		}
		got, err := s.Pending(u)
		if err != nil {
			t.Fatalf("%s: pending: %v", step, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: pending %v, want %v", step, got, want)
		}
		for _, ch := range got {
			if want[ch.ID] != ch.Pending {
				t.Fatalf("%s: channel %s pending %d, want %d", step, ch.ID, ch.Pending, want[ch.ID])
			}
		}
	}
	put := func(c uuid.UUID, v uint64) {
		t.Helper()
		res, err := s.Put(u, c, Put{Version: v, Data: []byte{byte(v)}})
		if err != nil {
			t.Fatal(err)
		}
		want[c] = v
		// What Put reports pending is what Pending reads.
		read, err := s.Pending(u)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Pending) != len(read) {
			t.Fatalf("put reports %v pending, store holds %v", res.Pending, read)
		}
		for i := range read {
			if res.Pending[i].ID != read[i].ID || res.Pending[i].Pending != read[i].Pending || string(res.Pending[i].Data) != string(read[i].Data) {
				t.Fatalf("put reports %v pending, store holds %v", res.Pending, read)
			}
		}
	}
	check("empty")
	put(chs[0], 1)
	put(chs[2], 5)
	check("two pending")
	put(chs[0], 2) // already pending: index unchanged
	check("re-put")
	if _, err := s.Ack(u, []Ack{{chs[0], 1}}); err != nil { // older ack: stays pending
		t.Fatal(err)
	}
	check("stale ack")
	if _, err := s.Ack(u, []Ack{{chs[0], 2}, {chs[1], 9}}); err != nil {
		t.Fatal(err)
	}
	delete(want, chs[0])
	check("ack")
	put(chs[3], 7)
	if err := s.Unregister(u, chs[2]); err != nil {
		t.Fatal(err)
	}
	delete(want, chs[2])
	check("unregister")
	if _, err := s.Ack(u, []Ack{{chs[3], 7}}); err != nil {
		t.Fatal(err)
	}
	delete(want, chs[3])
	check("all acked")
}

func TestDecodePendingSetRejects(t *testing.T) {
	a, b := uuid.MustParse("00000000-0000-0000-0000-000000000001"), uuid.MustParse("00000000-0000-0000-0000-000000000002")
	for name, v := range map[string][]byte{
		"empty":       {},
		"bad version": append([]byte{9}, a[:]...),
		"short":       append([]byte{pendingEncV1}, a[:15]...),
		"unordered":   append(append([]byte{pendingEncV1}, b[:]...), a[:]...),
		"duplicate":   append(append([]byte{pendingEncV1}, a[:]...), a[:]...),
	} {
		if _, err := decodePendingSet(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
