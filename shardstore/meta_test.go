package shardstore

import (
	"errors"
	"testing"

	"github.com/google/uuid"
)

func TestMeta(t *testing.T) {
	s := newStore(t, Options{})
	u1, u2 := id(1), id(2)
	if m, err := s.Meta(u1); m != nil || err != nil {
		t.Fatalf("Meta of a new UAID = %q, %v; want nil, nil", m, err)
	}
	blob := []byte(`{"type":"udp","ip":"127.0.0.1","port":5000}`)
	if err := s.SetMeta(u1, blob); err != nil {
		t.Fatal(err)
	}
	blob[0] = 'X' // the store copied it
	m, err := s.Meta(u1)
	if err != nil || string(m) != `{"type":"udp","ip":"127.0.0.1","port":5000}` {
		t.Fatalf("Meta = %q, %v", m, err)
	}
	m[0] = 'Y' // the returned slice is the caller's
	if again, _ := s.Meta(u1); again[0] != '{' {
		t.Errorf("Meta returned an alias of stored data")
	}
	if m, _ := s.Meta(u2); m != nil {
		t.Errorf("Meta(u2) = %q; want nil", m)
	}
	if err := s.SetMeta(u1, []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Meta(u1); string(m) != "v2" {
		t.Errorf("Meta after replace = %q", m)
	}
	for _, empty := range [][]byte{nil, {}} {
		if err := s.SetMeta(u1, []byte("v3")); err != nil {
			t.Fatal(err)
		}
		if err := s.SetMeta(u1, empty); err != nil {
			t.Fatal(err)
		}
		if m, err := s.Meta(u1); m != nil || err != nil {
			t.Errorf("Meta after SetMeta(%#v) = %q, %v; want nil", empty, m, err)
		}
	}
	if err := s.SetMeta(u1, make([]byte, MaxMetaSize+1)); !errors.Is(err, ErrMetaTooLarge) {
		t.Errorf("SetMeta of %d bytes: err %v, want ErrMetaTooLarge", MaxMetaSize+1, err)
	}
	if err := s.SetMeta(u1, make([]byte, MaxMetaSize)); err != nil {
		t.Errorf("SetMeta of MaxMetaSize bytes: %v", err)
	}
}

func TestDropUAID(t *testing.T) {
	s := newStore(t, Options{MaxChannels: 2})
	u, neighbour := id(1), id(2)
	for _, uaid := range []uuid.UUID{u, neighbour} {
		mustRegister(t, s, uaid, id(10))
		mustRegister(t, s, uaid, id(11))
		mustPut(t, s, uaid, id(10), Put{Version: 4, Data: []byte("d")})
		if err := s.SetMeta(uaid, []byte("kick")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DropUAID(u); err != nil {
		t.Fatal(err)
	}
	if chs, err := s.Channels(u); chs != nil || err != nil {
		t.Errorf("Channels after DropUAID = %+v, %v", chs, err)
	}
	if m, err := s.Meta(u); m != nil || err != nil {
		t.Errorf("Meta after DropUAID = %q, %v", m, err)
	}
	if o, _ := mustPut(t, s, u, id(10), Put{Version: 5}); o != PutNotRegistered {
		t.Errorf("Put after DropUAID = %v", o)
	}
	// The channel quota is free again.
	mustRegister(t, s, u, id(20))
	if created, err := s.Register(u, id(21)); !created || err != nil {
		t.Errorf("Register after DropUAID = %v, %v", created, err)
	}
	// The neighbour is untouched.
	if chs, _ := s.Channels(neighbour); len(chs) != 2 || chs[0].Pending != 4 {
		t.Errorf("neighbour's channels after DropUAID = %+v", chs)
	}
	if m, _ := s.Meta(neighbour); string(m) != "kick" {
		t.Errorf("neighbour's meta after DropUAID = %q", m)
	}
	// Dropping an unknown UAID writes nothing.
	commits := s.Stats().Commits
	if err := s.DropUAID(id(3)); err != nil {
		t.Fatal(err)
	}
	if s.Stats().Commits != commits {
		t.Errorf("DropUAID of an unknown UAID committed")
	}
}

func TestEachUAID(t *testing.T) {
	s := newStore(t, Options{})
	want := map[uuid.UUID]bool{}
	for i := 0; i < 20; i++ {
		u := uuid.New()
		want[u] = true
		for j := 0; j < 3; j++ {
			if _, err := s.Register(u, uuid.New()); err != nil {
				t.Fatal(err)
			}
		}
		if i%2 == 0 {
			if err := s.SetMeta(u, []byte("kick")); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[uuid.UUID]bool{}
	if err := s.EachUAID(func(u uuid.UUID) bool {
		if got[u] {
			t.Fatalf("UAID %s listed twice", u)
		}
		got[u] = true
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("listed %d UAIDs, want %d", len(got), len(want))
	}
	for u := range want {
		if !got[u] {
			t.Fatalf("UAID %s not listed", u)
		}
	}
	n := 0
	_ = s.EachUAID(func(uuid.UUID) bool { n++; return n < 5 })
	if n != 5 {
		t.Fatalf("stopping early listed %d", n)
	}
}
