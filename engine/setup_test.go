package engine_test

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/engine"
)

// At the set-up bound the node stops accepting: a new connection waits in
// the listen queue until a connection in set-up says hello or closes.
func TestSetupLimitPausesAccepting(t *testing.T) {
	n := testNode(t, func(c *engine.Config) { c.SetupLimit = 2 })
	a, b := dial(t, n), dial(t, n)

	// Both are in set-up (upgraded, no hello yet): a third waits.
	third := dialAsync(n)
	eventually(t, 10*time.Second, func() bool {
		v, _ := metric(t, n, "pushd_accept_pauses_total")
		return v >= 1
	}, "the accept loops to pause")
	if v, _ := metric(t, n, "pushd_connections_in_setup"); v != 2 {
		t.Fatalf("pushd_connections_in_setup = %v, want 2", v)
	}
	select {
	case r := <-third:
		t.Fatalf("a connection past the set-up bound was upgraded (err %v)", r.err)
	default:
	}

	// a's hello ends its set-up: the third is accepted and upgraded.
	a.hello("")
	c := awaitDial(t, third)
	// b closes before its hello: room for one more.
	fourth := dialAsync(n)
	b.closeNow()
	d := awaitDial(t, fourth)
	c.hello("")
	d.hello("")
	if v, _ := metric(t, n, "pushd_connections_in_setup"); v != 0 {
		t.Fatalf("pushd_connections_in_setup = %v after every hello, want 0", v)
	}
	// Answered connections kept working throughout.
	a.register(newUUID())
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
