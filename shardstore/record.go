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
	metaEncV1    byte = 1

	// Channel record, encoding 1:
	//
	//	[0]     encoding version (1)
	//	[1]     flags: bit 0 set when data was sent with the pending version
	//	[2:10]  highest accepted version, big-endian
	//	[10:18] pending version, big-endian, 0 = none
	//	[18:]   data (only when flag bit 0 is set; may be empty)
	channelHeaderLen = 18
	flagHasData      = 1 << 0

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
}

// encodedLen is the length of r's encoding.
func (r *channelRecord) encodedLen() int {
	return channelHeaderLen + len(r.data)
}

// encodeTo writes r into dst, which must be exactly r.encodedLen() bytes.
func (r *channelRecord) encodeTo(dst []byte) {
	_ = dst[channelHeaderLen-1]
	dst[0] = channelEncV1
	dst[1] = 0
	if r.hasData {
		dst[1] = flagHasData
	}
	binary.BigEndian.PutUint64(dst[2:10], r.version)
	binary.BigEndian.PutUint64(dst[10:18], r.pending)
	copy(dst[channelHeaderLen:], r.data)
}

// decodeChannel decodes a channel record. The returned data aliases b. It
// returns an error wrapping ErrCorrupt, never panics, for any b that
// encodeTo cannot have produced.
func decodeChannel(b []byte) (channelRecord, error) {
	var r channelRecord
	if len(b) < channelHeaderLen {
		return r, fmt.Errorf("%w: channel record of %d bytes", ErrCorrupt, len(b))
	}
	if b[0] != channelEncV1 {
		return r, fmt.Errorf("%w: channel record encoding %d", ErrCorrupt, b[0])
	}
	if b[1]&^flagHasData != 0 {
		return r, fmt.Errorf("%w: channel record flags %#x", ErrCorrupt, b[1])
	}
	r.hasData = b[1]&flagHasData != 0
	r.version = binary.BigEndian.Uint64(b[2:10])
	r.pending = binary.BigEndian.Uint64(b[10:18])
	data := b[channelHeaderLen:]
	switch {
	case r.pending > r.version:
		return r, fmt.Errorf("%w: pending version %d above highest %d", ErrCorrupt, r.pending, r.version)
	case !r.hasData && len(data) != 0:
		return r, fmt.Errorf("%w: %d data bytes without data flag", ErrCorrupt, len(data))
	case r.hasData && r.pending == 0:
		return r, fmt.Errorf("%w: data without a pending version", ErrCorrupt)
	case len(data) > MaxDataSize:
		return r, fmt.Errorf("%w: %d data bytes", ErrCorrupt, len(data))
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
