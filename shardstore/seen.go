package shardstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/google/uuid"
)

// A UAID's seen record holds when a device last used it (said hello,
// registered, polled, or was found connected), so that UAIDs nobody uses
// any more can be found and dropped. Only a UAID with other records has
// one: Touch never makes a UAID out of nothing.
const (
	seenEncV1 byte = 1
	// Seen record, encoding 1: [0] encoding version (1), [1:9] Unix
	// seconds, big-endian, above 0.
	seenLen = 9
)

func encodeSeen(at int64) [seenLen]byte {
	var v [seenLen]byte
	v[0] = seenEncV1
	binary.BigEndian.PutUint64(v[1:], uint64(at))
	return v
}

func decodeSeen(v []byte) (int64, error) {
	if len(v) != seenLen || v[0] != seenEncV1 {
		return 0, fmt.Errorf("%w: seen record of %d bytes, encoding %d", ErrCorrupt, len(v), firstByte(v))
	}
	at := int64(binary.BigEndian.Uint64(v[1:]))
	if at <= 0 {
		return 0, fmt.Errorf("%w: seen at %d", ErrCorrupt, at)
	}
	return at, nil
}

func firstByte(v []byte) int {
	if len(v) == 0 {
		return -1
	}
	return int(v[0])
}

// Touch records that uaid was used at now, unless its seen record already
// says so within every: it writes at most once per every per UAID. A UAID
// with no records gets none (a hello of a UAID nobody registered must not
// leave anything behind). The write is not synced: a crash may lose it,
// which only makes the UAID look idle since its previous touch.
//
// Touch is a read-modify-write: the caller serialises it with the other
// writes of the same UAID.
func (s *Store) Touch(uaid uuid.UUID, now time.Time, every time.Duration) (wrote bool, err error) {
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit(&err)

	p := uaidPrefix(uaid)
	key := p.bound(kindSeen)
	at, err := s.readSeen(key[:])
	if err != nil {
		return false, err
	}
	sec := max(1, now.Unix())
	if at > 0 && sec-at < int64(every/time.Second) {
		return false, nil
	}
	if at == 0 {
		// No seen record: only a UAID with records gets one.
		has, err := hasRecords(s.db, &p)
		if err != nil || !has {
			if err != nil {
				err = fmt.Errorf("shardstore: touch: %w", err)
			}
			return false, err
		}
	}
	v := encodeSeen(sec)
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.Set(key[:], v[:], nil); err != nil {
		return false, fmt.Errorf("shardstore: touch: %w", err)
	}
	if err := s.commit(b, false); err != nil {
		return false, err
	}
	return true, nil
}

// Seen returns when uaid was last used, in Unix seconds, and 0 when it has
// no seen record.
func (s *Store) Seen(uaid uuid.UUID) (at int64, err error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit(&err)
	p := uaidPrefix(uaid)
	key := p.bound(kindSeen)
	return s.readSeen(key[:])
}

func (s *Store) readSeen(key []byte) (int64, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("shardstore: get seen: %w", err)
	}
	defer closer.Close()
	at, err := decodeSeen(v)
	if err != nil {
		return 0, fmt.Errorf("shardstore: seen of key %x: %w", key, err)
	}
	return at, nil
}

// hasRecords reports whether the UAID has a meta or channel record in r
// (the store, or an indexed batch).
func hasRecords(r pebble.Reader, p *prefix) (bool, error) {
	lo, hi := p.bound(kindMeta), p.bound(kindPending)
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: lo[:], UpperBound: hi[:]})
	if err != nil {
		return false, err
	}
	has := it.First()
	if err := it.Close(); err != nil {
		return false, err
	}
	return has, nil
}

// UAIDSeen is one UAID of a SeenPage: Seen is its seen record's time in
// Unix seconds, 0 when it has none.
type UAIDSeen struct {
	UAID uuid.UUID
	Seen int64
}

// SeenPage returns, in key order, up to limit UAIDs of the store from the
// cursor after (nil: the first) with their seen times, and the cursor of
// the next page (nil after the last). It reads two keys per UAID, seeking
// past the rest, so a page costs about the same whatever the UAIDs hold.
func (s *Store) SeenPage(after []byte, limit int) (page []UAIDSeen, next []byte, err error) {
	if err := s.enter(); err != nil {
		return nil, nil, err
	}
	defer s.exit(&err)
	limit = max(limit, 1)
	it, err := s.db.NewIter(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("shardstore: seen page: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			page, next, err = nil, nil, fmt.Errorf("shardstore: seen page: %w", cerr)
		}
	}()
	valid := it.First()
	if after != nil {
		valid = it.SeekGE(after)
	}
	for ; valid; valid = it.SeekGE(next) {
		if len(page) == limit {
			return page, next, nil
		}
		key := it.Key()
		if len(key) < prefixLen {
			return nil, nil, fmt.Errorf("shardstore: seen page: %w: key %x", ErrCorrupt, key)
		}
		var p prefix
		copy(p[:], key[:prefixLen])
		e := UAIDSeen{UAID: uuid.UUID(p[8:])}
		sk := p.bound(kindSeen)
		if bytes.Equal(key, sk[:]) || it.SeekGE(sk[:]) && bytes.Equal(it.Key(), sk[:]) {
			v, err := it.ValueAndErr()
			if err != nil {
				return nil, nil, fmt.Errorf("shardstore: seen page: %w", err)
			}
			if e.Seen, err = decodeSeen(v); err != nil {
				return nil, nil, fmt.Errorf("shardstore: seen page: key %x: %w", sk, err)
			}
		}
		page = append(page, e)
		end := p.bound(kindEnd)
		next = end[:]
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("shardstore: seen page: %w", err)
	}
	return page, nil, nil
}

// importSeen merges one validated seen record into b: the later time wins.
// Like Touch, it gives none to a UAID without records; Import merges the
// other records first.
func importSeen(b *pebble.Batch, kv KV) error {
	in, _ := decodeSeen(kv.Value) // validated by checkRecord
	cur, closer, err := b.Get(kv.Key)
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		p := prefix(kv.Key[:prefixLen])
		if has, err := hasRecords(b, &p); err != nil || !has {
			if err != nil {
				err = fmt.Errorf("seen: %w", err)
			}
			return err
		}
	case err != nil:
		return fmt.Errorf("get seen: %w", err)
	default:
		local, derr := decodeSeen(cur)
		_ = closer.Close()
		if derr == nil && local >= in {
			return nil
		}
	}
	if err := b.Set(kv.Key, kv.Value, nil); err != nil {
		return fmt.Errorf("set seen: %w", err)
	}
	return nil
}
