package engine_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/engine"
)

// PROTOCOL.md 2 (handshake, timeouts), 2.3 (server pings) and 2.6
// (connection rules).

func TestOnlyPingMayComeBeforeHello(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.send(`{}`)
	if m := c.recv(); len(m) != 0 {
		t.Fatalf("ping before hello answered %v, want {}", m)
	}
	c.hello("")
	c.register(newUUID())
}

func TestMessageBeforeHelloIs401AndClose1008(t *testing.T) {
	n := testNode(t, nil)
	for _, tc := range []struct{ msg, messageType string }{
		{`{"messageType":"register","channelID":"` + newUUID() + `"}`, "register"},
		{`{"messageType":"unregister","channelID":"` + newUUID() + `"}`, "unregister"},
		{`{"messageType":"ack","updates":[]}`, "ack"},
		{`{"messageType":"bogus"}`, "bogus"},
	} {
		t.Run(tc.messageType, func(t *testing.T) {
			c := dial(t, n)
			c.send(tc.msg)
			m := c.expect(tc.messageType, 401)
			if m["status"] != float64(401) {
				t.Fatalf("%s before hello answered %v, want status 401", tc.msg, m)
			}
			c.expectClose(1008)
		})
	}
}

func TestObjectWithoutMessageTypeBeforeHelloIs401AndClose1008(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.send(`{"uaid":""}`)
	m := c.recv()
	if m["status"] != float64(401) {
		t.Fatalf("%v, want status 401", m)
	}
	c.expectClose(1008)
}

func TestSecondHelloWithSameUAIDIsAnsweredAgain(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	uaid := c.hello("")
	for _, form := range []string{uaid, strings.ToUpper(strings.ReplaceAll(uaid, "-", ""))} {
		if got := c.hello(form); got != uaid {
			t.Fatalf("second hello with %s answered %s, want %s", form, got, uaid)
		}
	}
	c.register(newUUID())
}

func TestSecondHelloWithDifferentUAIDIs401AndClose(t *testing.T) {
	n := testNode(t, nil)
	for name, second := range map[string]string{
		"other uaid": newUUID(),
		"empty uaid": "",
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, n)
			c.hello("")
			c.send(map[string]any{"messageType": "hello", "uaid": second, "channelIDs": []string{}})
			c.expect("hello", 401)
			c.expectClose(1008)
		})
	}
}

func TestUnknownMessageTypeAfterHelloIs401AndClose(t *testing.T) {
	n := testNode(t, nil)
	for _, msg := range []string{
		`{"messageType":"bogus"}`,
		`{"messageType":"notification","updates":[]}`,
		`{"messageType":"HELLO"}`,
	} {
		t.Run(msg, func(t *testing.T) {
			c := dial(t, n)
			c.hello("")
			c.send(msg)
			m := c.recv()
			if m["status"] != float64(401) {
				t.Fatalf("%s answered %v, want status 401", msg, m)
			}
			c.expectClose(1008)
		})
	}
}

func TestNewestConnectionWinsWith4001(t *testing.T) {
	n := testNode(t, nil)
	c1 := dial(t, n)
	uaid := c1.hello("")
	chid := newUUID()
	c1.register(chid)

	c2 := dial(t, n)
	if got := c2.hello(uaid, chid); got != uaid {
		t.Fatalf("second connection's hello answered %s, want %s", got, uaid)
	}
	c1.expectClose(4001)

	// The newer connection is the one that gets notifications.
	ep := localEndpoint(n, c2.register(chid))
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT: %d, want 200", st)
	}
	if got := c2.expectNotification(); got[chid] != 1 {
		t.Fatalf("notification %v, want %s:1", got, chid)
	}
}

func TestSupersededConnectionClosingLeavesNewestConnected(t *testing.T) {
	n := testNode(t, nil)
	c1 := dial(t, n)
	uaid := c1.hello("")
	chid := newUUID()
	ep := localEndpoint(n, c1.register(chid))
	c2 := dial(t, n)
	c2.hello(uaid, chid)
	c1.expectClose(4001)
	c1.closeNow()

	// The old connection's disconnect must not take the UAID away from
	// the new one.
	waitConnected(t, n, 1)
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT after the superseded connection closed: %d, want 200", st)
	}
	if got := c2.expectNotification(); got[chid] != 1 {
		t.Fatalf("notification %v, want %s:1", got, chid)
	}
}

func TestSubprotocolSelectedWhenOffered(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n) // offers push-notification
	if p := c.conn.Subprotocol(); p != "push-notification" {
		t.Fatalf("selected sub-protocol %q, want push-notification", p)
	}
	c.hello("")
}

func TestHandshakeWithoutSubprotocolIsAccepted(t *testing.T) {
	n := testNode(t, nil)
	c, resp := dialPlain(t, n)
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "" {
		t.Fatalf("server selected sub-protocol %q that was not offered", p)
	}
	c.hello("")
}

func TestHandshakeOnOtherPathIsRefused(t *testing.T) {
	n := testNode(t, nil)
	for _, path := range []string{"/foo", "/update/x", "//"} {
		t.Run(path, func(t *testing.T) {
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			conn, resp, err := d.Dial("ws://"+n.WSAddr().String()+path, nil)
			if err == nil {
				conn.Close()
				t.Fatalf("handshake on %s was accepted", path)
			}
			if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
				t.Fatalf("handshake on %s: %v, want an HTTP refusal", path, err)
			}
		})
	}
}

