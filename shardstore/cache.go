package shardstore

import (
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// The record cache keeps the newest known value of hot channel records
// (their header, never their data) and pending indexes, so that
// the read half of the PUT and ack read-modify-writes does not walk
// Pebble's memtable skiplist on every call. A PUT -> ack cycle reads four
// such records; from Pebble each read costs a skiplist search through a
// memtable full of the hot keys' obsolete versions.
//
// Coherence: every write reaches Pebble through Store.commit, which, once
// the batch is visible, writes its records through to the cache tagged
// with the batch's sequence number; an entry is only ever replaced by a
// newer sequence number. A range deletion (a partition dropped after a
// handoff, which takes no per-UAID locks) empties the whole cache and
// raises its floor to the deletion's sequence number: a commit older than
// that which writes through afterwards is ignored. A read that missed
// fills the cache only if its stripe saw no write and no eviction since
// the read began (the stripe's generation is unchanged) and the key is
// still absent: a read that raced with a commit never installs what the
// commit replaced. Two commits of one key are otherwise never concurrent
// (the Store's callers serialise the writes of a UAID), so an evicted
// entry cannot be brought back older by a late write-through.
//
// Only Put and Ack commits add keys (they are the hot path); other commits
// update keys already cached. Reads that find nothing never add an entry,
// so requests for unknown channels cannot fill the cache.

// cacheStripes is the number of independently locked parts of the cache.
// Keys of one UAID share a stripe (chosen by their ring hash).
const cacheStripes = 64

// DefaultRecordCacheEntries bounds the record cache: about 130 bytes each
// (key, header, map entry), 4 MiB in all.
const DefaultRecordCacheEntries = 32 << 10

// cacheEntryBytes is the memory budget of one entry: the cache holds at
// most entries*cacheEntryBytes bytes of keys, values and overhead, so
// that large pending indexes (up to 3.2 KB for 200 pending channels) take
// the room of several small entries rather than multiply the budget.
const cacheEntryBytes = 130

// cacheEntryOverhead approximates the map slot and headers of an entry.
const cacheEntryOverhead = 64

type recordCache struct {
	perStripe      int // entries
	perStripeBytes int
	stripes        [cacheStripes]cacheStripe
}

type cacheStripe struct {
	mu sync.Mutex
	// gen counts the writes and evictions in this stripe (guarded by mu).
	gen uint64
	// floor is the sequence number of the latest range deletion: writes
	// at or below it are not cached (guarded by mu).
	floor uint64
	// m maps a key to its entry, and bytes sums their sizes (entrySize)
	// (guarded by mu). Change both through setLocked and deleteLocked.
	m     map[string]cacheEntry
	bytes int
	_     [24]byte // keep stripes on separate cache lines
}

func entrySize(key string, e cacheEntry) int {
	return len(key) + len(e.val) + cacheEntryOverhead
}

// setLocked stores e for key, replacing any entry.
func (st *cacheStripe) setLocked(key string, e cacheEntry) {
	if old, ok := st.m[key]; ok {
		st.bytes -= entrySize(key, old)
	}
	st.m[key] = e
	st.bytes += entrySize(key, e)
}

// deleteLocked drops key's entry, if any.
func (st *cacheStripe) deleteLocked(key string) {
	if old, ok := st.m[key]; ok {
		st.bytes -= entrySize(key, old)
		delete(st.m, key)
	}
}

// cacheEntry is a cached record. val is nil when the record is known to be
// deleted; it is never modified once stored, so readers may keep it after
// unlocking.
type cacheEntry struct {
	seq uint64 // the writing batch's sequence number; 0 when filled by a read
	val []byte
}

func newRecordCache(entries int) *recordCache {
	if entries <= 0 {
		return nil
	}
	per := max(1, entries/cacheStripes)
	c := &recordCache{perStripe: per, perStripeBytes: per * cacheEntryBytes}
	for i := range c.stripes {
		c.stripes[i].m = make(map[string]cacheEntry)
	}
	return c
}

// stripe picks key's stripe from the low byte of its ring hash.
func (c *recordCache) stripe(key []byte) *cacheStripe {
	if len(key) < 8 {
		return &c.stripes[0]
	}
	return &c.stripes[key[7]%cacheStripes]
}

// get returns the cached value of key: found reports a cache hit, and val
// is nil for a record known to be absent. On a miss it returns the
// stripe's generation to pass to fill.
func (c *recordCache) get(key []byte) (val []byte, found bool, gen uint64) {
	st := c.stripe(key)
	st.mu.Lock()
	e, ok := st.m[string(key)]
	gen = st.gen
	st.mu.Unlock()
	return e.val, ok, gen
}

// fill caches the value read for key (in its cached form) after a read
// that began at gen, unless the stripe changed since or key is already
// cached.
func (c *recordCache) fill(key, val []byte, gen uint64) {
	v, cacheable := cachedForm(key, val)
	if !cacheable || v == nil {
		return
	}
	st := c.stripe(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.gen != gen {
		return
	}
	if _, ok := st.m[string(key)]; ok {
		return
	}
	c.insertLocked(st, key, cacheEntry{val: v})
}

// insertLocked adds a new key, evicting others while the stripe is full
// (by entries or by bytes). An entry larger than a stripe's budget is not
// added.
func (c *recordCache) insertLocked(st *cacheStripe, key []byte, e cacheEntry) {
	size := entrySize(string(key), e)
	st.gen++ // also when refused: a read that began before must not fill
	if size > c.perStripeBytes {
		return
	}
	for len(st.m) > 0 && (len(st.m) >= c.perStripe || st.bytes+size > c.perStripeBytes) {
		for k := range st.m {
			st.deleteLocked(k)
			break
		}
	}
	st.setLocked(string(key), e)
}

// apply writes the records of b, just committed, through to the cache.
// With add, keys not yet cached are added; otherwise only cached keys are
// updated.
func (c *recordCache) apply(b *pebble.Batch, add bool) {
	seq := uint64(b.SeqNum())
	last := seq + uint64(b.Count()) // above every record of b
	r := b.Reader()
	for {
		kind, key, val, ok, err := r.Next()
		if err != nil {
			c.clear(last)
			return
		}
		if !ok {
			return
		}
		switch kind {
		case pebble.InternalKeyKindSet:
			if v, cacheable := cachedForm(key, val); cacheable {
				c.put(key, cacheEntry{seq: seq, val: v}, add)
			}
		case pebble.InternalKeyKindDelete, pebble.InternalKeyKindSingleDelete, pebble.InternalKeyKindDeleteSized:
			if _, cacheable := cachedForm(key, nil); cacheable {
				c.put(key, cacheEntry{seq: seq}, false)
			}
		case pebble.InternalKeyKindLogData:
			continue // takes no sequence number
		default:
			// Range deletions and anything else this cache does not model.
			c.clear(seq)
		}
		seq++
	}
}

// cachedForm returns the copy of a record's value the cache keeps, and
// whether key is a kind the cache holds: channel records lose their data,
// pending indexes are kept whole.
func cachedForm(key, val []byte) ([]byte, bool) {
	switch {
	case len(key) == channelKeyLen && key[prefixLen] == kindChannel:
		if h := channelHeaderLenOf(val); h > 0 && len(val) > h {
			val = val[:h]
		}
	case len(key) == metaKeyLen && key[prefixLen] == kindPending:
	default:
		return nil, false
	}
	if val == nil {
		return nil, true
	}
	return append(make([]byte, 0, len(val)), val...), true
}

// put stores e for key if it is newer than the cached entry; a key not
// cached is added only with add.
func (c *recordCache) put(key []byte, e cacheEntry, add bool) {
	st := c.stripe(key)
	st.mu.Lock()
	defer st.mu.Unlock()
	old, ok := st.m[string(key)]
	switch {
	case e.seq <= st.floor:
		// Older than a range deletion that emptied the cache.
		st.deleteLocked(string(key))
		st.gen++
	case ok && old.seq < e.seq:
		st.gen++
		if entrySize(string(key), e) > c.perStripeBytes {
			st.deleteLocked(string(key)) // too large to keep at all
			break
		}
		st.setLocked(string(key), e)
		for st.bytes > c.perStripeBytes { // it grew: evict others
			for k := range st.m {
				if k != string(key) {
					st.deleteLocked(k)
					break
				}
			}
		}
	case ok:
		st.gen++ // an older write than the cached one: leave the entry
	case add:
		c.insertLocked(st, key, e)
	default:
		st.gen++
	}
}

// forget drops the keys of b, whose commit failed: what is visible of it
// is unknown.
func (c *recordCache) forget(b *pebble.Batch) {
	r := b.Reader()
	for {
		_, key, _, ok, err := r.Next()
		if err != nil {
			c.clear(0)
			return
		}
		if !ok {
			return
		}
		st := c.stripe(key)
		st.mu.Lock()
		st.deleteLocked(string(key))
		st.gen++
		st.mu.Unlock()
	}
}

// clear empties the cache and keeps writes at or below seq out of it.
func (c *recordCache) clear(seq uint64) {
	for i := range c.stripes {
		st := &c.stripes[i]
		st.mu.Lock()
		clear(st.m)
		st.bytes = 0
		st.floor = max(st.floor, seq)
		st.gen++
		st.mu.Unlock()
	}
}
