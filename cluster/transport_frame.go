package cluster

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frames of the transport, after the handshake (see Transport for the whole
// wire format):
//
//	u32 length | u8 kind | u64 id | u8 method | payload
//
// All integers are big-endian. length counts the bytes after itself, so it is
// frameFixedLen plus the payload's length.
const (
	// frameHeaderLen is the size of everything before the payload.
	frameHeaderLen = 4 + 1 + 8 + 1
	// frameFixedLen is the part of length that is not payload.
	frameFixedLen = frameHeaderLen - 4
)

// frameKind is the second field of a frame.
type frameKind uint8

const (
	// kindRequest carries a request from the dialling node; method names
	// the operation, id is chosen by the caller.
	kindRequest frameKind = 1
	// kindResponse carries the handler's response to the request with the
	// same id. method echoes the request's.
	kindResponse frameKind = 2
	// kindError carries the text of the handler's error for the request
	// with the same id.
	kindError frameKind = 3
)

// Frame faults. Each closes the connection it was read from, and only that
// one.
var (
	errFrameShort    = errors.New("cluster: frame length below header size")
	errFrameTooLarge = errors.New("cluster: frame payload above MaxFrame")
	errFrameKind     = errors.New("cluster: unexpected frame kind")
)

// frameHeader is a decoded frame header.
type frameHeader struct {
	kind   frameKind
	id     uint64
	method uint8
	size   int // payload bytes that follow
}

// appendFrame appends one encoded frame to b. The caller has checked that
// the payload fits in MaxFrame.
func appendFrame[P []byte | string](b []byte, kind frameKind, id uint64, method uint8, payload P) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(frameFixedLen+len(payload)))
	b = append(b, byte(kind))
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, method)
	return append(b, payload...)
}

// parseFrameHeader decodes and bounds-checks a header. maxPayload is the
// largest payload accepted. The kind is not checked here: which kinds are
// valid depends on the connection's direction.
func parseFrameHeader(h *[frameHeaderLen]byte, maxPayload int) (frameHeader, error) {
	length := binary.BigEndian.Uint32(h[0:4])
	if length < frameFixedLen {
		return frameHeader{}, fmt.Errorf("%w: %d", errFrameShort, length)
	}
	size := int64(length) - frameFixedLen
	if size > int64(maxPayload) {
		return frameHeader{}, fmt.Errorf("%w: %d bytes", errFrameTooLarge, size)
	}
	return frameHeader{
		kind:   frameKind(h[4]),
		id:     binary.BigEndian.Uint64(h[5:13]),
		method: h[13],
		size:   int(size),
	}, nil
}

// readFrame reads one frame from r. h is scratch space for the header, so
// that reading allocates only the payload. The payload is a fresh slice
// (nil when empty) that the caller owns.
func readFrame(r *bufio.Reader, h *[frameHeaderLen]byte, maxPayload int) (frameHeader, []byte, error) {
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return frameHeader{}, nil, err
	}
	fh, err := parseFrameHeader(h, maxPayload)
	if err != nil {
		return frameHeader{}, nil, err
	}
	if fh.size == 0 {
		return fh, nil, nil
	}
	payload := make([]byte, fh.size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return frameHeader{}, nil, noEOF(err)
	}
	return fh, payload, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: an EOF inside a frame or a
// handshake message is a truncation, not a clean end.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
