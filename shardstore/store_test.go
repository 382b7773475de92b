package shardstore

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// newStore opens a store on an in-memory FS (unless opts says otherwise) and
// closes it when the test ends.
func newStore(t testing.TB, opts Options) *Store {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = "db"
	}
	if opts.FS == nil {
		opts.FS = vfs.NewMem()
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// id returns a fixed, readable UUID: id(1) = 00000000-0000-0000-0000-000000000001.
func id(n byte) uuid.UUID {
	var u uuid.UUID
	u[15] = n
	return u
}

func mustRegister(t testing.TB, s *Store, uaid, chid uuid.UUID) {
	t.Helper()
	if _, err := s.Register(uaid, chid); err != nil {
		t.Fatalf("Register(%s, %s): %v", uaid, chid, err)
	}
}

func mustPut(t testing.TB, s *Store, uaid, chid uuid.UUID, p Put) (PutOutcome, uint64) {
	t.Helper()
	res, err := s.Put(uaid, chid, p)
	o, v := res.Outcome, res.Version
	if err != nil {
		t.Fatalf("Put(%s, %s, %+v): %v", uaid, chid, p, err)
	}
	return o, v
}

func mustChannel(t testing.TB, s *Store, uaid, chid uuid.UUID) Channel {
	t.Helper()
	ch, ok, err := s.Channel(uaid, chid)
	if err != nil || !ok {
		t.Fatalf("Channel(%s, %s) = ok %v, err %v; want the channel", uaid, chid, ok, err)
	}
	return ch
}

// sameChannel compares channels, telling nil data from empty data.
func sameChannel(a, b Channel) bool {
	return a.ID == b.ID && a.Version == b.Version && a.Pending == b.Pending &&
		(a.Data == nil) == (b.Data == nil) && bytes.Equal(a.Data, b.Data)
}

func TestOpenValidatesAndDoesNotMutateOptions(t *testing.T) {
	if _, err := Open(Options{FS: vfs.NewMem()}); !errors.Is(err, errNoDir) {
		t.Errorf("Open without Dir: err %v, want errNoDir", err)
	}
	if _, err := Open(Options{Dir: "db", FS: vfs.NewMem(), MaxChannels: -1}); err == nil {
		t.Errorf("Open with MaxChannels -1: no error")
	}
	opts := Options{Dir: "db", FS: vfs.NewMem()}
	before := opts
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if opts.Dir != before.Dir || opts.FS != before.FS || opts.Logger != nil || opts.MaxChannels != 0 ||
		opts.CacheSize != 0 || opts.MemTableSize != 0 || opts.MaxOpenFiles != 0 {
		t.Errorf("Open modified its options: %+v", opts)
	}
}

func TestCloseIsIdempotentAndRefusesCalls(t *testing.T) {
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	u, c := id(1), id(2)
	calls := map[string]error{}
	_, calls["Register"] = s.Register(u, c)
	calls["Unregister"] = s.Unregister(u, c)
	_, _, calls["Channel"] = s.Channel(u, c)
	_, calls["Channels"] = s.Channels(u)
	_, calls["Pending"] = s.Pending(u)
	_, calls["Put"] = s.Put(u, c, Put{Version: 1})
	_, calls["Ack"] = s.Ack(u, []Ack{{Channel: c, Version: 1}})
	calls["SetMeta"] = s.SetMeta(u, []byte("x"))
	_, calls["Meta"] = s.Meta(u)
	calls["DropUAID"] = s.DropUAID(u)
	for name, err := range calls {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: err %v, want ErrClosed", name, err)
		}
	}
	_ = s.Stats() // still works
}

// TestCloseWaitsForCallsInFlight closes the store while many goroutines
// write: each call either completes or returns ErrClosed, and none touches
// the closed Pebble DB (which would panic).
func TestCloseWaitsForCallsInFlight(t *testing.T) {
	s, err := Open(Options{Dir: "db", FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := id(byte(g + 1))
			for i := 0; ; i++ {
				_, err := s.Register(u, id(byte(i%100)))
				if i == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil && !errors.Is(err, ErrTooManyChannels) {
					t.Errorf("Register: %v", err)
					return
				}
			}
		}()
	}
	for range 8 {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
}

// TestReopen writes every kind of record to a real directory, closes the
// store, opens it again and finds everything.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	u1, u2 := id(1), id(2)
	s, err := Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, u1, id(10))
	mustRegister(t, s, u1, id(11))
	mustRegister(t, s, u1, id(12))
	mustRegister(t, s, u2, id(10))
	mustPut(t, s, u1, id(10), Put{Version: 5, Data: []byte("five")})
	mustPut(t, s, u1, id(11), Put{Version: 7})
	mustPut(t, s, u2, id(10), Put{Version: 9, Data: []byte{}})
	if _, err := s.Ack(u1, []Ack{{Channel: id(11), Version: 7}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta(u1, []byte("kick")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Channels(u1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Channel{
		{ID: id(10), Version: 5, Pending: 5, Data: []byte("five")},
		{ID: id(11), Version: 7},
		{ID: id(12)},
	}
	if len(got) != len(want) {
		t.Fatalf("Channels(u1) after reopen = %+v, want %+v", got, want)
	}
	for i := range want {
		if !sameChannel(got[i], want[i]) {
			t.Errorf("Channels(u1)[%d] after reopen = %+v, want %+v", i, got[i], want[i])
		}
	}
	if ch := mustChannel(t, s, u2, id(10)); !sameChannel(ch, Channel{ID: id(10), Version: 9, Pending: 9, Data: []byte{}}) {
		t.Errorf("u2 channel after reopen = %+v", ch)
	}
	if m, err := s.Meta(u1); err != nil || string(m) != "kick" {
		t.Errorf("Meta(u1) after reopen = %q, %v; want kick", m, err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestPebbleLogsGoToLogger reopens a store with a WAL to replay and finds
// Pebble's replay message in the slog output.
func TestPebbleLogsGoToLogger(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open(Options{Dir: "db", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	mustRegister(t, s, id(1), id(2))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err = Open(Options{Dir: "db", FS: fs, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.Contains(got, "subsystem=pebble") || !strings.Contains(got, "replayed 1 keys") {
		t.Errorf("no Pebble log line reached the logger; got:\n%s", out.String())
	}
}

func TestStatsCountCommits(t *testing.T) {
	var mu sync.Mutex
	var observed []bool
	s := newStore(t, Options{OnCommit: func(d time.Duration, synced bool) {
		mu.Lock()
		observed = append(observed, synced)
		mu.Unlock()
	}})
	u, c := id(1), id(2)
	mustRegister(t, s, u, c)                                             // synced
	mustPut(t, s, u, c, Put{Version: 1})                                 // synced
	mustPut(t, s, u, c, Put{Version: 1})                                 // stale: no commit
	if _, err := s.Ack(u, []Ack{{Channel: c, Version: 1}}); err != nil { // not synced
		t.Fatal(err)
	}
	if _, err := s.Ack(u, []Ack{{Channel: c, Version: 1}}); err != nil { // nothing to clear: no commit
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Commits != 3 || st.SyncedCommits != 2 || st.CommitErrors != 0 || st.Failed {
		t.Errorf("Stats = %+v, want 3 commits, 2 synced", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []bool{true, true, false}; len(observed) != 3 || observed[0] != want[0] || observed[1] != want[1] || observed[2] != want[2] {
		t.Errorf("OnCommit saw synced = %v, want %v", observed, want)
	}
}
