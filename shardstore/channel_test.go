package shardstore

import (
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestRegister(t *testing.T) {
	u := id(1)
	tests := []struct {
		name        string
		max         int
		existing    []uuid.UUID // registered first
		chid        uuid.UUID
		wantCreated bool
		wantErr     error
		wantCount   int
	}{
		{name: "new channel", chid: id(10), wantCreated: true, wantCount: 1},
		{name: "existing channel is idempotent", existing: []uuid.UUID{id(10)}, chid: id(10), wantCount: 1},
		{name: "second channel", existing: []uuid.UUID{id(10)}, chid: id(11), wantCreated: true, wantCount: 2},
		{name: "at max refuses a new channel", max: 2, existing: []uuid.UUID{id(10), id(11)}, chid: id(12),
			wantErr: ErrTooManyChannels, wantCount: 2},
		{name: "at max accepts an existing channel", max: 2, existing: []uuid.UUID{id(10), id(11)}, chid: id(11),
			wantCount: 2},
		{name: "below max", max: 3, existing: []uuid.UUID{id(10), id(11)}, chid: id(12), wantCreated: true, wantCount: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{MaxChannels: tc.max})
			for _, c := range tc.existing {
				mustRegister(t, s, u, c)
			}
			created, err := s.Register(u, tc.chid)
			if created != tc.wantCreated || !errors.Is(err, tc.wantErr) {
				t.Errorf("Register = %v, %v; want %v, %v", created, err, tc.wantCreated, tc.wantErr)
			}
			chs, err := s.Channels(u)
			if err != nil || len(chs) != tc.wantCount {
				t.Errorf("Channels = %d channels, %v; want %d", len(chs), err, tc.wantCount)
			}
		})
	}
}

func TestRegisterDefaultMaxChannels(t *testing.T) {
	s := newStore(t, Options{})
	u := id(1)
	for i := range DefaultMaxChannels {
		if created, err := s.Register(u, uuid.UUID{0: byte(i >> 8), 1: byte(i)}); !created || err != nil {
			t.Fatalf("Register #%d = %v, %v", i, created, err)
		}
	}
	if _, err := s.Register(u, id(255)); !errors.Is(err, ErrTooManyChannels) {
		t.Errorf("Register #%d: err %v, want ErrTooManyChannels", DefaultMaxChannels, err)
	}
	// Another UAID is not affected.
	if created, err := s.Register(id(2), id(255)); !created || err != nil {
		t.Errorf("Register under another UAID = %v, %v", created, err)
	}
}

func TestRegisterDoesNotResetState(t *testing.T) {
	s := newStore(t, Options{})
	u, c := id(1), id(10)
	mustRegister(t, s, u, c)
	mustPut(t, s, u, c, Put{Version: 4, Data: []byte("d")})
	if created, err := s.Register(u, c); created || err != nil {
		t.Fatalf("re-Register = %v, %v", created, err)
	}
	if ch := mustChannel(t, s, u, c); !sameChannel(ch, Channel{ID: c, Version: 4, Pending: 4, Data: []byte("d")}) {
		t.Errorf("after re-Register: %+v", ch)
	}
}

