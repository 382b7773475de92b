package shardstore

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// The pending index: one record per UAID (kind 0x03) listing, in order,
// the channels that have a pending version. It is written in the same batch
// as every channel change that sets or clears a pending version, so it
// always equals {channels with Pending > 0}.
//
// It exists because a channel record is rewritten on every version event
// and every ack: until a memtable flush, a hot UAID's channel keys carry
// thousands of obsolete versions that an iterator must step over, while a
// point lookup goes straight to the newest. Pending therefore reads this
// record and then each listed channel by key, never scanning.
//
// Value: pendingEncV1, then 16 bytes per channel id, ascending.
const pendingEncV1 byte = 1

// readPendingSet returns the UAID's pending channel ids (nil when none).
func (s *Store) readPendingSet(p *prefix) ([]uuid.UUID, error) {
	key := p.pendingKey()
	v, ok, done, err := s.get(key[:])
	if err != nil {
		return nil, fmt.Errorf("shardstore: get pending index: %w", err)
	}
	if !ok {
		return nil, nil
	}
	defer done()
	return decodePendingSet(v)
}

func decodePendingSet(v []byte) ([]uuid.UUID, error) {
	if len(v) < 1 || v[0] != pendingEncV1 || (len(v)-1)%16 != 0 {
		return nil, fmt.Errorf("%w: pending index of %d bytes", ErrCorrupt, len(v))
	}
	if len(v) == 1 {
		return nil, nil
	}
	ids := make([]uuid.UUID, (len(v)-1)/16)
	for i := range ids {
		copy(ids[i][:], v[1+16*i:])
		if i > 0 && bytes.Compare(ids[i-1][:], ids[i][:]) >= 0 {
			return nil, fmt.Errorf("%w: pending index out of order", ErrCorrupt)
		}
	}
	return ids, nil
}

// writePendingSet adds the record holding ids to b. An empty set is
// written as an empty record, not deleted: a point lookup whose newest entry
// is a tombstone steps over every older version of the key, which for this
// hot key is thousands until the next flush.
func writePendingSet(b *pebble.Batch, p *prefix, ids []uuid.UUID) error {
	key := p.pendingKey()
	op := b.SetDeferred(len(key), 1+16*len(ids))
	copy(op.Key, key[:])
	op.Value[0] = pendingEncV1
	for i, id := range ids {
		copy(op.Value[1+16*i:], id[:])
	}
	return op.Finish()
}

func compareIDs(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }

// addPending returns ids with id inserted in order, and whether it changed.
func addPending(ids []uuid.UUID, id uuid.UUID) ([]uuid.UUID, bool) {
	i, found := slices.BinarySearchFunc(ids, id, compareIDs)
	if found {
		return ids, false
	}
	return slices.Insert(ids, i, id), true
}

// removePending returns ids without id, and whether it changed.
func removePending(ids []uuid.UUID, id uuid.UUID) ([]uuid.UUID, bool) {
	i, found := slices.BinarySearchFunc(ids, id, compareIDs)
	if !found {
		return ids, false
	}
	return slices.Delete(ids, i, i+1), true
}
