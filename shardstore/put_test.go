package shardstore

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestPut(t *testing.T) {
	u, c := id(1), id(10)
	tests := []struct {
		name         string
		unregistered bool
		before       []Put // applied in order after Register
		put          Put
		wantOutcome  PutOutcome
		wantVersion  uint64
		want         Channel // the channel afterwards (ID filled in)
	}{
		{name: "first version", put: Put{Version: 5},
			wantOutcome: PutStored, wantVersion: 5, want: Channel{Version: 5, Pending: 5}},
		{name: "with data", put: Put{Version: 5, Data: []byte("hello")},
			wantOutcome: PutStored, wantVersion: 5, want: Channel{Version: 5, Pending: 5, Data: []byte("hello")}},
		{name: "empty data is kept as empty, not nil", put: Put{Version: 5, Data: []byte{}},
			wantOutcome: PutStored, wantVersion: 5, want: Channel{Version: 5, Pending: 5, Data: []byte{}}},
		{name: "max data size", put: Put{Version: 1, Data: []byte(strings.Repeat("d", MaxDataSize))},
			wantOutcome: PutStored, wantVersion: 1,
			want: Channel{Version: 1, Pending: 1, Data: []byte(strings.Repeat("d", MaxDataSize))}},
		{name: "not registered", unregistered: true, put: Put{Version: 5},
			wantOutcome: PutNotRegistered},
		{name: "version zero on a fresh channel is stale", put: Put{Version: 0},
			wantOutcome: PutStale, want: Channel{}},
		{name: "equal version is stale", before: []Put{{Version: 5, Data: []byte("a")}}, put: Put{Version: 5, Data: []byte("b")},
			wantOutcome: PutStale, wantVersion: 5, want: Channel{Version: 5, Pending: 5, Data: []byte("a")}},
		{name: "lower version is stale", before: []Put{{Version: 5}}, put: Put{Version: 4},
			wantOutcome: PutStale, wantVersion: 5, want: Channel{Version: 5, Pending: 5}},
		{name: "higher version replaces data", before: []Put{{Version: 5, Data: []byte("a")}}, put: Put{Version: 6, Data: []byte("b")},
			wantOutcome: PutStored, wantVersion: 6, want: Channel{Version: 6, Pending: 6, Data: []byte("b")}},
		{name: "higher version without data clears data", before: []Put{{Version: 5, Data: []byte("a")}}, put: Put{Version: 9},
			wantOutcome: PutStored, wantVersion: 9, want: Channel{Version: 9, Pending: 9}},
		{name: "auto on a fresh channel uses now", put: Put{Auto: true, Now: 1_700_000_000},
			wantOutcome: PutStored, wantVersion: 1_700_000_000, want: Channel{Version: 1_700_000_000, Pending: 1_700_000_000}},
		{name: "auto ignores Version", put: Put{Auto: true, Now: 100, Version: 7},
			wantOutcome: PutStored, wantVersion: 100, want: Channel{Version: 100, Pending: 100}},
		{name: "auto after a higher version uses highest+1", before: []Put{{Version: 2_000_000_000}}, put: Put{Auto: true, Now: 1_700_000_000},
			wantOutcome: PutStored, wantVersion: 2_000_000_001, want: Channel{Version: 2_000_000_001, Pending: 2_000_000_001}},
		{name: "auto twice in the same second", before: []Put{{Auto: true, Now: 100}}, put: Put{Auto: true, Now: 100},
			wantOutcome: PutStored, wantVersion: 101, want: Channel{Version: 101, Pending: 101}},
		{name: "auto at the top of uint64 is stale", before: []Put{{Version: math.MaxUint64}}, put: Put{Auto: true, Now: 100},
			wantOutcome: PutStale, wantVersion: math.MaxUint64, want: Channel{Version: math.MaxUint64, Pending: math.MaxUint64}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{})
			if !tc.unregistered {
				mustRegister(t, s, u, c)
			}
			for _, p := range tc.before {
				if o, _ := mustPut(t, s, u, c, p); o != PutStored {
					t.Fatalf("setup Put(%+v) = %v", p, o)
				}
			}
			data := tc.put.Data
			res, err := s.Put(u, c, tc.put)
			o, v := res.Outcome, res.Version
			if err != nil || o != tc.wantOutcome || v != tc.wantVersion {
				t.Fatalf("Put = %v, %d, %v; want %v, %d", o, v, err, tc.wantOutcome, tc.wantVersion)
			}
			if len(data) > 0 {
				data[0] ^= 0xff // the store must have copied it
			}
			ch, ok, err := s.Channel(u, c)
			if tc.unregistered {
				if ok || err != nil {
					t.Errorf("Channel after Put on unregistered = ok %v, err %v", ok, err)
				}
				return
			}
			tc.want.ID = c
			if err != nil || !ok || !sameChannel(ch, tc.want) {
				t.Errorf("Channel = %+v (ok %v, err %v); want %+v", ch, ok, err, tc.want)
			}
		})
	}
}

