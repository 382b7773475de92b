package shardstore

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
)

// Store is one node's shard: the channels, pending versions and meta records
// of the UAIDs this node owns, in a Pebble store.
//
// Concurrency: all methods are safe for concurrent use. The read-modify-write
// methods (Register, Unregister, Put, Ack, SetMeta, DropUAID) must not run
// concurrently for the same UAID: the caller serialises them per UAID (the
// engine's striped per-UAID lock). Calls for different UAIDs run in parallel,
// and that is how synced writes share fsyncs (see the package doc). Readers
// (Channel, Channels, Pending, Meta) need no lock; run concurrently with a
// writer of the same UAID they see the record before or after that write.
//
// Blocking: every method may wait for disk I/O (synced writes wait for an
// fsync, reads may miss the cache). Never call them from an event loop.
//
// Buffers: Store never keeps a slice passed to it after the call returns,
// and slices it returns are the caller's.
type Store struct {
	db          *pebble.DB
	log         *slog.Logger
	maxChannels int
	onCommit    func(time.Duration, bool)
	cache       *recordCache     // nil when disabled
	now         func() time.Time // the clock of tombstones; time.Now

	// mu is held for reading by every call for its whole duration and for
	// writing by Close, so Close waits for calls in flight and no call
	// touches a closed pebble.DB.
	mu struct {
		sync.RWMutex
		closed bool
	}

	// failed holds the error that made the store fail (wrapping ErrFailed),
	// nil while healthy. Set once.
	failed atomic.Pointer[error]

	stats struct {
		commits       atomic.Uint64
		syncedCommits atomic.Uint64
		commitNanos   atomic.Uint64
		commitErrors  atomic.Uint64
		cacheHits     atomic.Uint64
		cacheMisses   atomic.Uint64
	}
}

// Stats are the store's counters since Open, for /metrics. All are cheap to
// read.
type Stats struct {
	Commits       uint64        // batches committed, synced or not
	SyncedCommits uint64        // of which committed with pebble.Sync
	CommitErrors  uint64        // commits that returned an error
	CommitTime    time.Duration // total latency of all commits
	Failed        bool          // the store hit ErrFailed
	CacheHits     uint64        // record reads answered by the record cache
	CacheMisses   uint64        // record reads of cached kinds that went to Pebble
}

// Open opens, or creates, the store in opts.Dir, replaying its WAL. It does
// not modify opts.
func Open(opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cache := pebble.NewCache(o.CacheSize)
	defer cache.Unref() // the DB holds its own reference
	popts := &pebble.Options{
		FS:                 o.FS,
		Cache:              cache,
		MemTableSize:       o.MemTableSize,
		MaxOpenFiles:       o.MaxOpenFiles,
		Logger:             pebbleLogger{log: o.Logger.With(slog.String("subsystem", "pebble"))},
		FormatMajorVersion: pebble.FormatNewest,
	}
	// Most reads are point lookups (a channel, a pending index) of UAIDs
	// absent from most sstables: bloom filters skip those tables.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	s := &Store{
		log:         o.Logger,
		maxChannels: o.MaxChannels,
		now:         time.Now,
		onCommit:    o.OnCommit,
		cache:       newRecordCache(o.RecordCacheEntries),
	}
	db, err := openPebble(o.Dir, popts)
	if err != nil {
		return nil, fmt.Errorf("shardstore: open %s: %w", o.Dir, err)
	}
	s.db = db
	return s, nil
}

// openPebble opens Pebble, turning a Fatalf during recovery into an error.
func openPebble(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%w: %w", ErrFailed, fe)
		}
	}()
	return pebble.Open(dir, opts)
}

// Close waits for calls in flight, then flushes and closes Pebble. It is
// idempotent: later calls return nil, and every other method returns
// ErrClosed.
func (s *Store) Close() (err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil
	}
	s.mu.closed = true
	defer func() {
		if r := recover(); r != nil {
			fe, ok := r.(fatalError)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("%w: %w", ErrFailed, fe)
		}
	}()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("shardstore: close: %w", err)
	}
	return nil
}

