package engine_test

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/engine"
)

// TestClientThatDoesNotReadIsDisconnected: a relay connection that stops
// reading while updates keep coming is closed once its unsent output passes
// the bound, and the node keeps serving.
func TestClientThatDoesNotReadIsDisconnected(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) {
		cfg.MaxOutbound = 64 << 10
		cfg.SocketSendBuffer = 16 << 10        // so the kernel holds little of it either
		cfg.AckTimeout = 50 * time.Millisecond // unacked updates are sent again soon
		cfg.LockWait = 10 * time.Millisecond
	})
	// A tiny receive buffer, set before connecting so the window never
	// grows, so the kernel holds little of what the node sends.
	nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	d := websocket.Dialer{NetDialContext: nd.DialContext}
	conn, _, err := d.Dial("ws://"+n.WSAddr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := &wsClient{t: t, conn: conn}
	const uaids = 500
	us := make([]string, uaids)
	for i := range us {
		us[i] = newUUID()
	}
	c.helloMulti(us...)
	eps := make([]string, uaids)
	for i, u := range us {
		eps[i] = localEndpoint(n, c.registerFor(u, newUUID()))
	}
	// From here on the client reads nothing.
	data := strings.Repeat("x", 4096)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range eps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for v := uint64(1); ; v++ {
				select {
				case <-stop:
					return
				default:
				}
				put(t, eps[i], url.Values{"version": {fmt.Sprint(v)}, "data": {data}}.Encode())
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()
	eventually(t, time.Minute, func() bool {
		v, _ := metric(t, n, "pushd_slow_clients_total")
		return v >= 1
	}, "the node to drop the client that does not read")
	waitConnected(t, n, 0)

	// The node still serves others.
	other := dial(t, n)
	other.hello("")
}

// TestPingFloodFromClientThatDoesNotReadIsDisconnected: WebSocket pings
// are answered on the event loop; a client that floods them and reads no
// pong is dropped at the same outbound bound.
func TestPingFloodFromClientThatDoesNotReadIsDisconnected(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) {
		cfg.MaxOutbound = 32 << 10
		cfg.SocketSendBuffer = 8 << 10
	})
	nd := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	d := websocket.Dialer{NetDialContext: nd.DialContext}
	conn, _, err := d.Dial("ws://"+n.WSAddr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	payload := []byte(strings.Repeat("p", 125))
	eventually(t, time.Minute, func() bool {
		for i := 0; i < 1000; i++ {
			if conn.WriteControl(websocket.PingMessage, payload, time.Now().Add(time.Second)) != nil {
				break // the node closed the connection
			}
		}
		v, _ := metric(t, n, "pushd_slow_clients_total")
		return v >= 1
	}, "the node to drop the ping flooder")
	other := dial(t, n)
	other.hello("")
}
