// Package shardstore is a pushd node's shard of SimplePush state: for every
// UAID the node owns, its channels (registrations) with, per channel, the
// highest accepted version and the pending (unacknowledged) version with its
// data, plus one opaque meta record per UAID (its KICK target, encoded by the
// engine). It is the only package that touches Pebble. Pending versions
// survive restarts and kill -9: every write that the protocol answers on
// (Register, Unregister, Put, SetMeta, DropUAID) is synced to the WAL before
// it returns.
//
// # Relation to the other packages
//
// The engine owns the per-UAID lock and calls the store with it held; the
// cluster package places UAIDs on a consistent-hash ring using RingHash, the
// same function that orders the store's keys, so everything a node hands over
// when the ring changes is a set of contiguous key ranges.
//
// # Key layout
//
// Every key starts with a 24-byte UAID prefix:
//
//	[0:8]   RingHash(uaid), big-endian (xxhash64 of the 16 UAID bytes)
//	[8:24]  the 16 UAID bytes
//	[24]    record kind
//
// followed by what the kind needs:
//
//	kind 0x01 meta     key = prefix | 0x01                (25 bytes)
//	kind 0x02 channel  key = prefix | 0x02 | channel id   (41 bytes)
//
// Kinds are below 0xff, so [prefix, prefix|0xff) holds exactly one UAID's
// records, [prefix|0x02, prefix|0x03) exactly its channels (ordered by
// channel id), and the 8-byte big-endian bounds [lo, hi) exactly the records
// of the UAIDs whose ring hash is in [lo, hi). Pebble's default bytewise
// comparer orders them.
//
// Values begin with an encoding version byte so the layout can change
// without rewriting stores; decoding rejects anything the encoder cannot
// have produced with an error wrapping ErrCorrupt, never a panic.
//
//	channel, v1: [0]=1 [1]=flags (bit 0: data present) [2:10]=highest
//	             [10:18]=pending (0 = none) [18:]=data (<= MaxDataSize)
//	channel, v2: [0]=2 [1]=flags (bit 1: tombstone) [2:18] as v1
//	             [18:22]=generation [22:30]=unregistered at (Unix s, 0 =
//	             live) [30:]=data
//	meta,    v1: [0]=1 [1:]=blob (non-empty, <= MaxMetaSize)
//
// A channel record is written in encoding 1 whenever it can be (a live
// registration of generation 0, nearly all of them), in encoding 2
// otherwise. Unregister leaves a tombstone (see record.go): a merge with a
// copy of the registration from another node keeps the tombstone, so an
// unregistered channel never comes back, and a later registration of its
// channel id, in a higher generation, beats the tombstone.
//
// # Concurrency
//
// All methods are safe for concurrent use. The read-modify-write methods
// (Register, Unregister, Put, Ack, SetMeta, DropUAID) must be serialised per
// UAID by the caller: the engine holds its striped per-UAID lock around
// them. The store has no per-UAID lock of its own. Calls for different UAIDs
// are expected to run concurrently, and that is how fsyncs are shared: each
// synced write is one Pebble batch committed with pebble.Sync, and Pebble's
// commit pipeline writes concurrent batches to the WAL in order and covers
// all of them with one fsync.
//
// The store's only lock is Store.mu, a sync.RWMutex held for reading by
// every call for its duration and for writing by Close (so Close waits for
// calls in flight). Callers come in holding their per-UAID lock, giving the
// order "engine per-UAID lock -> Store.mu"; while holding Store.mu the store
// takes no other lock of its own and calls out only to Options.OnCommit,
// which must not call back into the Store.
//
// Methods block on disk I/O (a synced write waits for an fsync). Never call
// them from an event loop or a callback that must not block; hand the work
// to a goroutine that may wait.
//
// There is no batching goroutine: measured on this machine (2 vCPU, ext4 on
// a virtual disk, Go 1.26, Pebble v2.1.7; BenchmarkPutSynced, recorded in
// testdata/bench_results.txt), one writer reaches 7.5-15k synced Puts/s at
// one WAL fsync per Put, 8 concurrent writers ~66k/s at one fsync per ~4
// Puts, and 64 concurrent writers 210-230k/s at one fsync per ~13 Puts.
// Pebble's pipeline already groups commits as well as a queue in front of it
// could, without an extra goroutine hop per write.
//
// # Durability
//
// Register, Unregister, Put, SetMeta and DropUAID are durable when they
// return. Ack is written without sync: a crash may lose it, which causes a
// redelivery that clients tolerate; since the WAL is replayed as a prefix,
// a lost Ack can never take a newer, synced pending version with it.
//
// Pebble reports unrecoverable conditions (a failed WAL write or fsync,
// detected corruption) through its logger's Fatalf and does not expect it
// to return. The store's logger adapter logs them at Error and panics; a
// panic on a caller's goroutine is recovered, fails the store (every later
// call returns an error wrapping ErrFailed) and is returned as that error, so
// a write that did not reach the disk is never reported as stored. On
// Pebble's background goroutines the panic ends the process, as Pebble's
// default logger would.
//
// # Resources
//
// Memory is kept small (nodes hold millions of idle sockets): an 8 MiB block
// cache by default. Memtables are 64 MiB, but their memory is touched only
// as writes fill them, and fewer memtable switches keep synced commits'
// tail latency down (see DefaultMemTableSize). Pebble keeps at most about
// Options.MaxOpenFiles (default 256) files open; count them in the node's
// file-descriptor reserve.
package shardstore
