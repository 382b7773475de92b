package shardstore

// Transfer: moving and replicating ranges of the ring between nodes' stores.
//
// A node hands a ring range to another by paging through Export and sending
// each page, whose records the receiver merges with Import; once the
// receiver has them durably, the sender may DropRange what it no longer
// holds. Replication is the same Export/Import, repeated. Records travel in
// their stored form (KV): keys and values are opaque to callers, and Import
// validates every one before writing anything.
//
// Ranges are inclusive, [lo, hi] of ring hashes. When lo > hi the range is
// the arc that wraps past the top of the ring, [lo, MaxUint64] then
// [0, hi], and Export walks it in that order.
//
// Meta, channel and seen records travel, tombstones of unregistered
// channels included: they keep a merge from bringing a channel back. The
// pending index (kind 0x03) is derived data: Export skips it and Import
// recomputes it, for every UAID it touches, from the merged channel
// records.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// ErrBadRecord is wrapped by the error Import returns when a record is not
// one that Export can have produced (a key of the wrong length or kind, a
// ring hash that does not match its UAID, a value that does not decode).
// Nothing is written. The error also wraps the reason, ErrCorrupt for
// values that do not decode.
var ErrBadRecord = errors.New("shardstore: bad transfer record")

// KV is one stored record in transfer form: a raw key and value of the
// store, opaque to callers. Slices returned by Export are the caller's;
// Import reads them only during the call.
type KV struct {
	Key, Value []byte
}

// TransferUAIDs returns the distinct UAIDs that the records of kvs belong
// to, in order of first appearance (key order for an Export page), so that
// a caller can take their per-UAID locks before Import. Keys too short to
// name a UAID are skipped (Import rejects them).
func TransferUAIDs(kvs []KV) []uuid.UUID {
	var out []uuid.UUID
	seen := make(map[uuid.UUID]struct{})
	for _, kv := range kvs {
		if len(kv.Key) < prefixLen {
			continue
		}
		u := uuid.UUID(kv.Key[8:prefixLen])
		if _, ok := seen[u]; !ok {
			seen[u] = struct{}{}
			out = append(out, u)
		}
	}
	return out
}

// Export returns the meta, channel and seen records of the UAIDs whose ring hash
// is within [lo, hi] (inclusive; lo > hi wraps, see above), in key order,
// starting after the key after (nil: from the start of the range). It
// returns at most limit records and stops before a record that would take
// the page past maxBytes of keys and values, but always returns at least one
// record while any remain; limit <= 0 or maxBytes <= 0 means no such limit.
// next is the key to pass as after to continue, nil when the range is
// exhausted (it is never set on a page that ends the range).
//
// Each call reads one consistent snapshot of the store; successive calls may
// see writes made in between. Export is a reader and needs no per-UAID lock.
// A stored record that does not decode stops it with an error wrapping
// ErrCorrupt.
//
// after is read only during the call; kvs and next are the caller's.
func (s *Store) Export(lo, hi uint64, after []byte, limit, maxBytes int) (kvs []KV, next []byte, err error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	defer s.exit(&err)

	spans := ringSpans(lo, hi)
	first, seek := 0, []byte(nil)
	if after != nil {
		// Start at the first key above after: after followed by a zero byte.
		seek = append(bytes.Clone(after), 0)
		if len(spans) == 2 && bytes.Compare(after, spans[0].start) < 0 {
			first = 1
		}
	}
	c, err := s.newSpanCursor(spans[first:])
	if err != nil {
		return nil, nil, fmt.Errorf("shardstore: export: %w", err)
	}
	defer func() {
		if cerr := c.close(); cerr != nil && err == nil {
			kvs, next, err = nil, nil, fmt.Errorf("shardstore: export: %w", cerr)
		}
	}()

	var (
		size  int
		arena transferArena
	)
	for valid := c.seek(seek); valid; valid = c.next() {
		key := c.it.Key()
		value, err := c.it.ValueAndErr()
		if err != nil {
			return nil, nil, fmt.Errorf("shardstore: export: %w", err)
		}
		if _, err := checkRecord(key, value); err != nil {
			return nil, nil, fmt.Errorf("shardstore: export: %w", err)
		}
		n := len(key) + len(value)
		if len(kvs) > 0 && (limit > 0 && len(kvs) >= limit || maxBytes > 0 && size+n > maxBytes) {
			// Another record remains: the page is full.
			return kvs, bytes.Clone(kvs[len(kvs)-1].Key), nil
		}
		if kvs == nil {
			kvs = make([]KV, 0, min(max(limit, 0), 1024))
		}
		kvs = append(kvs, KV{Key: arena.copy(key), Value: arena.copy(value)})
		size += n
	}
	if err := c.err(); err != nil {
		return nil, nil, fmt.Errorf("shardstore: export: %w", err)
	}
	return kvs, nil, nil
}

