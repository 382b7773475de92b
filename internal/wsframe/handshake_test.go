package wsframe

import (
	"bytes"
	"strings"
	"testing"
)

const firefoxHandshake = "GET / HTTP/1.1\r\n" +
	"Host: push.example.com\r\n" +
	"Upgrade: websocket\r\n" +
	"Connection: keep-alive, Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
	"Sec-WebSocket-Version: 13\r\n" +
	"Sec-WebSocket-Protocol: push-notification\r\n" +
	"Origin: null\r\n\r\n"

func TestHandshakeSplit(t *testing.T) {
	frame := []byte{0x81, 0x80, 0, 0, 0, 0} // an empty masked text frame right behind the request
	in := append([]byte(firefoxHandshake), frame...)
	// Every prefix short of the full request waits for more.
	for i := 0; i < len(firefoxHandshake); i++ {
		n, _, err := Handshake(in[:i], nil)
		if n != 0 || err != nil {
			t.Fatalf("prefix %d: n=%d err=%v, want wait", i, n, err)
		}
	}
	n, resp, err := Handshake(in, nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if n != len(firefoxHandshake) {
		t.Fatalf("consumed %d, want %d (the frame after it must stay)", n, len(firefoxHandshake))
	}
	r := string(resp)
	for _, want := range []string{"HTTP/1.1 101 ", "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Protocol: push-notification"} {
		if !strings.Contains(r, want) {
			t.Fatalf("response lacks %q:\n%s", want, r)
		}
	}
}

func TestHandshakeWithoutSubprotocol(t *testing.T) {
	req := strings.Replace(firefoxHandshake, "Sec-WebSocket-Protocol: push-notification\r\n", "", 1)
	_, resp, err := Handshake([]byte(req), nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if bytes.Contains(resp, []byte("Sec-WebSocket-Protocol")) {
		t.Fatalf("selected a protocol nobody offered:\n%s", resp)
	}
}

func TestHandshakeRejects(t *testing.T) {
	tests := map[string]string{
		"wrong path":  strings.Replace(firefoxHandshake, "GET / ", "GET /other ", 1),
		"no upgrade":  strings.Replace(firefoxHandshake, "Upgrade: websocket\r\n", "", 1),
		"old version": strings.Replace(firefoxHandshake, "Version: 13", "Version: 8", 1),
		"not http":    "HELLO\r\n\r\n",
	}
	for name, req := range tests {
		t.Run(name, func(t *testing.T) {
			n, resp, err := Handshake([]byte(req), nil)
			if err == nil {
				t.Fatal("accepted")
			}
			if n != len(req) || !bytes.HasPrefix(resp, []byte("HTTP/1.1 4")) {
				t.Fatalf("n=%d resp=%q", n, resp)
			}
		})
	}
	huge := "GET / HTTP/1.1\r\nX: " + strings.Repeat("a", MaxHandshakeSize)
	if _, _, err := Handshake([]byte(huge), nil); err != ErrHandshakeTooLarge {
		t.Fatalf("oversize handshake: %v", err)
	}
}
