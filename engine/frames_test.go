package engine_test

import (
	"strings"
	"testing"

	"github.com/pushd/pushd/engine"
)

// PROTOCOL.md 2 and 2.7 at the byte level: framing per RFC 6455 and the
// close codes. Frames are built by the test's own encoder
// (harness_extra_test.go), never by the server's code.

const helloMsg = `{"messageType":"hello","uaid":"","channelIDs":[]}`

func TestHandshakeSplitAcrossWrites(t *testing.T) {
	n := testNode(t, nil)
	r := dialTCP(t, n)
	r.trickle([]byte(handshakeRequest(n.WSAddr().String(), "/", "push-notification")))
	resp := r.expectUpgrade()
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "push-notification" {
		t.Fatalf("selected sub-protocol %q, want push-notification", p)
	}
	r.hello("")
}

func TestHandshakeAndFirstFrameInOneWrite(t *testing.T) {
	n := testNode(t, nil)
	r := dialTCP(t, n)
	b := []byte(handshakeRequest(n.WSAddr().String(), "/"))
	b = append(b, text(helloMsg).encode()...)
	r.write(b)
	r.expectUpgrade()
	if m := r.expectMessage(); m["messageType"] != "hello" || m["status"] != float64(200) {
		t.Fatalf("hello sent with the handshake answered %v", m)
	}
}

func TestFrameSplitAcrossWrites(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	r.trickle(text(helloMsg).encode())
	if m := r.expectMessage(); m["messageType"] != "hello" || m["status"] != float64(200) {
		t.Fatalf("trickled hello answered %v", m)
	}
}

func TestSeveralFramesInOneWrite(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	var b []byte
	b = append(b, text(`{}`).encode()...)
	b = append(b, text(helloMsg).encode()...)
	r.write(b)
	if m := r.expectMessage(); len(m) != 0 {
		t.Fatalf("first reply %v, want the ping's {}", m)
	}
	if m := r.expectMessage(); m["messageType"] != "hello" {
		t.Fatalf("second reply %v, want hello", m)
	}
}

func TestExtendedLengthFrames(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	// 16-bit length (126..65535): a hello padded with spaces.
	msg := helloMsg[:len(helloMsg)-1] + strings.Repeat(" ", 300) + "}"
	r.send(text(msg))
	if m := r.expectMessage(); m["messageType"] != "hello" {
		t.Fatalf("hello in a 16-bit-length frame answered %v", m)
	}
}

func TestFragmentedMessageWithPingBetween(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	for _, f := range []wsFrame{
		{fin: false, op: opText, masked: true, payload: []byte(helloMsg[:10])},
		{fin: true, op: opPing, masked: true, payload: []byte("between")},
		{fin: false, op: opContinuation, masked: true, payload: []byte(helloMsg[10:30])},
		{fin: true, op: opPong, masked: true, payload: []byte("unsolicited")},
		{fin: true, op: opContinuation, masked: true, payload: []byte(helloMsg[30:])},
	} {
		r.send(f) // one write each
	}
	if p := r.expectFrame(opPong); string(p.payload) != "between" {
		t.Fatalf("pong payload %q, want %q", p.payload, "between")
	}
	if m := r.expectMessage(); m["messageType"] != "hello" || m["status"] != float64(200) {
		t.Fatalf("fragmented hello answered %v", m)
	}
}

func TestPingFrameAnsweredWithPong(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	r.hello("")
	r.send(wsFrame{fin: true, op: opPing, masked: true, payload: []byte("abc")})
	if p := r.expectFrame(opPong); string(p.payload) != "abc" {
		t.Fatalf("pong payload %q, want %q", p.payload, "abc")
	}
}

func TestBinaryFrameCloses1003(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	r.hello("")
	r.send(wsFrame{fin: true, op: opBinary, masked: true, payload: []byte(`{}`)})
	r.expectClose(1003)
}

func TestFragmentedBinaryMessageCloses1003(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	r.hello("")
	r.send(
		wsFrame{fin: false, op: opBinary, masked: true, payload: []byte(`{`)},
		wsFrame{fin: true, op: opContinuation, masked: true, payload: []byte(`}`)},
	)
	r.expectClose(1003)
}

func TestInvalidJSONCloses1007(t *testing.T) {
	n := testNode(t, nil)
	for _, msg := range []string{`{"messageType":`, `hello`, `{"messageType":"hello"}}`, ``} {
		t.Run(msg, func(t *testing.T) {
			r := dialRaw(t, n)
			r.hello("")
			r.send(text(msg))
			r.expectClose(1007)
		})
	}
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	n := testNode(t, nil)
	t.Run("one frame", func(t *testing.T) {
		r := dialRaw(t, n)
		r.hello("")
		r.send(wsFrame{fin: true, op: opText, masked: true, payload: []byte("{\"messageType\":\"\xff\xfe\"}")})
		r.expectClose(1007)
	})
	t.Run("fragmented", func(t *testing.T) {
		r := dialRaw(t, n)
		r.hello("")
		r.send(
			wsFrame{fin: false, op: opText, masked: true, payload: []byte("{\"messageType\":\"\xc3")},
			wsFrame{fin: true, op: opContinuation, masked: true, payload: []byte("(\"}")}, // 0xc3 0x28: invalid
		)
		r.expectClose(1007)
	})
	t.Run("surrogate", func(t *testing.T) {
		r := dialRaw(t, n)
		r.hello("")
		r.send(wsFrame{fin: true, op: opText, masked: true, payload: []byte("{\"a\":\"\xed\xa0\x80\"}")})
		r.expectClose(1007)
	})
}