// Import merges records exported by another store into this one, so that
// nothing either side accepted is lost. Delivery is at least once: a record
// may arrive twice, or after a newer one, and a UAID's records may arrive
// split over several calls in any order; the rules below give the same
// result in every case.
//
//   - Every record is validated first (key length, a known kind, a ring hash
//     matching the UAID bytes, a value that decodes). If any is bad, Import
//     returns an error wrapping ErrBadRecord and writes nothing.
//   - Channel record: taken when absent locally. When present, the one of
//     the higher generation is kept (a registration's generation is above
//     every channel record its UAID had, see Register). In one generation a tombstone
//     beats a registration: the unregister came after it, and keeping the
//     registration would bring the channel back; of two tombstones the
//     local one stays. Of two registrations the one with the higher
//     accepted version is kept; at equal versions an acknowledged one (no
//     pending version) beats a pending one: only an ack clears a pending
//     version, so it proves the client has it, and keeping the pending copy
//     would deliver it again; when both are equal the local one.
//   - Meta record (the KICK target): taken when absent locally, otherwise
//     the local one is kept.
//   - Seen record (see Touch): the later time is kept; a UAID without a
//     meta or channel record, here or in kvs, gets none.
//   - Pending index records are ignored. Each channel record written by the
//     merge adds its channel to, or removes it from, its UAID's pending
//     index (read by key, like Put and Ack do), so the index keeps naming
//     exactly the channels with a pending version without a scan of the
//     UAID's channels, which would step over every obsolete version of a
//     hot channel record.
//   - A UAID to which the merge wrote a tombstone has its tombstones
//     trimmed like an owner's at Unregister (see trimTombstones), keeping
//     the newest MaxChannels: without it a replica would keep every
//     tombstone a client's register and unregister loop left on the owner.
//
// The merge may leave a UAID with more than Options.MaxChannels channels;
// nothing is dropped to enforce it (Register refuses new ones).
//
// Everything is written in one batch, durable (synced) before Import
// returns; the caller bounds its size with Export's limit. Import is a
// read-modify-write of every UAID in kvs: the caller must not run other
// writes of those UAIDs concurrently (take their per-UAID locks, listed by
// TransferUAIDs, or import a range the node does not serve yet). kvs is read
// only during the call.
func (s *Store) Import(kvs []KV) (err error) {
	for i, kv := range kvs {
		if _, err := checkRecord(kv.Key, kv.Value); err != nil {
			return fmt.Errorf("%w: record %d of %d: %w", ErrBadRecord, i, len(kvs), err)
		}
	}
	if len(kvs) == 0 {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit(&err)

	// An indexed batch reads through its own writes, so a record sent twice
	// in one call merges like one sent in two calls, and the pending index
	// below sees the merged channels.
	b := s.db.NewIndexedBatch()
	defer b.Close()
	// pending collects, per UAID, the new pending state of each channel
	// the merge wrote, in order.
	type change struct {
		id      uuid.UUID
		pending bool
		dead    bool
	}
	var (
		order   []prefix
		changes = make(map[prefix][]change)
	)
	for _, kv := range kvs {
		var (
			wrote, pending, dead bool
			err                  error
		)
		switch kv.Key[prefixLen] {
		case kindChannel:
			wrote, pending, dead, err = importChannel(b, kv)
		case kindMeta:
			err = importMeta(b, kv)
		}
		if err != nil {
			return fmt.Errorf("shardstore: import: %w", err)
		}
		if wrote {
			p := prefix(kv.Key[:prefixLen])
			id, _ := channelIDFromKey(kv.Key) // validated by checkRecord
			if _, seen := changes[p]; !seen {
				order = append(order, p)
			}
			changes[p] = append(changes[p], change{id, pending, dead})
		}
	}
	// Seen records last: one is kept only for a UAID with records, which
	// may come after it in kvs.
	for _, kv := range kvs {
		if kv.Key[prefixLen] == kindSeen {
			if err := importSeen(b, kv); err != nil {
				return fmt.Errorf("shardstore: import: %w", err)
			}
		}
	}
	for _, p := range order {
		ids, err := batchPendingSet(b, &p)
		if err != nil {
			return fmt.Errorf("shardstore: import: %w", err)
		}
		changed, buried := false, false
		for _, c := range changes[p] {
			buried = buried || c.dead
			var ch bool
			if c.pending {
				ids, ch = addPending(ids, c.id)
			} else {
				ids, ch = removePending(ids, c.id)
			}
			changed = changed || ch
		}
		if changed {
			if err := writePendingSet(b, &p, ids); err != nil {
				return fmt.Errorf("shardstore: import: %w", err)
			}
		}
		if buried {
			if err := trimTombstones(b, b, &p, s.maxChannels); err != nil {
				return fmt.Errorf("shardstore: import: %w", err)
			}
		}
	}
	if b.Empty() {
		return nil
	}
	return s.commit(b, true)
}

// batchPendingSet reads a UAID's pending index through b.
func batchPendingSet(b *pebble.Batch, p *prefix) ([]uuid.UUID, error) {
	key := p.pendingKey()
	v, closer, err := b.Get(key[:])
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get pending index: %w", err)
	}
	defer closer.Close()
	return decodePendingSet(v)
}

