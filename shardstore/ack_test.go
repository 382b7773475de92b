package shardstore

import "testing"

func TestAck(t *testing.T) {
	u, c1, c2 := id(1), id(10), id(11)
	tests := []struct {
		name    string
		puts    []Put // on c1, in order, after registering c1 and c2
		acks    []Ack
		want    Channel // c1 afterwards (ID filled in)
		commits uint64  // batches the Ack committed
		cleared int     // what Ack reports
	}{
		{name: "equal version clears pending and data",
			puts: []Put{{Version: 5, Data: []byte("d")}}, acks: []Ack{{Channel: c1, Version: 5}},
			want: Channel{Version: 5}, commits: 1, cleared: 1},
		{name: "higher version clears pending",
			puts: []Put{{Version: 5}}, acks: []Ack{{Channel: c1, Version: 9}},
			want: Channel{Version: 5}, commits: 1, cleared: 1},
		{name: "lower version keeps the newer pending version and its data",
			puts: []Put{{Version: 5}, {Version: 6, Data: []byte("six")}}, acks: []Ack{{Channel: c1, Version: 5}},
			want: Channel{Version: 6, Pending: 6, Data: []byte("six")}, commits: 0},
		{name: "nothing pending is a no-op",
			puts: []Put{{Version: 5}}, acks: []Ack{{Channel: c1, Version: 5}, {Channel: c1, Version: 5}},
			want: Channel{Version: 5}, commits: 1, cleared: 2},
		{name: "never written channel is a no-op",
			acks: []Ack{{Channel: c1, Version: 5}}, want: Channel{}, commits: 0},
		{name: "unknown channel is ignored",
			puts: []Put{{Version: 5}}, acks: []Ack{{Channel: id(99), Version: 5}, {Channel: c1, Version: 5}},
			want: Channel{Version: 5}, commits: 1, cleared: 1},
		{name: "several channels in one batch",
			puts: []Put{{Version: 5}}, acks: []Ack{{Channel: c1, Version: 5}, {Channel: c2, Version: 1}},
			want: Channel{Version: 5}, commits: 1, cleared: 2},
		{name: "no acks", puts: []Put{{Version: 5}}, want: Channel{Version: 5, Pending: 5}, commits: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, Options{})
			mustRegister(t, s, u, c1)
			mustRegister(t, s, u, c2)
			mustPut(t, s, u, c2, Put{Version: 1})
			for _, p := range tc.puts {
				mustPut(t, s, u, c1, p)
			}
			before := s.Stats()
			cleared, err := s.Ack(u, tc.acks)
			if err != nil {
				t.Fatalf("Ack: %v", err)
			}
			if cleared != tc.cleared {
				t.Errorf("Ack cleared %d, want %d", cleared, tc.cleared)
			}
			after := s.Stats()
			if got := after.Commits - before.Commits; got != tc.commits {
				t.Errorf("Ack committed %d batches, want %d", got, tc.commits)
			}
			if after.SyncedCommits != before.SyncedCommits {
				t.Errorf("Ack synced")
			}
			tc.want.ID = c1
			if ch := mustChannel(t, s, u, c1); !sameChannel(ch, tc.want) {
				t.Errorf("channel after Ack = %+v, want %+v", ch, tc.want)
			}
		})
	}
}

// TestAckIsPerUAID checks that an ack names channels of its own UAID only.
func TestAckIsPerUAID(t *testing.T) {
	s := newStore(t, Options{})
	u1, u2, c := id(1), id(2), id(10)
	mustRegister(t, s, u1, c)
	mustRegister(t, s, u2, c)
	mustPut(t, s, u1, c, Put{Version: 3})
	mustPut(t, s, u2, c, Put{Version: 3})
	if _, err := s.Ack(u1, []Ack{{Channel: c, Version: 3}}); err != nil {
		t.Fatal(err)
	}
	if ch := mustChannel(t, s, u2, c); ch.Pending != 3 {
		t.Errorf("u2's channel after acking u1's: %+v", ch)
	}
	if ch := mustChannel(t, s, u1, c); ch.Pending != 0 {
		t.Errorf("u1's channel after ack: %+v", ch)
	}
}
