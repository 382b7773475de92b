package shardstore

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Defaults applied by Open to zero fields of Options.
const (
	DefaultMaxChannels = 200
	DefaultCacheSize   = 8 << 20
	// DefaultMemTableSize is large because every memtable switch (and the
	// flush behind it) shows in the tail latency of synced commits:
	// measured on the PUT path at 5,000 PUT/s, p99.9 38 ms with 4 MiB, 12
	// ms with 32 MiB, 9 ms with 64 MiB. Its memory is touched only as it
	// fills, so idle nodes do not pay for it.
	DefaultMemTableSize = 64 << 20
	// DefaultMaxOpenFiles bounds the files Pebble keeps open (sstables in its
	// file cache, plus a handful of WAL, MANIFEST, lock and directory
	// handles). Callers sizing a file-descriptor reserve should count it.
	DefaultMaxOpenFiles = 256
)

// Options configures a Store. Open copies it; the caller's value is never
// modified.
type Options struct {
	// Dir is the directory of the Pebble store. Required; created if absent.
	Dir string

	// FS is the filesystem the store lives on. Nil means the real disk.
	// Tests use vfs.NewMem, vfs.NewCrashableMem or an errorfs wrapper.
	FS vfs.FS

	// Logger receives the store's logs, including Pebble's own (WAL replay,
	// background errors). Nil means discard.
	Logger *slog.Logger

	// MaxChannels is the most channels one UAID may register. Zero means
	// DefaultMaxChannels (200).
	MaxChannels int

	// CacheSize is Pebble's block cache in bytes. Zero means
	// DefaultCacheSize (8 MiB): nodes hold millions of idle sockets, so
	// memory goes to them, not to the cache.
	CacheSize int64

	// MemTableSize is the size of one Pebble memtable. Zero means
	// DefaultMemTableSize (64 MiB).
	MemTableSize uint64

	// MaxOpenFiles is a soft limit on the files Pebble keeps open. Zero
	// means DefaultMaxOpenFiles (256).
	MaxOpenFiles int

	// RecordCacheEntries bounds the cache of hot channel records and
	// pending indexes that spares the PUT and ack paths their Pebble reads
	// (see cache.go). Zero means DefaultRecordCacheEntries; negative turns
	// the cache off.
	RecordCacheEntries int

	// OnCommit, if set, is called after every commit with its latency and
	// whether it was synced (fsynced before returning). It runs on the
	// committing goroutine, concurrently from many goroutines, and must be
	// cheap and must not call back into the Store.
	OnCommit func(d time.Duration, synced bool)
}

// withDefaults returns a copy of o with defaults applied, or an error if o
// is invalid.
func (o Options) withDefaults() (Options, error) {
	if o.Dir == "" {
		return o, errNoDir
	}
	if o.MaxChannels < 0 || o.CacheSize < 0 || o.MaxOpenFiles < 0 {
		return o, fmt.Errorf("shardstore: negative option (MaxChannels %d, CacheSize %d, MaxOpenFiles %d)",
			o.MaxChannels, o.CacheSize, o.MaxOpenFiles)
	}
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.RecordCacheEntries == 0 {
		o.RecordCacheEntries = DefaultRecordCacheEntries
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxChannels == 0 {
		o.MaxChannels = DefaultMaxChannels
	}
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.MemTableSize == 0 {
		o.MemTableSize = DefaultMemTableSize
	}
	if o.MaxOpenFiles == 0 {
		o.MaxOpenFiles = DefaultMaxOpenFiles
	}
	return o, nil
}