func TestUnregister(t *testing.T) {
	s := newStore(t, Options{MaxChannels: 2})
	u, c1, c2 := id(1), id(10), id(11)
	mustRegister(t, s, u, c1)
	mustRegister(t, s, u, c2)
	mustPut(t, s, u, c1, Put{Version: 3, Data: []byte("x")})

	if err := s.Unregister(u, c1); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.Channel(u, c1); ok || err != nil {
		t.Errorf("Channel after Unregister: ok %v, err %v", ok, err)
	}
	if p, err := s.Pending(u); err != nil || len(p) != 0 {
		t.Errorf("Pending after Unregister = %+v, %v; want none", p, err)
	}
	if o, _ := mustPut(t, s, u, c1, Put{Version: 4}); o != PutNotRegistered {
		t.Errorf("Put after Unregister = %v", o)
	}
	// Absent: no error, and no write.
	commits := s.Stats().Commits
	if err := s.Unregister(u, c1); err != nil {
		t.Errorf("Unregister of absent channel: %v", err)
	}
	if err := s.Unregister(id(9), c1); err != nil {
		t.Errorf("Unregister under unknown UAID: %v", err)
	}
	if got := s.Stats().Commits; got != commits {
		t.Errorf("Unregister of absent channels committed %d batches", got-commits)
	}
	// A tombstone stays, invisible, with the highest version accepted.
	if rec, ok := rawChannel(t, s, u, c1); !ok || !rec.dead || rec.version != 3 || rec.gen != 0 || rec.unregAt <= 0 {
		t.Errorf("record after Unregister = %+v (present %v), want a tombstone of version 3", rec, ok)
	}
	if chs, err := s.Channels(u); err != nil || len(chs) != 1 || chs[0].ID != c2 {
		t.Errorf("Channels after Unregister = %+v, %v; want only %s", chs, err, c2)
	}
	if _, err := s.Ack(u, []Ack{{Channel: c1, Version: 3}}); err != nil {
		t.Errorf("Ack of the unregistered channel: %v", err)
	}
	if rec, _ := rawChannel(t, s, u, c1); !rec.dead {
		t.Errorf("Ack brought the channel back: %+v", rec)
	}
	// The freed slot can be used again; re-registering starts from scratch,
	// in the generation after the UAID's highest (c2's 1), which Put and
	// Ack keep.
	if created, err := s.Register(u, c1); !created || err != nil {
		t.Errorf("Register after Unregister = %v, %v", created, err)
	}
	if ch := mustChannel(t, s, u, c1); !sameChannel(ch, Channel{ID: c1}) {
		t.Errorf("re-registered channel = %+v, want a fresh one", ch)
	}
	mustPut(t, s, u, c1, Put{Version: 1, Data: []byte("again")})
	if ch := mustChannel(t, s, u, c1); !sameChannel(ch, Channel{ID: c1, Version: 1, Pending: 1, Data: []byte("again")}) {
		t.Errorf("re-registered channel after Put = %+v", ch)
	}
	if _, err := s.Ack(u, []Ack{{Channel: c1, Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if rec, _ := rawChannel(t, s, u, c1); rec.dead || rec.gen != 2 || rec.version != 1 || rec.pending != 0 {
		t.Errorf("re-registered record after Put and Ack = %+v, want generation 2, version 1 acked", rec)
	}
}

// TestTombstonesDoNotCountAsChannels: unregistered channels leave room for
// new ones.
func TestTombstonesDoNotCountAsChannels(t *testing.T) {
	s := newStore(t, Options{MaxChannels: 3})
	u := id(1)
	for c := range byte(3) {
		mustRegister(t, s, u, id(10+c))
	}
	if err := s.Unregister(u, id(10)); err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, u, id(20))
	if _, err := s.Register(u, id(21)); !errors.Is(err, ErrTooManyChannels) {
		t.Errorf("Register beyond MaxChannels live: err %v, want ErrTooManyChannels", err)
	}
}

// TestTombstonesTrimmed: a UAID keeps its MaxChannels newest tombstones.
func TestTombstonesTrimmed(t *testing.T) {
	s := newStore(t, Options{MaxChannels: 3})
	u := id(1)
	clock := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return clock }
	// Channel ids in the reverse order of their unregistering, so that the
	// oldest is not the first by id.
	for i := range byte(6) {
		c := id(30 - i)
		mustRegister(t, s, u, c)
		if err := s.Unregister(u, c); err != nil {
			t.Fatal(err)
		}
		clock = clock.Add(time.Second)
	}
	for i := range byte(6) {
		rec, ok := rawChannel(t, s, u, id(30-i))
		if kept := i >= 3; ok != kept || ok && !rec.dead {
			t.Errorf("tombstone #%d: %+v (present %v), want present %v", i, rec, ok, kept)
		}
	}
}

func TestChannelsOrderedAndSeparatePerUAID(t *testing.T) {
	s := newStore(t, Options{})
	u1, u2 := id(1), id(2)
	for _, c := range []byte{30, 10, 20} {
		mustRegister(t, s, u1, id(c))
	}
	mustRegister(t, s, u2, id(10))
	mustPut(t, s, u1, id(20), Put{Version: 2})
	mustPut(t, s, u2, id(10), Put{Version: 8, Data: []byte("u2")})

	got, err := s.Channels(u1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Channel{{ID: id(10)}, {ID: id(20), Version: 2, Pending: 2}, {ID: id(30)}}
	if len(got) != len(want) {
		t.Fatalf("Channels(u1) = %+v, want %+v", got, want)
	}
	for i := range want {
		if !sameChannel(got[i], want[i]) {
			t.Errorf("Channels(u1)[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if ch := mustChannel(t, s, u2, id(10)); !sameChannel(ch, Channel{ID: id(10), Version: 8, Pending: 8, Data: []byte("u2")}) {
		t.Errorf("u2's channel = %+v", ch)
	}
	if ch := mustChannel(t, s, u1, id(10)); ch.Version != 0 {
		t.Errorf("u1's channel 10 saw u2's put: %+v", ch)
	}
	if _, ok, _ := s.Channel(u2, id(20)); ok {
		t.Errorf("u2 has u1's channel 20")
	}
	if chs, err := s.Channels(id(3)); chs != nil || err != nil {
		t.Errorf("Channels of unknown UAID = %+v, %v; want nil", chs, err)
	}
}

func TestPending(t *testing.T) {
	s := newStore(t, Options{})
	u := id(1)
	for c := byte(10); c < 15; c++ {
		mustRegister(t, s, u, id(c))
	}
	mustPut(t, s, u, id(11), Put{Version: 1, Data: []byte("eleven")})
	mustPut(t, s, u, id(12), Put{Version: 2, Data: []byte{}})
	mustPut(t, s, u, id(14), Put{Version: 4})
	mustPut(t, s, u, id(13), Put{Version: 3, Data: []byte("gone")})
	if _, err := s.Ack(u, []Ack{{Channel: id(13), Version: 3}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Pending(u)
	if err != nil {
		t.Fatal(err)
	}
	want := []Channel{
		{ID: id(11), Version: 1, Pending: 1, Data: []byte("eleven")},
		{ID: id(12), Version: 2, Pending: 2, Data: []byte{}},
		{ID: id(14), Version: 4, Pending: 4},
	}
	if len(got) != len(want) {
		t.Fatalf("Pending = %+v, want %+v", got, want)
	}
	for i := range want {
		if !sameChannel(got[i], want[i]) {
			t.Errorf("Pending[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Returned data is the caller's: appending to one must not touch another.
	got[1].Data = append(got[1].Data, "XXXXXX"...)
	got[0].Data[0] = 'E'
	again, err := s.Pending(u)
	if err != nil {
		t.Fatal(err)
	}
	if string(again[0].Data) != "eleven" || string(got[0].Data) != "Eleven" {
		t.Errorf("Pending data aliased: %q, %q", again[0].Data, got[0].Data)
	}
	if p, err := s.Pending(id(2)); p != nil || err != nil {
		t.Errorf("Pending of unknown UAID = %+v, %v; want nil", p, err)
	}
}