func TestHandshakeTimeoutClosesConnection(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.HandshakeTimeout = 100 * time.Millisecond })
	for name, partial := range map[string]string{
		"nothing sent":     "",
		"partial request":  "GET / HTTP/1.1\r\nHost: x\r\n",
		"headers unfinish": handshakeRequest(n.WSAddr().String(), "/")[:60],
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := dialTCP(t, n)
			if partial != "" {
				r.write([]byte(partial))
			}
			r.expectEOF()
		})
	}
}

func TestHelloTimeoutClosesConnection(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.HelloTimeout = 100 * time.Millisecond })
	r := dialRaw(t, n)
	// The server may send a close frame before it ends the connection.
	for {
		f, err := r.readFrame()
		if err != nil {
			r.expectEOF()
			return
		}
		if f.op == opClose {
			r.expectEOF()
			return
		}
		if f.op != opPing {
			t.Fatalf("unexpected frame %#x %q while waiting for the hello timeout", f.op, f.payload)
		}
	}
}

func TestPingsBeforeHelloDoNotExtendHelloTimeout(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.HelloTimeout = 100 * time.Millisecond })
	r := dialRaw(t, n)
	// Keep pinging (WebSocket pings) until the server gives up on the
	// missing hello; the bound only catches a server that never does.
	giveUp := time.Now().Add(20 * time.Second)
	for time.Now().Before(giveUp) {
		r.send(wsFrame{fin: true, op: opPing, masked: true, payload: []byte("p")})
		f, err := r.readFrame()
		if isTimeout(err) {
			t.Fatalf("no pong and no close: %v", err)
		}
		if err != nil {
			return // closed
		}
		switch f.op {
		case opPong:
			continue
		case opClose:
			r.expectEOF()
			return
		default:
			t.Fatalf("unexpected frame %#x %q", f.op, f.payload)
		}
	}
	t.Fatalf("pings before hello kept the connection open past the hello timeout")
}

func TestServerPingsAndClosesPeerThatDoesNotPong(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) {
		cfg.PingInterval = 100 * time.Millisecond
		cfg.PongTimeout = 100 * time.Millisecond
	})
	r := dialRaw(t, n)
	r.hello("")
	r.expectFrame(opPing)
	// No pong: the connection is given up as dead.
	for {
		f, err := r.readFrame()
		if isTimeout(err) {
			t.Fatalf("connection still open long after the pong timeout")
		}
		if err != nil {
			return // closed
		}
		switch f.op {
		case opClose:
			r.expectEOF()
			return
		case opPing:
			continue
		default:
			t.Fatalf("unexpected frame %#x %q", f.op, f.payload)
		}
	}
}

func TestServerPingAnsweredWithPongKeepsConnection(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) {
		cfg.PingInterval = 100 * time.Millisecond
		cfg.PongTimeout = 100 * time.Millisecond
	})
	r := dialRaw(t, n)
	r.hello("")
	// Each pong pushes the next deadline out to a ping, never a close.
	for i := 0; i < 3; i++ {
		p := r.expectFrame(opPing)
		r.send(wsFrame{fin: true, op: opPong, masked: true, payload: p.payload})
	}
	r.send(text(`{"messageType":"register","channelID":"` + newUUID() + `"}`))
	if m := r.expectMessage(); m["status"] != float64(200) {
		t.Fatalf("register after pongs answered %v", m)
	}
}

func TestShutdownCloses1001(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- n.Shutdown(ctx)
	}()
	c.expectClose(1001)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

func TestSupersededCloseIsCounted(t *testing.T) {
	n := testNode(t, nil)
	c1 := dial(t, n)
	uaid := c1.hello("")
	dial(t, n).hello(uaid)
	c1.expectClose(4001)
	if v, _ := metric(t, n, `pushd_closes_total{code="4001"}`); v != 1 {
		t.Fatalf(`pushd_closes_total{code="4001"} = %v, want 1`, v)
	}
	if v, _ := metric(t, n, `pushd_superseded_total`); v != 1 {
		t.Fatalf(`pushd_superseded_total = %v, want 1`, v)
	}
}

func TestSubprotocolSelectedAmongSeveralOffered(t *testing.T) {
	n := testNode(t, nil)
	r := dialTCP(t, n)
	r.write([]byte(handshakeRequest(n.WSAddr().String(), "/", "chat", "push-notification")))
	resp := r.expectUpgrade()
	if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "push-notification" {
		t.Fatalf("selected sub-protocol %q, want push-notification", p)
	}
	r.hello("")
}

func TestShutdownRightAfterStartReturns(t *testing.T) {
	// A node stopped at once, before its listeners have settled, must stop
	// all the same. The race is narrow, so try it many times.
	for i := 0; i < 50; i++ {
		n, err := engine.New(engine.Config{
			WSAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", DataDir: t.TempDir(),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Workers: 2,
		})
		if err != nil {
			t.Fatalf("new node: %v", err)
		}
		if err := n.Start(); err != nil {
			t.Fatalf("start node: %v", err)
		}
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			done <- n.Shutdown(ctx)
		}()
		// The bound is three times Shutdown's own: it only catches a hang.
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("shutdown %d: %v", i, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("shutdown %d right after start never returned", i)
		}
	}
}
