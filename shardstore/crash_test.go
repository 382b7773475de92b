package shardstore

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// crash simulates a power loss: it clones fs keeping only what was synced
// plus unsyncedPercent of the rest, closes s, and opens a store on the clone.
func crash(t *testing.T, s *Store, fs *vfs.MemFS, unsyncedPercent int, seed int64) *Store {
	t.Helper()
	cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPercent}
	if unsyncedPercent > 0 {
		cfg.RNG = rand.New(rand.NewPCG(uint64(seed), 0))
	}
	clone := fs.CrashClone(cfg)
	if err := s.Close(); err != nil {
		t.Fatalf("Close before reopening the crash clone: %v", err)
	}
	return newStore(t, Options{FS: clone})
}

// TestCrashKeepsStoredPutsAndPendingVersions: a Put that returned PutStored
// survives a crash, and an Ack (not synced) is either kept or lost, in which
// case the version is still pending and is delivered again; an Ack never
// makes a newer pending version disappear.
func TestCrashKeepsStoredPutsAndPendingVersions(t *testing.T) {
	u, c := id(1), id(10)
	for _, tc := range []struct {
		name        string
		syncAfter   bool // a synced write of another UAID follows the last ack
		wantPending uint64
	}{
		{name: "the last ack is lost: redelivery", wantPending: 3},
		{name: "a later synced write of another UAID makes the ack durable", syncAfter: true, wantPending: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s := newStore(t, Options{FS: fs})
			mustRegister(t, s, u, c)
			mustPut(t, s, u, c, Put{Version: 1, Data: []byte("one")})
			if _, err := s.Ack(u, []Ack{{Channel: c, Version: 1}}); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, u, c, Put{Version: 2, Data: []byte("two")})
			// A late ack of version 1 must not clear version 2.
			if _, err := s.Ack(u, []Ack{{Channel: c, Version: 1}}); err != nil {
				t.Fatal(err)
			}
			mustPut(t, s, u, c, Put{Version: 3, Data: []byte("three")})
			if _, err := s.Ack(u, []Ack{{Channel: c, Version: 3}}); err != nil {
				t.Fatal(err)
			}
			if tc.syncAfter {
				mustRegister(t, s, id(2), c)
			}

			s = crash(t, s, fs, 0, 0)
			want := Channel{ID: c, Version: 3}
			if tc.wantPending != 0 {
				want.Pending, want.Data = 3, []byte("three")
			}
			if ch := mustChannel(t, s, u, c); !sameChannel(ch, want) {
				t.Errorf("after crash: %+v, want %+v", ch, want)
			}
		})
	}
}

// TestCrashConcurrentPuts runs 32 goroutines, one UAID each (the engine
// serialises per UAID), that Put ever higher versions to their channels and
// Ack some of them. While they run, the test records every version whose Put
// has returned PutStored and then takes a crash clone of the filesystem. In
// the clone each channel's highest version is at least the recorded one (no
// stored Put is lost, though grouped fsyncs share a WAL sync), and a channel
// shows nothing pending only if its highest version was acked.
func TestCrashConcurrentPuts(t *testing.T) {
	const (
		goroutines  = 32
		channels    = 4
		putsBefore  = 2000 // stored Puts to wait for before the crash
		unsyncedPct = 50   // fraction of unsynced writes the clone keeps
	)
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			s, err := Open(Options{Dir: "db", FS: fs})
			if err != nil {
				t.Fatal(err)
			}
			uaid := func(g int) uuid.UUID { return uuid.UUID{0: 0xaa, 1: byte(g)} }
			for g := range goroutines {
				for c := range channels {
					mustRegister(t, s, uaid(g), id(byte(c)))
				}
			}

			// stored[g][c]: highest version of (uaid(g), c) whose Put
			// returned PutStored. acked[g][c]: highest version an Ack was
			// started for (set before calling Ack).
			var stored, acked [goroutines][channels]atomic.Uint64
			var total atomic.Int64
			enough := make(chan struct{})
			var enoughOnce sync.Once
			stop := make(chan struct{})
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(seed), uint64(g)))
					for v := uint64(1); ; v++ {
						select {
						case <-stop:
							return
						default:
						}
						c := rng.IntN(channels)
						res, err := s.Put(uaid(g), id(byte(c)), Put{Version: v, Data: []byte(fmt.Sprint(v))})
						o, got := res.Outcome, res.Version
						if err != nil || o != PutStored || got != v {
							t.Errorf("Put = %v, %d, %v", o, got, err)
							return
						}
						stored[g][c].Store(v)
						if total.Add(1) >= putsBefore {
							enoughOnce.Do(func() { close(enough) })
						}
						if rng.IntN(2) == 0 {
							acked[g][c].Store(v)
							if _, err := s.Ack(uaid(g), []Ack{{Channel: id(byte(c)), Version: v}}); err != nil {
								t.Errorf("Ack: %v", err)
								return
							}
						}
					}
				}()
			}

			<-enough
			var snapshot [goroutines][channels]uint64
			for g := range goroutines {
				for c := range channels {
					snapshot[g][c] = stored[g][c].Load()
				}
			}
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: unsyncedPct, RNG: rand.New(rand.NewPCG(uint64(seed), 0))})
			close(stop)
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = newStore(t, Options{FS: clone})
			var recovered int
			for g := range goroutines {
				for c := range channels {
					ch := mustChannel(t, s, uaid(g), id(byte(c)))
					if ch.Version < snapshot[g][c] {
						t.Errorf("uaid %d channel %d: version %d after crash, but Put(%d) had returned PutStored",
							g, c, ch.Version, snapshot[g][c])
					}
					if ch.Version > stored[g][c].Load() {
						t.Errorf("uaid %d channel %d: version %d after crash was never stored", g, c, ch.Version)
					}
					if ch.Pending == 0 && ch.Version != 0 && acked[g][c].Load() < ch.Version {
						t.Errorf("uaid %d channel %d: version %d not pending after crash, but never acked", g, c, ch.Version)
					}
					if ch.Pending != 0 && (ch.Pending != ch.Version || string(ch.Data) != fmt.Sprint(ch.Version)) {
						t.Errorf("uaid %d channel %d: after crash %+v", g, c, ch)
					}
					recovered += int(ch.Version)
				}
			}
			if recovered == 0 {
				t.Errorf("nothing recovered")
			}
		})
	}
}
