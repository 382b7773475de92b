package wsframe

import (
	"encoding/binary"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// DefaultMaxMessage is the largest message (all fragments together) a Reader
// accepts when Reader.MaxMessage is zero.
const DefaultMaxMessage = 32 << 10

// Kind says what a parsed frame means to the caller.
type Kind uint8

const (
	// None: bytes were consumed (a non-final fragment) but nothing is
	// ready; call Next again with the rest of the input.
	None Kind = iota
	// Text: a complete, UTF-8 valid text message.
	Text
	// Ping: a ping control frame; answer with a pong carrying Payload.
	Ping
	// Pong: a pong control frame.
	Pong
	// Close: the peer started (or answered) the closing handshake;
	// Frame.Code holds its status code (ws.StatusNoStatusRcvd if none).
	Close
)

// Frame is one parsed frame or reassembled message.
type Frame struct {
	Kind Kind
	// Payload is unmasked. It aliases the input passed to Next (or, for a
	// reassembled message, a buffer handed over to the caller), so it is
	// valid only until the input buffer is discarded.
	Payload []byte
	// Code is the status code of a Close frame.
	Code ws.StatusCode
}

// CloseError is a protocol failure: the connection must be closed with Code.
type CloseError struct {
	Code   ws.StatusCode
	Reason string
}

func (e *CloseError) Error() string { return "wsframe: " + e.Reason }

var (
	errProtocol    = &CloseError{Code: ws.StatusProtocolError, Reason: "protocol error"}
	errBinary      = &CloseError{Code: ws.StatusUnsupportedData, Reason: "binary frames are not supported"}
	errTooBig      = &CloseError{Code: ws.StatusMessageTooBig, Reason: "message too big"}
	errInvalidUTF8 = &CloseError{Code: ws.StatusInvalidFramePayloadData, Reason: "invalid UTF-8"}
)

// Reader parses client frames. The zero value is ready to use; it is one
// pointer, and points at a buffer only while a fragmented message is being
// assembled.
type Reader struct {
	// frag holds the fragments of the message being assembled; nil
	// between messages.
	frag *[]byte
}

// Next parses one frame from the start of in, with messages bounded by
// max bytes (DefaultMaxMessage when max <= 0).
//
// n is the number of bytes used; the caller discards them. n == 0 with a
// nil error means in holds no complete frame yet. A *CloseError means the
// connection must be closed with its code; nothing after it is parsed.
// Next unmasks the payload in place, so in must be writable.
func (r *Reader) Next(in []byte, max int) (n int, f Frame, err error) {
	h, hlen, ok := parseHeader(in)
	if !ok {
		return 0, f, nil
	}
	state := ws.StateServerSide
	if r.frag != nil {
		state = state.Set(ws.StateFragmented)
	}
	if err := ws.CheckHeader(h, state); err != nil {
		return 0, f, errProtocol
	}
	if h.OpCode == ws.OpBinary {
		return 0, f, errBinary
	}
	if max <= 0 {
		max = DefaultMaxMessage
	}
	if h.Length > int64(max) || (h.OpCode == ws.OpContinuation && int64(len(*r.frag))+h.Length > int64(max)) {
		return 0, f, errTooBig
	}
	total := hlen + int(h.Length)
	if len(in) < total {
		return 0, f, nil
	}
	payload := in[hlen:total]
	ws.Cipher(payload, h.Mask, 0)

	switch h.OpCode {
	case ws.OpPing:
		return total, Frame{Kind: Ping, Payload: payload}, nil
	case ws.OpPong:
		return total, Frame{Kind: Pong, Payload: payload}, nil
	case ws.OpClose:
		f, err := closeFrame(payload)
		if err != nil {
			return 0, f, err
		}
		return total, f, nil
	case ws.OpText:
		if !h.Fin {
			buf := append(make([]byte, 0, len(payload)*2), payload...)
			r.frag = &buf
			return total, Frame{Kind: None}, nil
		}
		return r.text(total, payload)
	default: // ws.OpContinuation; CheckHeader made sure a message is open
		*r.frag = append(*r.frag, payload...)
		if !h.Fin {
			return total, Frame{Kind: None}, nil
		}
		msg := *r.frag
		r.frag = nil
		return r.text(total, msg)
	}
}

func (r *Reader) text(n int, msg []byte) (int, Frame, error) {
	if !utf8.Valid(msg) {
		return 0, Frame{}, errInvalidUTF8
	}
	return n, Frame{Kind: Text, Payload: msg}, nil
}

func closeFrame(payload []byte) (Frame, error) {
	switch len(payload) {
	case 0:
		return Frame{Kind: Close, Code: ws.StatusNoStatusRcvd}, nil
	case 1:
		return Frame{}, errProtocol
	}
	code, reason := ws.ParseCloseFrameDataUnsafe(payload)
	if ws.CheckCloseFrameData(code, reason) != nil {
		return Frame{}, errProtocol
	}
	return Frame{Kind: Close, Code: code, Payload: payload}, nil
}

// parseHeader decodes a frame header from the start of in without
// consuming anything; ok is false while the header is incomplete. It
// mirrors ws.ReadHeader, which needs an io.Reader and would consume a
// partial header.
func parseHeader(in []byte) (h ws.Header, size int, ok bool) {
	if len(in) < 2 {
		return h, 0, false
	}
	h.Fin = in[0]&0x80 != 0
	h.Rsv = (in[0] & 0x70) >> 4
	h.OpCode = ws.OpCode(in[0] & 0x0f)
	h.Masked = in[1]&0x80 != 0
	size = 2
	switch l := in[1] & 0x7f; l {
	case 126:
		size += 2
		if len(in) < size {
			return h, 0, false
		}
		h.Length = int64(binary.BigEndian.Uint16(in[2:4]))
	case 127:
		size += 8
		if len(in) < size {
			return h, 0, false
		}
		u := binary.BigEndian.Uint64(in[2:10])
		if u > 1<<62 { // MSB must be zero; also keeps int conversions safe
			u = 1 << 62
		}
		h.Length = int64(u)
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(in) < size+4 {
			return h, 0, false
		}
		copy(h.Mask[:], in[size:size+4])
		size += 4
	}
	return h, size, true
}
