package shardstore

import (
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// Channel is one registration of a UAID as the store holds it.
type Channel struct {
	ID      uuid.UUID
	Version uint64 // highest accepted version, 0 = none yet
	Pending uint64 // pending (not yet acknowledged) version, 0 = nothing pending
	Data    []byte // data sent with the pending version (nil if none); owned by the caller
}

// Register creates the channel (uaid, chid) if absent. An existing
// registration returns created=false and no error. It returns
// ErrTooManyChannels when chid is new and the UAID already has MaxChannels
// live channels. A registration starts over (no version accepted yet) in
// the generation after the highest of the UAID's channel records, live or
// tombstone, so it is newer than any tombstone of its channel id anywhere,
// also one this store has trimmed (see trimTombstones). A new
// registration is durable (synced) before Register returns.
//
// Register is a read-modify-write: the caller serialises it with the other
// writes of the same UAID.
func (s *Store) Register(uaid, chid uuid.UUID) (created bool, err error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	key := p.channelKey(chid)
	old, ok, err := s.readChannel(key[:], false)
	if err != nil || ok && !old.dead {
		return false, err
	}
	n, maxGen, found, err := s.census(&p)
	if err != nil {
		return false, err
	}
	if n >= s.maxChannels {
		return false, ErrTooManyChannels
	}

	var rec channelRecord // version 0, nothing pending
	if found && maxGen < math.MaxUint32 {
		rec.gen = maxGen + 1
	} else if found {
		rec.gen = maxGen
	}
	b := s.db.NewBatch()
	defer b.Close()
	op := b.SetDeferred(len(key), rec.encodedLen())
	copy(op.Key, key[:])
	rec.encodeTo(op.Value)
	if err := op.Finish(); err != nil {
		return false, fmt.Errorf("shardstore: register: %w", err)
	}
	if err := s.commit(b, true); err != nil {
		return false, err
	}
	return true, nil
}

// channelIter returns an iterator over exactly the UAID's channel records,
// tombstones included, as r holds them (the store, or an indexed batch
// reading through its own writes). The caller must close it.
func channelIter(r pebble.Reader, p *prefix) (*pebble.Iterator, error) {
	// One allocation for both bounds, which the iterator keeps.
	bounds := make([]byte, 2*uaidBoundLen)
	lo, hi := p.bound(kindChannel), p.bound(kindChannel+1)
	copy(bounds, lo[:])
	copy(bounds[uaidBoundLen:], hi[:])
	return r.NewIter(&pebble.IterOptions{
		LowerBound: bounds[:uaidBoundLen:uaidBoundLen],
		UpperBound: bounds[uaidBoundLen:],
	})
}

// isTombstone reports whether the stored channel value v is a tombstone,
// from its first two bytes.
func isTombstone(v []byte) bool {
	return len(v) >= 2 && v[0] == channelEncV2 && v[1]&flagDead != 0
}

// census scans the UAID's channel records: live counts the registrations,
// maxGen is the highest generation of any record, live or tombstone, and
// found reports whether there is a record at all. The scan is bounded by
// MaxChannels live channels and about as many tombstones (see
// trimTombstones).
func (s *Store) census(p *prefix) (live int, maxGen uint32, found bool, err error) {
	it, err := channelIter(s.db, p)
	if err != nil {
		return 0, 0, false, fmt.Errorf("shardstore: channel census: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return 0, 0, false, fmt.Errorf("shardstore: channel census: %w", err)
		}
		rec, err := decodeChannel(v)
		if err != nil {
			_ = it.Close()
			return 0, 0, false, fmt.Errorf("shardstore: channel census: key %x: %w", it.Key(), err)
		}
		found = true
		maxGen = max(maxGen, rec.gen)
		if !rec.dead {
			live++
		}
	}
	if err := it.Close(); err != nil {
		return 0, 0, false, fmt.Errorf("shardstore: channel census: %w", err)
	}
	return live, maxGen, found, nil
}

// Unregister ends the channel (uaid, chid): its pending version and data
// are dropped, and a tombstone takes its place, so that a copy of the
// registration another node still holds cannot bring it back when the two
// are merged (see Import). A UAID keeps at most MaxChannels tombstones:
// beyond that its oldest are deleted. An absent or already unregistered
// channel is no error (and costs no write). The write is durable (synced)
// before Unregister returns.
//
// Unregister is a read-modify-write: the caller serialises it with the other
// writes of the same UAID.
func (s *Store) Unregister(uaid, chid uuid.UUID) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	key := p.channelKey(chid)
	rec, ok, err := s.readChannel(key[:], false)
	if err != nil || !ok || rec.dead {
		return err
	}
	b := s.db.NewBatch()
	defer b.Close()
	tomb := channelRecord{version: rec.version, gen: rec.gen, dead: true, unregAt: max(1, s.now().Unix())}
	op := b.SetDeferred(len(key), tomb.encodedLen())
	copy(op.Key, key[:])
	tomb.encodeTo(op.Value)
	if err := op.Finish(); err != nil {
		return fmt.Errorf("shardstore: unregister: %w", err)
	}
	if rec.pending != 0 {
		ids, err := s.readPendingSet(&p)
		if err != nil {
			return err
		}
		if ids, changed := removePending(ids, chid); changed {
			if err := writePendingSet(b, &p, ids); err != nil {
				return fmt.Errorf("shardstore: unregister: %w", err)
			}
		}
	}
	if err := trimTombstones(s.db, b, &p, s.maxChannels-1); err != nil {
		return err
	}
	return s.commit(b, true)
}

