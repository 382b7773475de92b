package shardstore

import (
	"encoding/binary"

	"github.com/cespare/xxhash/v2"
	"github.com/google/uuid"
)

// RingHash is the position of uaid on the cluster's consistent-hash ring:
// xxhash64 of its 16 bytes. Every key of the UAID starts with it, big-endian,
// so the records of any ring range are one contiguous key range.
func RingHash(uaid uuid.UUID) uint64 {
	return xxhash.Sum64(uaid[:])
}

// Record kinds: the byte after the UAID prefix. Values below kindEnd only;
// kindEnd bounds a UAID's key range.
const (
	kindMeta    byte = 0x01
	kindChannel byte = 0x02
	kindPending byte = 0x03
	kindSeen    byte = 0x04
	kindEnd     byte = 0xff
)

const (
	prefixLen     = 8 + 16             // ring hash + UAID
	metaKeyLen    = prefixLen + 1      // + kind
	channelKeyLen = prefixLen + 1 + 16 // + kind + channel id
	uaidBoundLen  = prefixLen + 1      // prefix + kind, as an iterator bound
	channelIDOff  = prefixLen + 1      // offset of the channel id in a channel key
)

// prefix is the 24 bytes every key of a UAID starts with.
type prefix [prefixLen]byte

func uaidPrefix(uaid uuid.UUID) prefix {
	var p prefix
	binary.BigEndian.PutUint64(p[:8], RingHash(uaid))
	copy(p[8:], uaid[:])
	return p
}

// bound returns p followed by kind: a key no record sorts between and the
// first record of that kind.
func (p *prefix) bound(kind byte) [uaidBoundLen]byte {
	var k [uaidBoundLen]byte
	copy(k[:], p[:])
	k[prefixLen] = kind
	return k
}

func (p *prefix) metaKey() [metaKeyLen]byte {
	return p.bound(kindMeta)
}

func (p *prefix) pendingKey() [metaKeyLen]byte {
	return p.bound(kindPending)
}

func (p *prefix) channelKey(chid uuid.UUID) [channelKeyLen]byte {
	var k [channelKeyLen]byte
	copy(k[:], p[:])
	k[prefixLen] = kindChannel
	copy(k[channelIDOff:], chid[:])
	return k
}

// channelIDFromKey returns the channel id of a channel key, and false if key
// is not one.
func channelIDFromKey(key []byte) (uuid.UUID, bool) {
	var id uuid.UUID
	if len(key) != channelKeyLen || key[prefixLen] != kindChannel {
		return id, false
	}
	copy(id[:], key[channelIDOff:])
	return id, true
}

// ringBounds returns the key range [start, end) holding every record of the
// UAIDs whose ring hash h satisfies lo <= h < hi; end is nil (unbounded) when
// hi is 0, meaning the top of the ring. This is the range a ring handoff
// scans or deletes.
func ringBounds(lo, hi uint64) (start, end []byte) {
	start = binary.BigEndian.AppendUint64(nil, lo)
	if hi != 0 {
		end = binary.BigEndian.AppendUint64(nil, hi)
	}
	return start, end
}