// importChannel merges one validated channel record into b and reports
// whether it wrote it, and then whether it has a pending version and
// whether it is a tombstone.
func importChannel(b *pebble.Batch, kv KV) (wrote, pending, dead bool, err error) {
	in, _ := decodeChannel(kv.Value) // validated by checkRecord
	cur, closer, err := b.Get(kv.Key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return false, false, false, fmt.Errorf("get channel: %w", err)
	default:
		local, derr := decodeChannel(cur)
		_ = closer.Close()
		if derr != nil {
			return false, false, false, fmt.Errorf("local channel %x: %w", kv.Key[channelIDOff:], derr)
		}
		if !newerChannel(in, local) {
			return false, false, false, nil
		}
	}
	if err := b.Set(kv.Key, kv.Value, nil); err != nil {
		return false, false, false, fmt.Errorf("set channel: %w", err)
	}
	return true, in.pending != 0, in.dead, nil
}

// newerChannel reports whether the incoming channel record in replaces the
// local one in a merge (see Import for the rules).
func newerChannel(in, local channelRecord) bool {
	switch {
	case in.gen != local.gen:
		return in.gen > local.gen
	case in.dead || local.dead:
		// One generation: its tombstone came after its registration.
		// Of two tombstones the local one stays.
		return in.dead && !local.dead
	case in.version != local.version:
		return in.version > local.version
	default:
		// An acknowledged record beats a pending one.
		return in.pending == 0 && local.pending != 0
	}
}

// Records returns, in transfer form, the stored records of uaid's channels
// chids (those that exist) and, with meta, its meta and seen records: what
// a write of those records changed, for a replica to Import. Point lookups
// only.
func (s *Store) Records(uaid uuid.UUID, chids []uuid.UUID, meta bool) (kvs []KV, err error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	get := func(key []byte) error {
		v, closer, err := s.db.Get(key)
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("shardstore: records: %w", err)
		}
		kvs = append(kvs, KV{Key: bytes.Clone(key), Value: bytes.Clone(v)})
		return closer.Close()
	}
	if meta {
		key := p.metaKey()
		if err := get(key[:]); err != nil {
			return nil, err
		}
		key = p.bound(kindSeen)
		if err := get(key[:]); err != nil {
			return nil, err
		}
	}
	for _, id := range chids {
		key := p.channelKey(id)
		if err := get(key[:]); err != nil {
			return nil, err
		}
	}
	return kvs, nil
}