// trimTombstones adds to b the deletion of the UAID's oldest tombstones, as
// r holds them, beyond the newest keep (ties broken by channel id). A
// tombstone of the UAID's highest generation is never deleted, nor counted
// in keep: it keeps the next registration's generation above every
// tombstone trimmed here and still held by another node, whose copy would
// otherwise beat it in a merge. Owners trim at Unregister, replicas and
// new holders at Import, with the same rule, so every copy of a UAID holds
// at most about MaxChannels tombstones.
func trimTombstones(r pebble.Reader, b *pebble.Batch, p *prefix, keep int) error {
	type tomb struct {
		id  uuid.UUID
		at  int64
		gen uint32
	}
	var (
		tombs  []tomb
		maxGen uint32
	)
	it, err := channelIter(r, p)
	if err != nil {
		return fmt.Errorf("shardstore: trim tombstones: %w", err)
	}
	for valid := it.First(); valid; valid = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("shardstore: trim tombstones: %w", err)
		}
		rec, err := decodeChannel(v)
		id, ok := channelIDFromKey(it.Key())
		if err != nil || !ok {
			_ = it.Close()
			return fmt.Errorf("shardstore: trim tombstones: %w: key %x: %w", ErrCorrupt, it.Key(), err)
		}
		maxGen = max(maxGen, rec.gen)
		if rec.dead {
			tombs = append(tombs, tomb{id, rec.unregAt, rec.gen})
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("shardstore: trim tombstones: %w", err)
	}
	tombs = slices.DeleteFunc(tombs, func(t tomb) bool { return t.gen == maxGen })
	if len(tombs) <= keep {
		return nil
	}
	slices.SortFunc(tombs, func(a, b tomb) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return slices.Compare(a.id[:], b.id[:])
	})
	for _, t := range tombs[:len(tombs)-keep] {
		key := p.channelKey(t.id)
		if err := b.Delete(key[:], nil); err != nil {
			return fmt.Errorf("shardstore: trim tombstones: %w", err)
		}
	}
	return nil
}