func TestUTF8SplitAcrossFragmentsIsValid(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	msg := []byte(`{"messageType":"hello","uaid":"","channelIDs":[],"x":"é"}`)
	i := strings.Index(string(msg), "é") + 1 // between the two bytes of é
	r.send(
		wsFrame{fin: false, op: opText, masked: true, payload: msg[:i]},
		wsFrame{fin: true, op: opContinuation, masked: true, payload: msg[i:]},
	)
	if m := r.expectMessage(); m["messageType"] != "hello" {
		t.Fatalf("hello with é split across fragments answered %v", m)
	}
}

func TestOversizeMessageCloses1009(t *testing.T) {
	n := testNode(t, nil) // MaxMessage: 32 KiB
	big := strings.Repeat(" ", 32<<10)
	t.Run("one frame", func(t *testing.T) {
		r := dialRaw(t, n)
		r.hello("")
		r.send(text("{" + big + "}"))
		r.expectClose(1009)
	})
	t.Run("fragmented", func(t *testing.T) {
		r := dialRaw(t, n)
		r.hello("")
		half := big[:20<<10]
		r.send(
			wsFrame{fin: false, op: opText, masked: true, payload: []byte("{" + half)},
			wsFrame{fin: true, op: opContinuation, masked: true, payload: []byte(half + "}")},
		)
		r.expectClose(1009)
	})
	t.Run("header only", func(t *testing.T) {
		// A frame announcing 1 GiB is refused from its header alone.
		r := dialRaw(t, n)
		r.hello("")
		r.write([]byte{0x81, 0x80 | 127, 0, 0, 0, 0, 0x40, 0, 0, 0, 1, 2, 3, 4})
		r.expectClose(1009)
	})
}

func TestMessageAtConfiguredLimitIsAccepted(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.MaxMessage = 1024 })
	r := dialRaw(t, n)
	msg := helloMsg[:len(helloMsg)-1] + strings.Repeat(" ", 1024-len(helloMsg)) + "}"
	r.send(text(msg))
	if m := r.expectMessage(); m["messageType"] != "hello" {
		t.Fatalf("1024-byte hello answered %v", m)
	}
	r.send(text("{" + strings.Repeat(" ", 1023) + "}"))
	r.expectClose(1009)
}

func TestProtocolErrorsClose1002(t *testing.T) {
	n := testNode(t, nil)
	for name, frames := range map[string][]wsFrame{
		"unmasked frame":               {{fin: true, op: opText, payload: []byte(`{}`)}},
		"RSV1 set":                     {{fin: true, rsv: 4, op: opText, masked: true, payload: []byte(`{}`)}},
		"RSV2 set":                     {{fin: true, rsv: 2, op: opText, masked: true, payload: []byte(`{}`)}},
		"RSV3 set":                     {{fin: true, rsv: 1, op: opText, masked: true, payload: []byte(`{}`)}},
		"continuation without start":   {{fin: true, op: opContinuation, masked: true, payload: []byte(`{}`)}},
		"fragmented control frame":     {{fin: false, op: opPing, masked: true, payload: []byte("x")}},
		"control payload over 125":     {{fin: true, op: opPing, masked: true, payload: []byte(strings.Repeat("x", 126))}},
		"reserved data opcode":         {{fin: true, op: 0x3, masked: true, payload: []byte(`{}`)}},
		"reserved control opcode":      {{fin: true, op: 0xb, masked: true, payload: []byte(`{}`)}},
		"new message while fragmented": {{fin: false, op: opText, masked: true, payload: []byte(`{`)}, {fin: true, op: opText, masked: true, payload: []byte(`{}`)}},
		"close with one-byte payload":  {{fin: true, op: opClose, masked: true, payload: []byte{3}}},
		"close with invalid code":      {{fin: true, op: opClose, masked: true, payload: closePayload(1005, "")}},
		"close with invalid UTF-8":     {{fin: true, op: opClose, masked: true, payload: closePayload(1000, "\xff")}},
	} {
		t.Run(name, func(t *testing.T) {
			r := dialRaw(t, n)
			r.hello("")
			r.send(frames...)
			r.expectClose(1002)
		})
	}
}

func TestCloseHandshakeIsEchoed(t *testing.T) {
	n := testNode(t, nil)
	for name, tc := range map[string]struct {
		payload []byte
		want    int
	}{
		"normal":       {closePayload(1000, "bye"), 1000},
		"going away":   {closePayload(1001, ""), 1001},
		"no code":      {nil, 1000},
		"private code": {closePayload(4000, "app"), 4000},
	} {
		t.Run(name, func(t *testing.T) {
			r := dialRaw(t, n)
			r.hello("")
			r.send(wsFrame{fin: true, op: opClose, masked: true, payload: tc.payload})
			r.expectClose(tc.want)
		})
	}
}

func TestCloseBeforeHelloIsEchoed(t *testing.T) {
	n := testNode(t, nil)
	r := dialRaw(t, n)
	r.send(wsFrame{fin: true, op: opClose, masked: true, payload: closePayload(1000, "")})
	r.expectClose(1000)
}
