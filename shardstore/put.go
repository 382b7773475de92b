package shardstore

import (
	"bytes"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// PutOutcome says what Put did with a version event.
type PutOutcome int

const (
	// PutStored: the version is now the channel's highest and pending one,
	// durable on disk.
	PutStored PutOutcome = iota + 1
	// PutStale: the version was not above the channel's highest accepted
	// version; nothing changed.
	PutStale
	// PutNotRegistered: the channel is not registered; nothing changed.
	PutNotRegistered
)

// String returns the outcome's name.
func (o PutOutcome) String() string {
	switch o {
	case PutStored:
		return "PutStored"
	case PutStale:
		return "PutStale"
	case PutNotRegistered:
		return "PutNotRegistered"
	}
	return fmt.Sprintf("PutOutcome(%d)", int(o))
}

// Put is a version event for one channel.
type Put struct {
	Version uint64 // the version the app server sent; ignored when Auto
	Auto    bool   // no version sent: the store uses max(Now, highest+1)
	Now     uint64 // current Unix seconds, used when Auto
	Data    []byte // optional data, at most MaxDataSize bytes; nil = none (read only during the call)
}

// PutResult is what Put did.
type PutResult struct {
	Outcome PutOutcome
	// Version is the stored version (PutStored), the channel's highest
	// accepted version (PutStale), or 0.
	Version uint64
	// Pending, for PutStored, is every channel of the UAID with a pending
	// version after the put, this one included, ordered by channel id: what
	// an UPDATE for the UAID carries, so the caller need not read it again.
	// The caller owns it.
	Pending []Channel
}

// Put records a version event for the channel (uaid, chid).
//
//   - Not registered: PutNotRegistered, 0.
//   - The version (p.Version, or max(p.Now, highest+1) when p.Auto) is not
//     greater than the channel's highest accepted version: PutStale, and the
//     highest accepted version; nothing changes.
//   - Otherwise highest = pending = the version, the data is replaced by
//     p.Data (nil clears old data), and the write is durable (pebble.Sync)
//     before Put returns PutStored and the version.
//
// Data longer than MaxDataSize is refused with ErrDataTooLarge. On any error
// the outcome is 0, never PutStored.
//
// Put is a read-modify-write: the caller serialises it with the other writes
// of the same UAID. Puts for different UAIDs from many goroutines share
// fsyncs.
func (s *Store) Put(uaid, chid uuid.UUID, p Put) (PutResult, error) {
	res, w, err := s.PreparePut(uaid, chid, p)
	if err != nil {
		return PutResult{}, err
	}
	if w != nil {
		if err := w.Commit(); err != nil {
			return PutResult{}, err
		}
	}
	return res, nil
}

// PutWrite is the write of a prepared Put (see PreparePut), not yet
// committed. Exactly one of Commit or Discard must be called.
type PutWrite struct {
	s *Store
	b *pebble.Batch
}

// PreparePut decides a Put exactly as Put does and builds its write without
// committing it: for PutStored it returns the result the write will have
// and w to commit it; for the other outcomes w is nil and nothing is to be
// written.
//
// It lets a caller send the version to the device while the write is
// synced, and answer the app server only after w.Commit. The caller holds
// the UAID's serialisation from PreparePut until Commit or Discard returns,
// so no other write of the UAID comes between; readers meanwhile see the
// state before the put.
func (s *Store) PreparePut(uaid, chid uuid.UUID, p Put) (res PutResult, w *PutWrite, err error) {
	if len(p.Data) > MaxDataSize {
		return res, nil, fmt.Errorf("%w: %d bytes", ErrDataTooLarge, len(p.Data))
	}
	if err := s.enter(); err != nil {
		return res, nil, err
	}
	defer s.exit(&err)
	b := s.db.NewBatch()
	outcome, version, err := s.put(b, uaid, chid, p, &res.Pending)
	if err != nil || outcome != PutStored {
		b.Close()
		if err != nil {
			return PutResult{}, nil, err
		}
		return PutResult{Outcome: outcome, Version: version}, nil, nil
	}
	res.Outcome, res.Version = outcome, version
	return res, &PutWrite{s: s, b: b}, nil
}

// Commit makes the prepared write durable (pebble.Sync) and visible.
// After an error nothing of the put is promised.
func (w *PutWrite) Commit() (err error) {
	defer w.b.Close()
	if err := w.s.enter(); err != nil {
		return err
	}
	defer w.s.exit(&err)
	return w.s.commitCaching(w.b, true, true)
}

// Discard drops the prepared write.
func (w *PutWrite) Discard() {
	w.b.Close()
}

// put decides the put and adds its write to b. The caller commits b.
func (s *Store) put(b *pebble.Batch, uaid, chid uuid.UUID, p Put, pending *[]Channel) (outcome PutOutcome, version uint64, err error) {
	pfx := uaidPrefix(uaid)
	key := pfx.channelKey(chid)
	old, ok, err := s.readChannel(key[:], false)
	if err != nil {
		return 0, 0, err
	}
	if !ok || old.dead {
		return PutNotRegistered, 0, nil
	}
	v := p.Version
	if p.Auto {
		v = p.Now
		if old.version < math.MaxUint64 && old.version+1 > v {
			v = old.version + 1
		}
	}
	if v <= old.version {
		return PutStale, old.version, nil
	}

	rec := channelRecord{version: v, pending: v, hasData: p.Data != nil, data: p.Data, gen: old.gen}
	op := b.SetDeferred(len(key), rec.encodedLen())
	copy(op.Key, key[:])
	rec.encodeTo(op.Value)
	if err := op.Finish(); err != nil {
		return 0, 0, fmt.Errorf("shardstore: put: %w", err)
	}
	ids, err := s.readPendingSet(&pfx)
	if err != nil {
		return 0, 0, err
	}
	ids, changed := addPending(ids, chid)
	if changed {
		if err := writePendingSet(b, &pfx, ids); err != nil {
			return 0, 0, fmt.Errorf("shardstore: put: %w", err)
		}
	}
	// The UAID's pending channels after this put: this one as written, the
	// others read by key.
	*pending = make([]Channel, 0, len(ids))
	for _, id := range ids {
		if id == chid {
			*pending = append(*pending, Channel{ID: chid, Version: v, Pending: v, Data: bytes.Clone(p.Data)})
			continue
		}
		other, err := s.readPending(&pfx, id)
		if err != nil {
			return 0, 0, err
		}
		*pending = append(*pending, other)
	}
	return PutStored, v, nil
}
