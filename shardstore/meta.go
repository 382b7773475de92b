package shardstore

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// SetMeta stores the UAID's meta blob (its KICK target, encoded by the
// engine), replacing any previous one; a nil or empty blob deletes it. The
// write is durable (synced) before SetMeta returns. Blobs longer than
// MaxMetaSize are refused with ErrMetaTooLarge.
//
// SetMeta is a write: the caller serialises it with the other writes of the
// same UAID. meta is read only during the call.
func (s *Store) SetMeta(uaid uuid.UUID, meta []byte) (err error) {
	if len(meta) > MaxMetaSize {
		return fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(meta))
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	key := p.metaKey()
	b := s.db.NewBatch()
	defer b.Close()
	if len(meta) == 0 {
		err = b.Delete(key[:], nil)
	} else {
		op := b.SetDeferred(len(key), metaHeaderLen+len(meta))
		copy(op.Key, key[:])
		op.Value[0] = metaEncV1
		copy(op.Value[metaHeaderLen:], meta)
		err = op.Finish()
	}
	if err != nil {
		return fmt.Errorf("shardstore: set meta: %w", err)
	}
	return s.commit(b, true)
}

// Meta returns a copy of the UAID's meta blob; nil, nil when it has none.
func (s *Store) Meta(uaid uuid.UUID) (meta []byte, err error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	key := p.metaKey()
	v, closer, err := s.db.Get(key[:])
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("shardstore: get meta: %w", err)
	}
	defer closer.Close()
	blob, err := decodeMeta(v)
	if err != nil {
		return nil, fmt.Errorf("shardstore: meta of %s: %w", uaid, err)
	}
	return bytes.Clone(blob), nil
}

// DropUAID deletes every record of the UAID: channels, pending versions,
// meta and seen. It is durable (synced) before DropUAID returns; a UAID with no
// records costs no write. Point deletions of the UAID's keys are used rather
// than a range tombstone, which would slow reads until compacted away.
//
// DropUAID is a read-modify-write: the caller serialises it with the other
// writes of the same UAID.
func (s *Store) DropUAID(uaid uuid.UUID) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	hi := p.bound(kindEnd)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: p[:], UpperBound: hi[:]})
	if err != nil {
		return fmt.Errorf("shardstore: drop uaid: %w", err)
	}
	b := s.db.NewBatch()
	defer b.Close()
	for valid := it.First(); valid; valid = it.Next() {
		if err := b.Delete(it.Key(), nil); err != nil {
			_ = it.Close()
			return fmt.Errorf("shardstore: drop uaid: %w", err)
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("shardstore: drop uaid: %w", err)
	}
	if b.Empty() {
		return nil
	}
	return s.commit(b, true)
}

// EachUAID calls fn for every UAID with records in the store, in key
// order, until fn returns false. It reads one key per UAID, seeking past
// the rest.
func (s *Store) EachUAID(fn func(uaid uuid.UUID) bool) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit(&err)
	it, err := s.db.NewIter(nil)
	if err != nil {
		return fmt.Errorf("shardstore: each uaid: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("shardstore: each uaid: %w", cerr)
		}
	}()
	for valid := it.First(); valid; {
		key := it.Key()
		if len(key) < prefixLen {
			return fmt.Errorf("shardstore: each uaid: %w: key %x", ErrCorrupt, key)
		}
		var p prefix
		copy(p[:], key[:prefixLen])
		var u uuid.UUID
		copy(u[:], p[8:])
		if !fn(u) {
			return nil
		}
		next := p.bound(kindEnd)
		valid = it.SeekGE(next[:])
	}
	return nil
}