// Channel returns the channel (uaid, chid); ok=false if it is not
// registered.
func (s *Store) Channel(uaid, chid uuid.UUID) (ch Channel, ok bool, err error) {
	if err := s.enter(); err != nil {
		return ch, false, err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	key := p.channelKey(chid)
	rec, ok, err := s.readChannel(key[:], true)
	if err != nil || !ok || rec.dead {
		return ch, false, err
	}
	return Channel{ID: chid, Version: rec.version, Pending: rec.pending, Data: rec.data}, true, nil
}

// Channels returns every registered channel of the UAID (no tombstones),
// ordered by channel id; nil if it has none.
func (s *Store) Channels(uaid uuid.UUID) (chs []Channel, err error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit(&err)
	return s.scanChannels(uaid)
}

// Pending returns the channels of the UAID that have a pending version
// (Pending > 0), ordered by channel id; nil if none. It reads the pending
// index and then each listed channel by key (see pending.go).
func (s *Store) Pending(uaid uuid.UUID) (chs []Channel, err error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit(&err)
	p := uaidPrefix(uaid)
	ids, err := s.readPendingSet(&p)
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	chs = make([]Channel, 0, len(ids))
	for _, id := range ids {
		key := p.channelKey(id)
		rec, ok, err := s.readChannel(key[:], true)
		if err != nil {
			return nil, err
		}
		if !ok || rec.pending == 0 {
			// Acked or unregistered after the index was read: a reader
			// without the UAID's lock sees each channel before or after
			// a concurrent write. Under the lock it would mean the index
			// is out of step with its channels: say so.
			s.log.Warn("shardstore: pending index names a channel with nothing pending; skipped",
				slog.String("uaid", uaid.String()), slog.String("channel", id.String()))
			continue
		}
		chs = append(chs, Channel{ID: id, Version: rec.version, Pending: rec.pending, Data: rec.data})
	}
	if len(chs) == 0 {
		return nil, nil
	}
	return chs, nil
}

// readPending reads a channel the pending index names.
func (s *Store) readPending(p *prefix, id uuid.UUID) (Channel, error) {
	key := p.channelKey(id)
	rec, ok, err := s.readChannel(key[:], true)
	if err != nil {
		return Channel{}, err
	}
	if !ok || rec.pending == 0 {
		return Channel{}, fmt.Errorf("%w: pending index names channel %s without a pending version", ErrCorrupt, id)
	}
	return Channel{ID: id, Version: rec.version, Pending: rec.pending, Data: rec.data}, nil
}

// scanChannels reads the UAID's channels with one bounded iterator. The data
// of all returned channels shares one allocation, each slice capped so that
// appending to one cannot overwrite another.
func (s *Store) scanChannels(uaid uuid.UUID) (chs []Channel, err error) {
	p := uaidPrefix(uaid)
	it, err := channelIter(s.db, &p)
	if err != nil {
		return nil, fmt.Errorf("shardstore: scan channels: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			chs, err = nil, fmt.Errorf("shardstore: scan channels: %w", cerr)
		}
	}()

	var arena []byte // data of all channels, copied once
	type span struct{ off, end int }
	var spansBuf [16]span
	spans := spansBuf[:0] // per returned channel; off < 0 means nil data
	for valid := it.First(); valid; valid = it.Next() {
		id, ok := channelIDFromKey(it.Key())
		if !ok {
			return nil, fmt.Errorf("shardstore: scan channels: %w: key %x", ErrCorrupt, it.Key())
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("shardstore: scan channels: %w", err)
		}
		rec, err := decodeChannel(v)
		if err != nil {
			return nil, fmt.Errorf("shardstore: channel %s: %w", id, err)
		}
		if rec.dead {
			continue
		}
		sp := span{off: -1}
		if rec.hasData {
			if arena == nil {
				arena = make([]byte, 0, max(512, len(rec.data)))
			}
			sp = span{off: len(arena), end: len(arena) + len(rec.data)}
			arena = append(arena, rec.data...)
		}
		if chs == nil {
			chs = make([]Channel, 0, 8)
		}
		chs = append(chs, Channel{ID: id, Version: rec.version, Pending: rec.pending})
		spans = append(spans, sp)
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("shardstore: scan channels: %w", err)
	}
	if arena == nil {
		arena = []byte{} // only empty data: sub-slices must still be non-nil
	}
	for i, sp := range spans {
		if sp.off >= 0 {
			chs[i].Data = arena[sp.off:sp.end:sp.end]
		}
	}
	return chs, nil
}
