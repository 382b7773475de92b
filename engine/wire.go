package engine

import (
	"encoding/binary"
	"errors"

	"github.com/google/uuid"

	"github.com/pushd/pushd/internal/protocol"
)

// The payloads of calls between nodes (rpc.go) are built with wbuf and
// read with rbuf: fixed-width integers big-endian, byte strings and lists
// prefixed with a uvarint length. Peers are authenticated, but a reader
// still checks every length against what is left, so a bad payload is an
// error, never a panic or a huge allocation.

// errWire: a call's payload could not be read.
var errWire = errors.New("engine: malformed call payload")

type wbuf []byte

func (b *wbuf) byte1(v byte)     { *b = append(*b, v) }
func (b *wbuf) u32(v uint32)     { *b = binary.BigEndian.AppendUint32(*b, v) }
func (b *wbuf) u64(v uint64)     { *b = binary.BigEndian.AppendUint64(*b, v) }
func (b *wbuf) uvarint(v int)    { *b = binary.AppendUvarint(*b, uint64(v)) }
func (b *wbuf) uuid(u uuid.UUID) { *b = append(*b, u[:]...) }
func (b *wbuf) bytes(v []byte)   { b.uvarint(len(v)); *b = append(*b, v...) }
func (b *wbuf) str(v string)     { b.uvarint(len(v)); *b = append(*b, v...) }
func (b *wbuf) uuids(us []uuid.UUID) {
	b.uvarint(len(us))
	for _, u := range us {
		b.uuid(u)
	}
}

func (b *wbuf) boolean(v bool) {
	if v {
		b.byte1(1)
	} else {
		b.byte1(0)
	}
}

// optBytes writes v with a flag telling nil from empty.
func (b *wbuf) optBytes(v []byte) {
	if v == nil {
		b.byte1(0)
		return
	}
	b.byte1(1)
	b.bytes(v)
}

// packet writes an UPDATE packet.
func (b *wbuf) packet(p []protocol.UAIDUpdates) {
	b.uvarint(len(p))
	for _, x := range p {
		b.uuid(x.UAID)
		b.uvarint(len(x.Updates))
		for _, up := range x.Updates {
			b.uuid(up.ChannelID)
			b.u64(up.Version)
			b.optBytes(up.Data)
		}
	}
}

// rbuf reads a payload. The first failure sticks: every later read returns
// zero values, and err reports it.
type rbuf struct {
	b   []byte
	bad bool
}

func (r *rbuf) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *rbuf) byte1() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *rbuf) boolean() bool { return r.byte1() == 1 }

func (r *rbuf) u32() uint32 {
	if v := r.take(4); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *rbuf) u64() uint64 {
	if v := r.take(8); v != nil {
		return binary.BigEndian.Uint64(v)
	}
	return 0
}

// count reads a length that announces items of at least min bytes each.
func (r *rbuf) count(min int) int {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > uint64(len(r.b)-n)/uint64(max(min, 1)) {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return int(v)
}

func (r *rbuf) uuid() (u uuid.UUID) {
	copy(u[:], r.take(16))
	return u
}

// bytes reads a byte string, copied so it outlives the payload.
func (r *rbuf) bytes() []byte {
	v := r.take(r.count(1))
	if v == nil {
		return nil
	}
	return append([]byte{}, v...)
}

func (r *rbuf) str() string { return string(r.take(r.count(1))) }

func (r *rbuf) optBytes() []byte {
	if r.byte1() == 0 {
		return nil
	}
	if b := r.bytes(); b != nil {
		return b
	}
	return []byte{}
}

func (r *rbuf) uuids() []uuid.UUID {
	us := make([]uuid.UUID, r.count(16))
	for i := range us {
		us[i] = r.uuid()
	}
	return us
}

func (r *rbuf) packet() []protocol.UAIDUpdates {
	p := make([]protocol.UAIDUpdates, r.count(17))
	for i := range p {
		p[i].UAID = r.uuid()
		p[i].Updates = make([]protocol.Update, r.count(25))
		for j := range p[i].Updates {
			up := &p[i].Updates[j]
			up.ChannelID = r.uuid()
			up.Version = r.u64()
			up.Data = r.optBytes()
		}
	}
	return p
}

// err reports whether anything failed to read or bytes are left over.
func (r *rbuf) err() error {
	if r.bad || len(r.b) != 0 {
		return errWire
	}
	return nil
}