func TestPutRefusesOversizeData(t *testing.T) {
	s := newStore(t, Options{})
	u, c := id(1), id(10)
	mustRegister(t, s, u, c)
	res, err := s.Put(u, c, Put{Version: 1, Data: make([]byte, MaxDataSize+1)})
	o, v := res.Outcome, res.Version
	if !errors.Is(err, ErrDataTooLarge) || o == PutStored || v != 0 {
		t.Errorf("Put of %d bytes = %v, %d, %v; want ErrDataTooLarge", MaxDataSize+1, o, v, err)
	}
	if ch := mustChannel(t, s, u, c); ch.Version != 0 {
		t.Errorf("refused Put changed the channel: %+v", ch)
	}
}

func TestPutOutcomeString(t *testing.T) {
	for o, want := range map[PutOutcome]string{
		PutStored: "PutStored", PutStale: "PutStale", PutNotRegistered: "PutNotRegistered", 0: "PutOutcome(0)",
	} {
		if got := o.String(); got != want {
			t.Errorf("PutOutcome(%d).String() = %q, want %q", int(o), got, want)
		}
	}
}

func TestPreparePut(t *testing.T) {
	s := newStore(t, Options{})
	u, c := id(1), id(10)
	mustRegister(t, s, u, c)
	mustPut(t, s, u, c, Put{Version: 3})

	// Prepared: decided, nothing visible yet.
	res, w, err := s.PreparePut(u, c, Put{Version: 5, Data: []byte("x")})
	if err != nil || w == nil || res.Outcome != PutStored || res.Version != 5 ||
		len(res.Pending) != 1 || res.Pending[0].Pending != 5 || string(res.Pending[0].Data) != "x" {
		t.Fatalf("PreparePut = %+v, %v, %v; want PutStored 5 with the channel pending", res, w, err)
	}
	if ch := mustChannel(t, s, u, c); ch.Version != 3 {
		t.Fatalf("before Commit the channel reads %+v, want version 3", ch)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if ch := mustChannel(t, s, u, c); ch.Version != 5 || ch.Pending != 5 || string(ch.Data) != "x" {
		t.Fatalf("after Commit the channel reads %+v, want version 5 pending with data", ch)
	}

	// Discarded: nothing changes.
	_, w, err = s.PreparePut(u, c, Put{Version: 9})
	if err != nil || w == nil {
		t.Fatalf("PreparePut v9 = %v, %v", w, err)
	}
	w.Discard()
	if ch := mustChannel(t, s, u, c); ch.Version != 5 {
		t.Fatalf("after Discard the channel reads %+v, want version 5", ch)
	}
	if res, err := s.Put(u, c, Put{Version: 9}); err != nil || res.Outcome != PutStored {
		t.Fatalf("Put v9 after the discarded one = %+v, %v; want PutStored", res, err)
	}

	// Outcomes that write nothing come without a write.
	for _, tc := range []struct {
		chid uuid.UUID
		p    Put
		want PutOutcome
	}{{c, Put{Version: 9}, PutStale}, {id(11), Put{Version: 1}, PutNotRegistered}} {
		res, w, err := s.PreparePut(u, tc.chid, tc.p)
		if err != nil || w != nil || res.Outcome != tc.want {
			t.Errorf("PreparePut(%s, %+v) = %+v, %v, %v; want %v and no write", tc.chid, tc.p, res, w, err, tc.want)
		}
	}

	// A store closed between the two steps refuses the commit.
	_, w, err = s.PreparePut(u, c, Put{Version: 10})
	if err != nil || w == nil {
		t.Fatalf("PreparePut v10 = %v, %v", w, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Errorf("Commit after Close = %v, want ErrClosed", err)
	}
}
