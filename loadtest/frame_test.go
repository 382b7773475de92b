package loadtest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/google/uuid"

	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/internal/wsframe"
)

// The device side is checked against pushd's own server side: its
// handshake, frame reader (which refuses unmasked frames) and encoders.

func TestClientFramesReadByServer(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 4000, 65535, 65536} {
		payload := bytes.Repeat([]byte("a"), n)
		frame := appendClientFrame(nil, ws.OpText, payload)
		if frame[1]&0x80 == 0 {
			t.Fatalf("len %d: frame not masked", n)
		}
		var r wsframe.Reader
		used, f, err := r.Next(frame, 1<<20)
		if err != nil || used != len(frame) || f.Kind != wsframe.Text || !bytes.Equal(f.Payload, payload) {
			t.Fatalf("len %d: used %d of %d, kind %d, err %v", n, used, len(frame), f.Kind, err)
		}
	}
	var r wsframe.Reader
	_, f, err := r.Next(appendClientClose(nil, 1000), 0)
	if err != nil || f.Kind != wsframe.Close || f.Code != 1000 {
		t.Fatalf("close frame: %+v %v", f, err)
	}
}

func TestParseServerFrameChunked(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("b"), n)
		frame := wsframe.AppendText(nil, payload)
		for i := range len(frame) {
			if used, _, err := parseServerFrame(frame[:i]); used != 0 || err != nil {
				t.Fatalf("len %d prefix %d: used %d err %v", n, i, used, err)
			}
		}
		used, f, err := parseServerFrame(append(frame, 0x81))
		if err != nil || used != len(frame) || f.op != ws.OpText || !f.fin || !bytes.Equal(f.payload, payload) {
			t.Fatalf("len %d: used %d err %v", n, used, err)
		}
	}
	_, f, _ := parseServerFrame(wsframe.AppendClose(nil, 4001, "superseded"))
	if f.op != ws.OpClose || closeCode(f.payload) != 4001 {
		t.Fatalf("close %+v", f)
	}
	if closeCode(nil) != 1005 {
		t.Fatal("close without a code")
	}
	if _, _, err := parseServerFrame(appendClientFrame(nil, ws.OpText, []byte("x"))); err == nil {
		t.Fatal("masked server frame accepted")
	}
	if _, _, err := parseServerFrame([]byte{0x81, 127, 0, 0, 0, 0, 0x10, 0, 0, 0}); err != errFrameTooBig {
		t.Fatalf("huge frame: %v", err)
	}
}

func TestHandshakeWithServer(t *testing.T) {
	hs := newHandshake()
	req := hs.request("127.0.0.1:8080", "/")
	n, resp, err := wsframe.Handshake(req, nil)
	if err != nil || n != len(req) {
		t.Fatalf("server refused the request: %v", err)
	}
	if !strings.Contains(string(resp), "Sec-WebSocket-Protocol: push-notification") {
		t.Fatalf("subprotocol not selected:\n%s", resp)
	}
	for i := range len(resp) {
		if used, err := hs.response(resp[:i]); used != 0 || err != nil {
			t.Fatalf("prefix %d: %d %v", i, used, err)
		}
	}
	if used, err := hs.response(append(resp, 0x81, 0)); err != nil || used != len(resp) {
		t.Fatalf("response: used %d err %v", used, err)
	}
	other := newHandshake()
	if _, err := other.response(resp); err == nil {
		t.Fatal("accepted a response to another key")
	}
	if _, err := hs.response([]byte("HTTP/1.1 404 Not Found\r\n\r\n")); err == nil {
		t.Fatal("accepted a 404")
	}
}

func TestMessagesDecodedByServer(t *testing.T) {
	u := newUUID4()
	if u.Version() != 4 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("not a UUID4: %v", u)
	}
	chans := []channel{{id: newUUID4(), path: "/update/a"}, {id: newUUID4()}, {id: newUUID4(), path: "/update/b"}}

	m, err := protocol.Decode(appendHello(nil, nil, nil))
	if err != nil || m.Type != protocol.TypeHello || m.UAID != "" || len(m.ChannelIDs) != 0 {
		t.Fatalf("fresh hello: %+v %v", m, err)
	}
	m, err = protocol.Decode(appendHello(nil, &u, chans))
	if err != nil || m.Type != protocol.TypeHello || m.UAID != u.String() {
		t.Fatalf("reconnect hello: %+v %v", m, err)
	}
	if len(m.ChannelIDs) != 2 || m.ChannelIDs[0] != chans[0].id.String() || m.ChannelIDs[1] != chans[2].id.String() {
		t.Fatalf("hello names %v, want the registered channels only", m.ChannelIDs)
	}
	m, err = protocol.Decode(appendRegister(nil, chans[1].id))
	if err != nil || m.Type != protocol.TypeRegister || m.ChannelID != chans[1].id.String() {
		t.Fatalf("register: %+v %v", m, err)
	}

	note := protocol.AppendNotification(nil, []protocol.Update{
		{ChannelID: chans[0].id, Version: 7},
		{ChannelID: chans[2].id, Version: 1 << 40, Data: []byte(`"version":9 \ "channelID":"x"`)},
	})
	ups, ok := scanNotification(note, nil)
	if !ok || len(ups) != 2 || string(ups[0].chid) != chans[0].id.String() || ups[0].version != 7 || ups[1].version != 1<<40 {
		t.Fatalf("scan %s: %v %+v", note, ok, ups)
	}
	m, err = protocol.Decode(appendAck(nil, ups))
	if err != nil || m.Type != protocol.TypeAck || len(m.Updates) != 2 {
		t.Fatalf("ack: %+v %v", m, err)
	}
	for i, up := range m.Updates {
		if !up.OK || up.ChannelID != string(ups[i].chid) || up.Version != ups[i].version {
			t.Fatalf("ack update %d: %+v", i, up)
		}
	}
	if _, ok := scanNotification([]byte(`{"updates":[],"messageType":"notification"}`), nil); ok {
		t.Fatal("scanned a notification in another field order (must fall back to JSON)")
	}
}

func TestSplitEndpoint(t *testing.T) {
	prefix, path, ok := splitEndpoint("http://localhost:8081/update/AXkz")
	if !ok || prefix != "http://localhost:8081" || path != "/update/AXkz" {
		t.Fatalf("%q %q %v", prefix, path, ok)
	}
	for _, ep := range []string{"", "localhost:8081/update/x", "http://localhost:8081"} {
		if _, _, ok := splitEndpoint(ep); ok {
			t.Fatalf("%q split", ep)
		}
	}
}