// importMeta merges one validated meta record into b: the local one wins.
func importMeta(b *pebble.Batch, kv KV) error {
	_, closer, err := b.Get(kv.Key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
	case err != nil:
		return fmt.Errorf("get meta: %w", err)
	default:
		return closer.Close()
	}
	if err := b.Set(kv.Key, kv.Value, nil); err != nil {
		return fmt.Errorf("set meta: %w", err)
	}
	return nil
}

// DropRange deletes every record of the UAIDs whose ring hash is within
// [lo, hi] (inclusive; lo > hi wraps, see above), durably (synced) before it
// returns. A node drops the ranges it no longer holds after handing them
// over. It writes range tombstones, one or two whatever the range holds, so
// dropping millions of records costs one small write; Pebble removes the
// data in later compactions.
//
// DropRange writes every UAID of the range: the caller must not run other
// writes of those UAIDs concurrently (the node no longer serves the range).
func (s *Store) DropRange(lo, hi uint64) (err error) {
	return s.DropRanges([]Range{{lo, hi}})
}

// Range is an inclusive range of ring hashes; Lo > Hi wraps.
type Range struct{ Lo, Hi uint64 }

// DropRanges is DropRange for many ranges, in one synced write.
func (s *Store) DropRanges(ranges []Range) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit(&err)

	b := s.db.NewBatch()
	defer b.Close()
	for _, r := range ranges {
		for _, sp := range ringSpans(r.Lo, r.Hi) {
			end := sp.end
			if end == nil {
				end = ringTop[:]
			}
			if err := b.DeleteRange(sp.start, end, nil); err != nil {
				return fmt.Errorf("shardstore: drop range: %w", err)
			}
		}
	}
	return s.commit(b, true)
}

// CountRange returns the number of UAIDs with meta or channel records whose
// ring hash is within [lo, hi] (inclusive; lo > hi wraps, see above). It
// reads one consistent snapshot and one key per UAID, seeking past the rest.
// A UAID left with only tombstones, an empty pending index (every channel
// unregistered) and a seen record is not counted.
func (s *Store) CountRange(lo, hi uint64) (uaids int, err error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit(&err)

	c, err := s.newSpanCursor(ringSpans(lo, hi))
	if err != nil {
		return 0, fmt.Errorf("shardstore: count range: %w", err)
	}
	defer func() {
		if cerr := c.close(); cerr != nil && err == nil {
			uaids, err = 0, fmt.Errorf("shardstore: count range: %w", cerr)
		}
	}()
	for valid := c.seek(nil); valid; {
		// c skips pending index records. A meta record or a live channel
		// counts the UAID; the scan then skips its other records.
		k := c.it.Key()
		if len(k) > prefixLen && k[prefixLen] == kindSeen {
			valid = c.next()
			continue
		}
		if len(k) > prefixLen && k[prefixLen] == kindChannel {
			v, err := c.it.ValueAndErr()
			if err != nil {
				return 0, fmt.Errorf("shardstore: count range: %w", err)
			}
			if isTombstone(v) {
				valid = c.next()
				continue
			}
		}
		uaids++
		var p prefix
		copy(p[:], k)
		end := p.bound(kindEnd)
		valid = c.seek(end[:])
	}
	if err := c.err(); err != nil {
		return 0, fmt.Errorf("shardstore: count range: %w", err)
	}
	return uaids, nil
}

// keySpan is a key range [start, end); end nil means unbounded.
type keySpan struct {
	start, end []byte
}

// ringTop is above every key: every key with the highest ring hash and the
// highest UAID still has a kind below kindEnd at this length.
var ringTop = func() (k [uaidBoundLen]byte) {
	for i := range k {
		k[i] = 0xff
	}
	return k
}()

// ringSpans returns the key spans holding the records of the ring hashes
// within [lo, hi], in ring order from lo: one span, or two when lo > hi and
// the range wraps past the top of the ring.
func ringSpans(lo, hi uint64) []keySpan {
	// ringBounds takes an exclusive upper end, 0 meaning the top.
	if lo <= hi {
		start, end := ringBounds(lo, hi+1)
		return []keySpan{{start, end}}
	}
	s1, e1 := ringBounds(lo, 0)
	s2, e2 := ringBounds(0, hi+1)
	return []keySpan{{s1, e1}, {s2, e2}}
}

