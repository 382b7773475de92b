package shardstore

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// walFailingFS returns an in-memory FS whose WAL writes and syncs fail
// while *failing is true. errorfs does not wrap WAL files that Pebble
// recycles (ReuseForWrite); the tests below write far less than a memtable,
// so their first WAL is never rotated.
func walFailingFS(failing *atomic.Bool) vfs.FS {
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !failing.Load() || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		switch op.Kind {
		case errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
			return errorfs.ErrInjected
		}
		return nil
	})
	return errorfs.Wrap(vfs.NewMem(), inj)
}

// TestWALFailureFailsTheStore makes the WAL's writes and syncs fail: the Put
// in progress must not report PutStored, and the store refuses every later
// call with ErrFailed instead of pretending to be durable.
func TestWALFailureFailsTheStore(t *testing.T) {
	var failing atomic.Bool
	s, err := Open(Options{Dir: "db", FS: walFailingFS(&failing)})
	if err != nil {
		t.Fatal(err)
	}
	u, c := id(1), id(10)
	mustRegister(t, s, u, c)

	failing.Store(true)
	res, err := s.Put(u, c, Put{Version: 1})
	o, v := res.Outcome, res.Version
	if !errors.Is(err, ErrFailed) || o == PutStored || v != 0 {
		t.Fatalf("Put on a failing WAL = %v, %d, %v; want ErrFailed", o, v, err)
	}
	if !s.Stats().Failed {
		t.Errorf("Stats().Failed = false after a fatal error")
	}
	if _, _, err := s.Channel(u, c); !errors.Is(err, ErrFailed) {
		t.Errorf("Channel after failure: err %v, want ErrFailed", err)
	}
	if _, err := s.Register(u, id(11)); !errors.Is(err, ErrFailed) {
		t.Errorf("Register after failure: err %v, want ErrFailed", err)
	}
	_ = s.Close() // must return; it reports the injected error
	if _, err := s.Channels(u); !errors.Is(err, ErrClosed) {
		t.Errorf("Channels after Close: err %v, want ErrClosed", err)
	}
}

// TestWALFailureUnderConcurrentPuts: Puts of many UAIDs share a failing WAL
// sync; every one of them returns ErrFailed, none returns PutStored or hangs.
func TestWALFailureUnderConcurrentPuts(t *testing.T) {
	var failing atomic.Bool
	s, err := Open(Options{Dir: "db", FS: walFailingFS(&failing)})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines = 16
	for g := range goroutines {
		mustRegister(t, s, id(byte(g)), id(100))
	}
	failing.Store(true)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Put(id(byte(g)), id(100), Put{Version: 1})
			o, _ := res.Outcome, res.Version
			if o == PutStored || !errors.Is(err, ErrFailed) {
				t.Errorf("Put on a failing WAL = %v, %v; want ErrFailed", o, err)
			}
		}()
	}
	wg.Wait()
	_ = s.Close()
}
