package shardstore

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/google/uuid"
)

// syncCountingFS counts fsyncs of WAL files. It wraps files created and
// reused (Pebble recycles WAL files) under names ending in ".log".
type syncCountingFS struct {
	vfs.FS
	syncs *atomic.Int64
}

func (fs syncCountingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return syncCountingFile{File: f, syncs: fs.syncs}, nil
}

func (fs syncCountingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs syncCountingFS) ReuseForWrite(oldname, newname string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, c)
	return fs.wrap(newname, f, err)
}

type syncCountingFile struct {
	vfs.File
	syncs *atomic.Int64
}

func (f syncCountingFile) Sync() error {
	f.syncs.Add(1)
	return f.File.Sync()
}

func (f syncCountingFile) SyncData() error {
	f.syncs.Add(1)
	return f.File.SyncData()
}

func (f syncCountingFile) SyncTo(length int64) (bool, error) {
	f.syncs.Add(1)
	return f.File.SyncTo(length)
}

// BenchmarkPutSynced measures durable Puts on a real directory from 1 and
// from many goroutines, each on its own UAID as the engine's per-UAID lock
// would have it. wal-syncs/op below 1 is Pebble's commit pipeline sharing one
// fsync among concurrent commits.
func BenchmarkPutSynced(b *testing.B) {
	for _, par := range []int{0, 4, 32} { // 0: one goroutine; else par*GOMAXPROCS
		goroutines := 1
		if par > 0 {
			goroutines = par * runtime.GOMAXPROCS(0)
		}
		b.Run(fmt.Sprintf("goroutines=%d", goroutines), func(b *testing.B) {
			var syncs atomic.Int64
			s := newStore(b, Options{Dir: b.TempDir(), FS: syncCountingFS{FS: vfs.Default, syncs: &syncs}})
			uaids := make([]uuid.UUID, goroutines)
			for i := range uaids {
				uaids[i] = uuid.New()
				mustRegister(b, s, uaids[i], id(1))
			}
			data := []byte(strings.Repeat("d", 64))
			var next atomic.Int64
			put := func(u uuid.UUID, v uint64) {
				if r, err := s.Put(u, id(1), Put{Version: v, Data: data}); err != nil || r.Outcome != PutStored {
					b.Errorf("Put = %v, %v", r.Outcome, err)
				}
			}
			b.ReportAllocs()
			syncs.Store(0)
			b.ResetTimer()
			if par == 0 {
				for i := range b.N {
					put(uaids[0], uint64(i+1))
				}
			} else {
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					u := uaids[next.Add(1)-1]
					for v := uint64(1); pb.Next(); v++ {
						put(u, v)
					}
				})
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "puts/s")
			b.ReportMetric(float64(syncs.Load())/float64(b.N), "wal-syncs/op")
		})
	}
}

// BenchmarkPending reads the pending channels of a UAID with 20 channels, 5
// of them pending with 32 bytes of data, from the memtable and from sstables.
func BenchmarkPending(b *testing.B) {
	for _, flushed := range []bool{false, true} {
		b.Run(fmt.Sprintf("flushed=%v", flushed), func(b *testing.B) {
			s := newStore(b, Options{Dir: b.TempDir()})
			u := uuid.New()
			for c := range 20 {
				mustRegister(b, s, u, id(byte(c)))
				if c%4 == 0 {
					mustPut(b, s, u, id(byte(c)), Put{Version: 7, Data: []byte(strings.Repeat("p", 32))})
				}
			}
			if flushed {
				if err := s.db.Flush(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				chs, err := s.Pending(u)
				if err != nil || len(chs) != 5 {
					b.Fatalf("Pending = %d channels, %v", len(chs), err)
				}
			}
		})
	}
}

// BenchmarkAck acks one channel of a UAID. "clear" acks a pending version
// (an unsynced write; the pending version is re-created outside the timer),
// "noop" acks a channel with nothing pending (a read, no write).
func BenchmarkAck(b *testing.B) {
	b.Run("clear", func(b *testing.B) {
		s := newStore(b, Options{Dir: b.TempDir()})
		u, c := uuid.New(), id(1)
		mustRegister(b, s, u, c)
		acks := []Ack{{Channel: c}}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			b.StopTimer()
			v := uint64(i + 1)
			setPendingNoSync(b, s, u, c, v)
			acks[0].Version = v
			b.StartTimer()
			if _, err := s.Ack(u, acks); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("noop", func(b *testing.B) {
		s := newStore(b, Options{Dir: b.TempDir()})
		u, c := uuid.New(), id(1)
		mustRegister(b, s, u, c)
		acks := []Ack{{Channel: c, Version: 1}}
		b.ReportAllocs()
		b.ResetTimer()
		for range b.N {
			if _, err := s.Ack(u, acks); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// setPendingNoSync writes channel (u, c) with version v pending, without
// sync: benchmark setup only.
func setPendingNoSync(b *testing.B, s *Store, u, c uuid.UUID, v uint64) {
	p := uaidPrefix(u)
	key := p.channelKey(c)
	rec := channelRecord{version: v, pending: v}
	val := make([]byte, rec.encodedLen())
	rec.encodeTo(val)
	batch := s.db.NewBatch()
	defer batch.Close()
	if err := batch.Set(key[:], val, nil); err != nil {
		b.Fatal(err)
	}
	if err := s.commit(batch, false); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCycle runs the store's half of the PUT -> ack cycle (a synced
// Put, then an Ack) from 64 goroutines, one UAID each, on the real disk,
// with and without the record cache. cpu-ns/cycle is the process's CPU
// time (user + system) per cycle, the figure the cache is there to cut.
func BenchmarkCycle(b *testing.B) {
	for _, entries := range []int{-1, 0} {
		b.Run(fmt.Sprintf("record-cache=%v", entries == 0), func(b *testing.B) {
			s := newStore(b, Options{Dir: b.TempDir(), FS: vfs.Default, RecordCacheEntries: entries})
			const loops = 64
			uaids := make([]uuid.UUID, loops)
			for i := range uaids {
				uaids[i] = uuid.New()
				mustRegister(b, s, uaids[i], id(1))
			}
			per := b.N/loops + 1
			cpu0 := processCPU(b)
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, u := range uaids {
				wg.Go(func() {
					for v := uint64(1); v <= uint64(per); v++ {
						if _, err := s.Put(u, id(1), Put{Version: v}); err != nil {
							b.Error(err)
							return
						}
						if _, err := s.Ack(u, []Ack{{id(1), v}}); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(per*loops), "cpu-ns/cycle")
		})
	}
}

// processCPU is this process's user + system CPU time in nanoseconds.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime)
}
