package cluster

import (
	"bufio"
	"bytes"
	"testing"
	"testing/iotest"
)

// FuzzTransportFrame feeds arbitrary bytes, one byte per read, to the frame
// reader: it must never panic, never return a payload above the limit, and
// every frame it accepts must re-encode to the bytes it consumed.
func FuzzTransportFrame(f *testing.F) {
	req := appendFrame(nil, kindRequest, 1, 3, []byte("put u1 c1 42"))
	resp := appendFrame(nil, kindResponse, 1, 3, []byte("ok"))
	errResp := appendFrame(nil, kindError, 2, 3, "no such uaid")
	empty := appendFrame(nil, kindRequest, 1<<63, 255, []byte(nil))
	f.Add(req)
	f.Add(resp)
	f.Add(errResp)
	f.Add(empty)
	f.Add(bytes.Join([][]byte{req, resp, errResp, empty}, nil))
	f.Add(req[:len(req)-1])
	f.Add([]byte{0, 0, 0, 3, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1})
	const maxPayload = 64
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(iotest.OneByteReader(bytes.NewReader(data)))
		var hdr [frameHeaderLen]byte
		off := 0
		for {
			fh, payload, err := readFrame(r, &hdr, maxPayload)
			if err != nil {
				return
			}
			if len(payload) != fh.size || fh.size > maxPayload {
				t.Fatalf("payload %d bytes, header says %d (max %d)", len(payload), fh.size, maxPayload)
			}
			enc := appendFrame(nil, fh.kind, fh.id, fh.method, payload)
			if !bytes.Equal(enc, data[off:off+len(enc)]) {
				t.Fatalf("frame at %d re-encodes to %x, read from %x", off, enc, data[off:off+len(enc)])
			}
			off += len(enc)
		}
	})
}

// FuzzTransportHello does the same for the handshake hello.
func FuzzTransportHello(f *testing.F) {
	h := newHello("node-1")
	good := appendHello(nil, &h)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte("pshd\x01\x00"))
	f.Add([]byte("pshd\x02\x01a"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(iotest.OneByteReader(bytes.NewReader(data)))
		h, err := readHello(r)
		if err != nil {
			return
		}
		enc := appendHello(nil, &h)
		if h.name == "" || !bytes.HasPrefix(data, enc) {
			t.Fatalf("hello %+v re-encodes to %x, read from %x", h, enc, data)
		}
	})
}
