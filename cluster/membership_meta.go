package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"time"
	"unicode/utf8"
)

// Meta is what a node publishes about itself through gossip: where its
// other listeners are (an empty address means the node does not serve
// it), and settings every member must share.
type Meta struct {
	RPCAddr  string // host:port of the inter-node transport
	WSAddr   string // host:port of the client WebSocket listener
	HTTPAddr string // host:port of the HTTP ingest and REST API
	// UAIDTTL is the node's UAID expiry (-uaid-ttl), in whole seconds,
	// 0 when off; -1 when the node does not say (an earlier release).
	UAIDTTL time.Duration
}

// MaxMetaSize is the most bytes an encoded Meta may take: memberlist's limit
// on node metadata.
const MaxMetaSize = 512

// metaVersion is the first byte of an encoded Meta.
const metaVersion = 1

// ErrBadMeta is wrapped by the errors for node metadata that is not an
// encoded Meta (from Start for the local Meta, and logged for a peer's).
var ErrBadMeta = errors.New("cluster: bad node meta")

// encodeMeta returns m in its gossip form:
//
//	[0]  version (1)
//	then RPCAddr, WSAddr and HTTPAddr, each a uvarint length and the bytes;
//	then UAIDTTL as a uvarint of whole seconds plus one (absent: not said).
//
// Bytes after the known fields are reserved for fields added later and are
// ignored by decodeMeta, so that nodes of different versions can share a
// cluster (a node of the release before UAIDTTL stops after the three
// addresses). It fails if a field is not empty or host:port, or if the
// result would exceed MaxMetaSize. A negative UAIDTTL is not written.
func encodeMeta(m Meta) ([]byte, error) {
	fields := [...]string{m.RPCAddr, m.WSAddr, m.HTTPAddr}
	b := []byte{metaVersion}
	for _, f := range fields {
		if err := checkMetaAddr(f); err != nil {
			return nil, err
		}
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	if m.UAIDTTL >= 0 {
		b = binary.AppendUvarint(b, uint64(m.UAIDTTL/time.Second)+1)
	}
	if len(b) > MaxMetaSize {
		return nil, fmt.Errorf("%w: %d bytes encoded, at most %d", ErrBadMeta, len(b), MaxMetaSize)
	}
	return b, nil
}

// decodeMeta parses what encodeMeta produced. It returns an error wrapping
// ErrBadMeta, never panics, for anything else: an empty or oversized buffer,
// another version, truncated fields, a length not in its shortest form, or
// a field that is not valid UTF-8 or not host:port. b is not retained.
func decodeMeta(b []byte) (Meta, error) {
	if len(b) == 0 {
		return Meta{}, fmt.Errorf("%w: empty", ErrBadMeta)
	}
	if len(b) > MaxMetaSize {
		return Meta{}, fmt.Errorf("%w: %d bytes, at most %d", ErrBadMeta, len(b), MaxMetaSize)
	}
	if b[0] != metaVersion {
		return Meta{}, fmt.Errorf("%w: version %d, want %d", ErrBadMeta, b[0], metaVersion)
	}
	var fields [3]string
	rest := b[1:]
	for i := range fields {
		n, used := binary.Uvarint(rest)
		if used <= 0 || n > uint64(len(rest)-used) {
			return Meta{}, fmt.Errorf("%w: field %d truncated", ErrBadMeta, i)
		}
		if used > 1 && rest[used-1] == 0 {
			return Meta{}, fmt.Errorf("%w: field %d length not minimally encoded", ErrBadMeta, i)
		}
		rest = rest[used:]
		f := rest[:n]
		rest = rest[n:]
		if !utf8.Valid(f) {
			return Meta{}, fmt.Errorf("%w: field %d is not UTF-8", ErrBadMeta, i)
		}
		fields[i] = string(f)
		if err := checkMetaAddr(fields[i]); err != nil {
			return Meta{}, err
		}
	}
	m := Meta{RPCAddr: fields[0], WSAddr: fields[1], HTTPAddr: fields[2], UAIDTTL: -1}
	if len(rest) > 0 {
		v, used := binary.Uvarint(rest)
		if used <= 0 || used > 1 && rest[used-1] == 0 || v == 0 || v-1 > math.MaxInt64/uint64(time.Second) {
			return Meta{}, fmt.Errorf("%w: uaid ttl field", ErrBadMeta)
		}
		m.UAIDTTL = time.Duration(v-1) * time.Second
	}
	return m, nil
}

// checkMetaAddr accepts "" and host:port.
func checkMetaAddr(a string) error {
	if a == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return fmt.Errorf("%w: address %q: %w", ErrBadMeta, a, err)
	}
	return nil
}
