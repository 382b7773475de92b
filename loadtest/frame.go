package loadtest

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	mrand "math/rand/v2"

	"github.com/gobwas/ws"
)

// The client side of RFC 6455 on byte slices: the opening handshake and
// frames, as a device sends them (masked) and reads them (unmasked).

// maxServerFrame bounds a server frame's payload; pushd's messages are far
// smaller.
const maxServerFrame = 1 << 20

// maxHandshakeResponse bounds the server's 101 response.
const maxHandshakeResponse = 8 << 10

var (
	errHandshake    = errors.New("loadtest: bad handshake response")
	errFrame        = errors.New("loadtest: bad frame from server")
	errFrameTooBig  = errors.New("loadtest: frame from server too big")
	websocketGUID   = []byte("258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
	headerEnd       = []byte("\r\n\r\n")
	switchingStatus = []byte("HTTP/1.1 101 ")
)

// handshake is one process's opening handshake: the same key for every
// connection (a load generator need not vary it), so the expected accept
// value is computed once.
type handshake struct {
	key    string
	accept []byte // "Sec-WebSocket-Accept: <value>"
}

func newHandshake() handshake {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	sum := sha1.Sum(append([]byte(key), websocketGUID...))
	return handshake{key: key, accept: []byte(base64.StdEncoding.EncodeToString(sum[:]))}
}

// request is the opening handshake for host (the Host header) and path.
func (h handshake) request(host, path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: " + host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + h.key +
		"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: push-notification\r\n\r\n")
}

// response checks a server's answer at the start of in. It returns n == 0
// and no error while the headers are incomplete, else the header length
// and whether it is a valid 101 for this key.
func (h handshake) response(in []byte) (int, error) {
	end := bytes.Index(in, headerEnd)
	if end < 0 {
		if len(in) > maxHandshakeResponse {
			return len(in), errHandshake
		}
		return 0, nil
	}
	n := end + len(headerEnd)
	head := in[:n]
	if !bytes.HasPrefix(head, switchingStatus) || !bytes.Contains(head, h.accept) {
		return n, errHandshake
	}
	return n, nil
}

// appendClientFrame appends a final frame with a fresh mask, as RFC 6455
// requires of clients.
func appendClientFrame(dst []byte, op ws.OpCode, payload []byte) []byte {
	b0 := 0x80 | byte(op)
	switch n := len(payload); {
	case n < 126:
		dst = append(dst, b0, 0x80|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, 0x80|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, b0, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	var mask [4]byte
	binary.LittleEndian.PutUint32(mask[:], mrand.Uint32())
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}

// appendClientClose appends a masked close frame carrying code.
func appendClientClose(dst []byte, code uint16) []byte {
	var body [2]byte
	binary.BigEndian.PutUint16(body[:], code)
	return appendClientFrame(dst, ws.OpClose, body[:])
}

// serverFrame is one frame parsed from the server; payload aliases the
// input.
type serverFrame struct {
	op      ws.OpCode
	fin     bool
	payload []byte
}

// parseServerFrame parses one frame at the start of in. n == 0 with no
// error means the frame is incomplete.
func parseServerFrame(in []byte) (n int, f serverFrame, err error) {
	if len(in) < 2 {
		return 0, f, nil
	}
	f.fin = in[0]&0x80 != 0
	if in[0]&0x70 != 0 || in[1]&0x80 != 0 { // RSV bits, or a masked server frame
		return 0, f, errFrame
	}
	f.op = ws.OpCode(in[0] & 0x0f)
	size := 2
	var length uint64
	switch l := in[1] & 0x7f; l {
	case 126:
		size += 2
		if len(in) < size {
			return 0, f, nil
		}
		length = uint64(binary.BigEndian.Uint16(in[2:4]))
	case 127:
		size += 8
		if len(in) < size {
			return 0, f, nil
		}
		length = binary.BigEndian.Uint64(in[2:10])
	default:
		length = uint64(l)
	}
	if length > maxServerFrame {
		return 0, f, errFrameTooBig
	}
	total := size + int(length)
	if len(in) < total {
		return 0, f, nil
	}
	f.payload = in[size:total]
	return total, f, nil
}

// closeCode reads a close frame's status code (1005 when it has none).
func closeCode(payload []byte) uint16 {
	if len(payload) < 2 {
		return uint16(ws.StatusNoStatusRcvd)
	}
	return binary.BigEndian.Uint16(payload)
}
