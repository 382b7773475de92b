package engine_test

import (
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/engine"
)

// At the set-up bound the node stops accepting: a new connection waits in
// the listen queue until a hello in set-up is answered. Only hellos count:
// sockets that say nothing do not hold the gate.
func TestSetupLimitPausesAccepting(t *testing.T) {
	n, disk, _ := stalledNode(t, func(c *engine.Config) { c.SetupLimit = 2 })
	// Sockets that say nothing, and an upgraded one without a hello.
	for range 3 {
		raw, err := net.Dial("tcp", n.WSAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { raw.Close() })
	}
	quiet := dial(t, n)
	_ = quiet

	// Two hellos wait behind the stalled worker: set-up is full.
	b, c := dial(t, n), dial(t, n)
	for _, d := range []*wsClient{b, c} {
		d.send(map[string]any{"messageType": "hello", "uaid": "", "channelIDs": []string{}})
	}
	eventually(t, 10*time.Second, func() bool {
		v, _ := metric(t, n, "pushd_connections_in_setup")
		return v == 2
	}, "both hellos to be in set-up")
	next := dialAsync(n)
	eventually(t, 10*time.Second, func() bool {
		v, _ := metric(t, n, "pushd_accept_pauses_total")
		return v >= 1
	}, "the accept loops to pause")
	select {
	case r := <-next:
		t.Fatalf("a connection past the set-up bound was upgraded (err %v)", r.err)
	default:
	}

	// The store goes on: the hellos are answered and the waiting
	// connection is accepted.
	disk.release()
	b.expect("hello", 200)
	c.expect("hello", 200)
	d := awaitDial(t, next)
	d.hello("")
	if v, _ := metric(t, n, "pushd_connections_in_setup"); v != 0 {
		t.Fatalf("pushd_connections_in_setup = %v after every hello, want 0", v)
	}
	b.register(newUUID())
}

type dialResult struct {
	conn *websocket.Conn
	err  error
}

// dialAsync dials n off the test goroutine.
func dialAsync(n *engine.Node) <-chan dialResult {
	out := make(chan dialResult, 1)
	go func() {
		d := websocket.Dialer{Subprotocols: []string{"push-notification"}, HandshakeTimeout: 30 * time.Second}
		conn, _, err := d.Dial("ws://"+n.WSAddr().String()+"/", nil)
		out <- dialResult{conn, err}
	}()
	return out
}

// awaitDial waits for a dialAsync; the bound only catches a hung server.
func awaitDial(t *testing.T, r <-chan dialResult) *wsClient {
	t.Helper()
	select {
	case res := <-r:
		if res.err != nil {
			t.Fatalf("dial: %v", res.err)
		}
		t.Cleanup(func() { res.conn.Close() })
		return &wsClient{t: t, conn: res.conn}
	case <-time.After(30 * time.Second):
		t.Fatal("dial not answered")
		return nil
	}
}