// Stats returns the store's counters. It works after Close.
func (s *Store) Stats() Stats {
	return Stats{
		Commits:       s.stats.commits.Load(),
		SyncedCommits: s.stats.syncedCommits.Load(),
		CommitErrors:  s.stats.commitErrors.Load(),
		CommitTime:    time.Duration(s.stats.commitNanos.Load()),
		Failed:        s.failed.Load() != nil,
		CacheHits:     s.stats.cacheHits.Load(),
		CacheMisses:   s.stats.cacheMisses.Load(),
	}
}

// enter starts a call: it takes s.mu for reading and returns ErrClosed or
// the failure error if the call must not go on. On success the caller must
// defer s.exit(&err).
func (s *Store) enter() error {
	s.mu.RLock()
	if s.mu.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	if f := s.failed.Load(); f != nil {
		s.mu.RUnlock()
		return *f
	}
	return nil
}

// exit ends a call started by enter. A Pebble Fatalf raised on this
// goroutine (see pebbleLogger) fails the store and becomes *err; other
// panics go on.
func (s *Store) exit(err *error) {
	defer s.mu.RUnlock()
	r := recover()
	if r == nil {
		return
	}
	fe, ok := r.(fatalError)
	if !ok {
		panic(r)
	}
	ferr := fmt.Errorf("%w: %w", ErrFailed, fe)
	if s.failed.CompareAndSwap(nil, &ferr) {
		s.log.Error("shardstore: store failed; refusing further calls", slog.Any("err", fe))
	}
	*err = ferr
}

// commit commits b, synced or not, and accounts for it. It does not close
// b. Records of b already in the record cache are updated there.
func (s *Store) commit(b *pebble.Batch, sync bool) error {
	return s.commitCaching(b, sync, false)
}

// commitCaching is commit; with add, b's records are also added to the
// record cache (the hot path: Put and Ack).
func (s *Store) commitCaching(b *pebble.Batch, sync, add bool) error {
	wo := pebble.NoSync
	if sync {
		wo = pebble.Sync
	}
	start := time.Now()
	err := b.Commit(wo)
	d := time.Since(start)
	s.stats.commits.Add(1)
	if sync {
		s.stats.syncedCommits.Add(1)
	}
	s.stats.commitNanos.Add(uint64(d))
	if s.onCommit != nil {
		s.onCommit(d, sync)
	}
	if err != nil {
		s.stats.commitErrors.Add(1)
		if s.cache != nil {
			s.cache.forget(b)
		}
		return fmt.Errorf("shardstore: commit: %w", err)
	}
	if s.cache != nil {
		s.cache.apply(b, add)
	}
	return nil
}

// get reads the value at key, through the record cache for the kinds it
// holds: ok=false if absent. The value is valid until done is called, and
// must not be modified.
func (s *Store) get(key []byte) (val []byte, ok bool, done func(), err error) {
	var gen uint64
	if s.cache != nil {
		if _, cacheable := cachedForm(key, nil); cacheable {
			var hit bool
			if val, hit, gen = s.cache.get(key); hit {
				s.stats.cacheHits.Add(1)
				return val, val != nil, noop, nil
			}
			s.stats.cacheMisses.Add(1)
			defer func() {
				if ok {
					s.cache.fill(key, val, gen)
				}
			}()
		}
	}
	return s.getPebble(key)
}

// getPebble is get without the cache.
func (s *Store) getPebble(key []byte) (val []byte, ok bool, done func(), err error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, noop, nil
	}
	if err != nil {
		return nil, false, noop, err
	}
	return v, true, func() { _ = closer.Close() }, nil
}

func noop() {}

// readChannel reads and decodes the channel record at key; ok=false if
// absent. With withData the record's data is copied for the caller (nil
// stays nil, empty stays empty); without it rec.data is nil.
func (s *Store) readChannel(key []byte, withData bool) (rec channelRecord, ok bool, err error) {
	get := s.get
	if withData {
		get = s.getPebble // the cache holds no data
	}
	v, ok, done, err := get(key)
	if err != nil {
		return rec, false, fmt.Errorf("shardstore: get channel: %w", err)
	}
	if !ok {
		return rec, false, nil
	}
	defer done()
	rec, err = decodeChannel(v)
	if err != nil {
		return rec, false, fmt.Errorf("shardstore: channel %x: %w", key[channelIDOff:], err)
	}
	if withData {
		rec.data = bytes.Clone(rec.data)
	} else {
		rec.data = nil
	}
	return rec, true, nil
}
