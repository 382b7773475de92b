package wsframe

import (
	"testing"
)

func FuzzReader(f *testing.F) {
	f.Add(clientFrame(true, 0x1, []byte(`{"messageType":"hello","uaid":"","channelIDs":[]}`)), 1)
	f.Add(clientFrame(true, 0x1, []byte(`{}`)), 3)
	f.Add(append(clientFrame(false, 0x1, []byte(`{"a"`)), clientFrame(true, 0x0, []byte(`:1}`))...), 2)
	f.Add(clientFrame(true, 0x9, []byte("p")), 1)
	f.Add(clientFrame(true, 0x8, []byte{3, 232}), 4)
	f.Add(clientFrame(true, 0x2, []byte{1, 2}), 1)
	f.Add([]byte{0x81, 0xfe, 0xff, 0xff, 1, 2, 3, 4}, 1)
	f.Fuzz(func(t *testing.T, stream []byte, chunk int) {
		if chunk <= 0 || chunk > len(stream)+1 {
			chunk = len(stream) + 1
		}
		r := limitReader{max: 1 << 10}
		frames, err := feed(t, &r, append([]byte(nil), stream...), chunk)
		for _, fr := range frames {
			if len(fr.Payload) > 1<<10 {
				t.Fatalf("payload of %d bytes passed a 1 KiB limit", len(fr.Payload))
			}
		}
		if err == nil && r.frag != nil && len(*r.frag) > 1<<10 {
			t.Fatalf("assembly buffer grew to %d", len(*r.frag))
		}
	})
}

func FuzzHandshake(f *testing.F) {
	f.Add([]byte(firefoxHandshake))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte("GET /?x=1 HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, resp, err := Handshake(in, nil)
		if n < 0 || n > len(in) {
			t.Fatalf("consumed %d of %d", n, len(in))
		}
		if n > 0 && len(resp) == 0 {
			t.Fatalf("complete request (err %v) without a response", err)
		}
	})
}
