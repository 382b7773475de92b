package shardstore

import (
	"encoding/binary"
	"fmt"
)

// MaxDataSize is the most data bytes Put stores with a version.
const MaxDataSize = 4096

// MaxMetaSize is the longest blob SetMeta accepts.
const MaxMetaSize = 4096

// Record encodings. The first byte of every value is its encoding version so
// that a later release can change the layout and still read old stores.
const (
	channelEncV1 byte = 1
	channelEncV2 byte = 2
	metaEncV1    byte = 1

	// Channel record, encoding 1: a live registration of generation 0,
	// the form nearly every record takes.
	//
	//	[0]     encoding version (1)
	//	[1]     flags: bit 0 set when data was sent with the pending version
	//	[2:10]  highest accepted version, big-endian
	//	[10:18] pending version, big-endian, 0 = none
	//	[18:]   data (only when flag bit 0 is set; may be empty)
	channelHeaderLen = 18

	// Channel record, encoding 2: a registration of a later generation,
	// or an unregistered channel's tombstone.
	//
	//	[0]     encoding version (2)
	//	[1]     flags: bit 0 as in encoding 1; bit 1 set on a tombstone
	//	[2:10]  highest accepted version, big-endian
	//	[10:18] pending version, big-endian, 0 = none (always 0 on a tombstone)
	//	[18:22] generation, big-endian: above every other channel record
	//	        of the UAID when the registration was made
	//	[22:30] tombstone: when the channel was unregistered, Unix seconds;
	//	        0 on a live registration
	//	[30:]   data, as in encoding 1 (never on a tombstone)
	channelHeaderLenV2 = 30

	flagHasData = 1 << 0
	flagDead    = 1 << 1

	// Meta record, encoding 1: [0] encoding version (1), [1:] the blob
	// (never empty: an empty blob is stored as no record).
	metaHeaderLen = 1
)

// channelRecord is the decoded value of a channel key.
type channelRecord struct {
	version uint64
	pending uint64
	hasData bool
	data    []byte // aliases the decoded buffer

	// gen is the registration's generation: a registration takes one
	// above every channel record of its UAID (Register), so a merge can
	// tell the newer of two records of a channel id (see newerChannel).
	gen uint32
	// dead marks a tombstone: the channel was unregistered at unregAt
	// (Unix seconds). A tombstone keeps the highest accepted version and
	// has nothing pending.
	dead    bool
	unregAt int64
}

// headerLen is the length of r's encoded header: encoding 1 whenever it
// can carry r.
func (r *channelRecord) headerLen() int {
	if r.gen == 0 && !r.dead {
		return channelHeaderLen
	}
	return channelHeaderLenV2
}

// encodedLen is the length of r's encoding.
func (r *channelRecord) encodedLen() int {
	return r.headerLen() + len(r.data)
}

// encodeTo writes r into dst, which must be exactly r.encodedLen() bytes.
func (r *channelRecord) encodeTo(dst []byte) {
	_ = dst[channelHeaderLen-1]
	h := r.headerLen()
	dst[0] = channelEncV1
	if h == channelHeaderLenV2 {
		dst[0] = channelEncV2
	}
	dst[1] = 0
	if r.hasData {
		dst[1] |= flagHasData
	}
	if r.dead {
		dst[1] |= flagDead
	}
	binary.BigEndian.PutUint64(dst[2:10], r.version)
	binary.BigEndian.PutUint64(dst[10:18], r.pending)
	if h == channelHeaderLenV2 {
		binary.BigEndian.PutUint32(dst[18:22], r.gen)
		binary.BigEndian.PutUint64(dst[22:30], uint64(r.unregAt))
	}
	copy(dst[h:], r.data)
}

// channelHeaderLenOf returns the header length of the encoded channel
// record b, by its encoding byte, or 0 for an unknown encoding.
func channelHeaderLenOf(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == channelEncV1:
		return channelHeaderLen
	case b[0] == channelEncV2:
		return channelHeaderLenV2
	}
	return 0
}

// decodeChannel decodes a channel record. The returned data aliases b. It
// returns an error wrapping ErrCorrupt, never panics, for any b that
// encodeTo cannot have produced.
func decodeChannel(b []byte) (channelRecord, error) {
	var r channelRecord
	h := channelHeaderLenOf(b)
	if h == 0 {
		if len(b) == 0 {
			return r, fmt.Errorf("%w: empty channel record", ErrCorrupt)
		}
		return r, fmt.Errorf("%w: channel record encoding %d", ErrCorrupt, b[0])
	}
	if len(b) < h {
		return r, fmt.Errorf("%w: channel record of %d bytes", ErrCorrupt, len(b))
	}
	flags := byte(flagHasData)
	if h == channelHeaderLenV2 {
		flags |= flagDead
	}
	if b[1]&^flags != 0 {
		return r, fmt.Errorf("%w: channel record flags %#x", ErrCorrupt, b[1])
	}
	r.hasData = b[1]&flagHasData != 0
	r.dead = b[1]&flagDead != 0
	r.version = binary.BigEndian.Uint64(b[2:10])
	r.pending = binary.BigEndian.Uint64(b[10:18])
	if h == channelHeaderLenV2 {
		r.gen = binary.BigEndian.Uint32(b[18:22])
		r.unregAt = int64(binary.BigEndian.Uint64(b[22:30]))
	}
	data := b[h:]
	switch {
	case r.pending > r.version:
		return r, fmt.Errorf("%w: pending version %d above highest %d", ErrCorrupt, r.pending, r.version)
	case !r.hasData && len(data) != 0:
		return r, fmt.Errorf("%w: %d data bytes without data flag", ErrCorrupt, len(data))
	case r.hasData && r.pending == 0:
		return r, fmt.Errorf("%w: data without a pending version", ErrCorrupt)
	case len(data) > MaxDataSize:
		return r, fmt.Errorf("%w: %d data bytes", ErrCorrupt, len(data))
	case r.dead && r.pending != 0:
		return r, fmt.Errorf("%w: tombstone with pending version %d", ErrCorrupt, r.pending)
	case r.dead && r.unregAt <= 0, !r.dead && r.unregAt != 0:
		return r, fmt.Errorf("%w: unregistered at %d (tombstone %v)", ErrCorrupt, r.unregAt, r.dead)
	case h == channelHeaderLenV2 && r.gen == 0 && !r.dead:
		// Encoding 1 carries it; encodeTo never writes this.
		return r, fmt.Errorf("%w: live generation 0 in encoding 2", ErrCorrupt)
	}
	if r.hasData {
		r.data = data
	}
	return r, nil
}

// decodeMeta decodes a meta record; the blob aliases b.
func decodeMeta(b []byte) ([]byte, error) {
	if len(b) <= metaHeaderLen {
		return nil, fmt.Errorf("%w: meta record of %d bytes", ErrCorrupt, len(b))
	}
	if b[0] != metaEncV1 {
		return nil, fmt.Errorf("%w: meta record encoding %d", ErrCorrupt, b[0])
	}
	if len(b)-metaHeaderLen > MaxMetaSize {
		return nil, fmt.Errorf("%w: meta blob of %d bytes", ErrCorrupt, len(b)-metaHeaderLen)
	}
	return b[metaHeaderLen:], nil
}
