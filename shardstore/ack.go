package shardstore

import (
	"fmt"

	"github.com/google/uuid"
)

// Ack is a client's acknowledgement of one channel's version.
type Ack struct {
	Channel uuid.UUID
	Version uint64
}

// Ack clears the pending version (and its data) of each acked channel whose
// pending version is <= the acked version; a newer pending version stays.
// Unknown channels and channels with nothing pending are ignored. The
// highest accepted version is kept. cleared counts the acks that cleared
// a pending version: 0 means Ack changed nothing (and wrote nothing).
//
// The write is not synced: a crash may lose it, which only causes a
// redelivery that clients tolerate. It can never lose a newer pending
// version, since that version's synced write comes later in the WAL.
//
// Ack is a read-modify-write: the caller serialises it with the other writes
// of the same UAID. acks is read only during the call.
func (s *Store) Ack(uaid uuid.UUID, acks []Ack) (cleared int, err error) {
	if len(acks) == 0 {
		return 0, nil
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	b := s.db.NewBatch()
	defer b.Close()
	var (
		ids     []uuid.UUID
		idsRead bool
		changed bool
	)
	for _, a := range acks {
		key := p.channelKey(a.Channel)
		rec, ok, err := s.readChannel(key[:], false)
		if err != nil {
			return 0, err
		}
		if !ok || rec.pending == 0 || rec.pending > a.Version {
			continue // a tombstone has nothing pending
		}
		clear := channelRecord{version: rec.version, gen: rec.gen}
		op := b.SetDeferred(len(key), clear.encodedLen())
		copy(op.Key, key[:])
		clear.encodeTo(op.Value)
		if err := op.Finish(); err != nil {
			return 0, fmt.Errorf("shardstore: ack: %w", err)
		}
		cleared++
		if !idsRead {
			if ids, err = s.readPendingSet(&p); err != nil {
				return 0, err
			}
			idsRead = true
		}
		var removed bool
		ids, removed = removePending(ids, a.Channel)
		changed = changed || removed
	}
	if b.Empty() {
		return 0, nil
	}
	if changed {
		if err := writePendingSet(b, &p, ids); err != nil {
			return 0, fmt.Errorf("shardstore: ack: %w", err)
		}
	}
	if err := s.commitCaching(b, false, true); err != nil {
		return 0, err
	}
	return cleared, nil
}