// spanCursor walks the meta, channel and seen records of one or two key spans
// through one iterator, hence one snapshot, skipping pending index records.
type spanCursor struct {
	it    *pebble.Iterator
	spans []keySpan
	cur   int
}

func (s *Store) newSpanCursor(spans []keySpan) (*spanCursor, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: spans[0].start, UpperBound: spans[0].end})
	if err != nil {
		return nil, err
	}
	return &spanCursor{it: it, spans: spans}, nil
}

// seek positions c at the first record at or above key in the current
// span (nil: the span's start), moving on to later spans when it is
// exhausted, and reports whether there is one.
func (c *spanCursor) seek(key []byte) bool {
	var valid bool
	if key == nil {
		valid = c.it.First()
	} else {
		valid = c.it.SeekGE(key) // clamped to the bounds
	}
	return c.settle(valid)
}

// next moves c to the following record.
func (c *spanCursor) next() bool {
	return c.settle(c.it.Next())
}

// settle steps over pending index records and into the next span.
func (c *spanCursor) settle(valid bool) bool {
	for {
		for ; valid; valid = c.it.Next() {
			k := c.it.Key()
			if len(k) <= prefixLen || k[prefixLen] != kindPending {
				return true
			}
		}
		if c.it.Error() != nil || c.cur+1 >= len(c.spans) {
			return false
		}
		c.cur++
		c.it.SetBounds(c.spans[c.cur].start, c.spans[c.cur].end)
		valid = c.it.First()
	}
}

func (c *spanCursor) err() error   { return c.it.Error() }
func (c *spanCursor) close() error { return c.it.Close() }

// checkRecord validates one record in transfer form and returns its kind:
// a key of the right length for a known kind, whose ring hash matches its
// UAID bytes, and a value that decodes. Errors wrap ErrCorrupt.
func checkRecord(key, value []byte) (byte, error) {
	if len(key) < uaidBoundLen {
		return 0, fmt.Errorf("%w: key %x of %d bytes", ErrCorrupt, key, len(key))
	}
	if h := binary.BigEndian.Uint64(key[:8]); h != RingHash(uuid.UUID(key[8:prefixLen])) {
		return 0, fmt.Errorf("%w: key %x: ring hash %#x does not match its UAID", ErrCorrupt, key, h)
	}
	kind := key[prefixLen]
	var err error
	switch kind {
	case kindMeta, kindPending, kindSeen:
		if len(key) != metaKeyLen {
			return 0, fmt.Errorf("%w: kind %#x key %x of %d bytes", ErrCorrupt, kind, key, len(key))
		}
		switch kind {
		case kindMeta:
			_, err = decodeMeta(value)
		case kindPending:
			_, err = decodePendingSet(value)
		default:
			_, err = decodeSeen(value)
		}
	case kindChannel:
		if len(key) != channelKeyLen {
			return 0, fmt.Errorf("%w: channel key %x of %d bytes", ErrCorrupt, key, len(key))
		}
		_, err = decodeChannel(value)
	default:
		return 0, fmt.Errorf("%w: key %x of unknown kind %#x", ErrCorrupt, key, kind)
	}
	if err != nil {
		return 0, fmt.Errorf("key %x: %w", key, err)
	}
	return kind, nil
}

// transferArena copies Export's keys and values into shared chunks: one
// allocation per chunk rather than per record. Each returned slice is capped
// so that appending to it cannot overwrite its neighbour.
type transferArena struct {
	buf []byte
}

const transferArenaChunk = 64 << 10

func (a *transferArena) copy(b []byte) []byte {
	if cap(a.buf)-len(a.buf) < len(b) {
		a.buf = make([]byte, 0, max(transferArenaChunk, len(b)))
	}
	n := len(a.buf)
	a.buf = append(a.buf, b...)
	return a.buf[n:len(a.buf):len(a.buf)]
}
