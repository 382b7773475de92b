package wsframe

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// AppendFrame appends a final, unmasked server frame with the given opcode
// and payload to dst.
func AppendFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	b0 := 0x80 | byte(op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, b0, byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, payload...)
}

// AppendText appends a text frame carrying msg.
func AppendText(dst, msg []byte) []byte { return AppendFrame(dst, ws.OpText, msg) }

// AppendPing appends a ping frame.
func AppendPing(dst, payload []byte) []byte { return AppendFrame(dst, ws.OpPing, payload) }

// AppendPong appends a pong frame answering a ping with payload.
func AppendPong(dst, payload []byte) []byte { return AppendFrame(dst, ws.OpPong, payload) }

// AppendClose appends a close frame with code and a short reason (truncated
// so the payload fits a control frame).
func AppendClose(dst []byte, code ws.StatusCode, reason string) []byte {
	if len(reason) > ws.MaxControlFramePayloadSize-2 {
		reason = reason[:ws.MaxControlFramePayloadSize-2]
	}
	var body [ws.MaxControlFramePayloadSize]byte
	binary.BigEndian.PutUint16(body[:2], uint16(code))
	n := 2 + copy(body[2:], reason)
	return AppendFrame(dst, ws.OpClose, body[:n])
}
