package main_test

import (
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestFloodPastFileLimit runs pushd with a hard open-files limit of 300,
// floods it with far more connections than that, and checks that the node
// stays up, refuses the excess, and every connection it held still works.
func TestFloodPastFileLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	p := startPushd(t, t.TempDir(), "ulimit -n 300 &&")
	const held = 100

	// Connections the node accepts and keeps.
	devs := make([]*device, held)
	for i := range devs {
		devs[i] = connect(t, p.WSAddr)
		if m := devs[i].roundTrip(map[string]any{"messageType": "hello", "uaid": ""}); m["status"] != float64(200) {
			t.Fatalf("hello %d: %v", i, m)
		}
	}

	// The flood: 600 more dials at once, each holding its socket.
	var (
		wg              sync.WaitGroup
		opened, refused atomic.Int64
		floodMu         sync.Mutex
		flood           []*websocket.Conn
	)
	for i := 0; i < 600; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			conn, _, err := d.Dial("ws://"+p.WSAddr+"/", nil)
			if err != nil {
				refused.Add(1)
				return
			}
			opened.Add(1)
			floodMu.Lock()
			flood = append(flood, conn)
			floodMu.Unlock()
		}()
	}
	wg.Wait()
	t.Logf("flood: %d upgraded, %d refused", opened.Load(), refused.Load())
	if refused.Load() == 0 {
		t.Fatalf("no connection was refused: the cap is not enforced")
	}
	if !p.Alive() {
		t.Fatalf("pushd died under the flood:\n%s", p.Output())
	}

	// Every held connection still answers.
	for i, d := range devs {
		if err := d.conn.WriteMessage(websocket.TextMessage, []byte("{}")); err != nil {
			t.Fatalf("held connection %d: send: %v", i, err)
		}
		if _, b, err := d.conn.ReadMessage(); err != nil || string(b) != "{}" {
			t.Fatalf("held connection %d: ping answer %q, %v", i, b, err)
		}
	}
	resp, err := http.Get("http://" + p.HTTPAddr + "/health")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("health after flood: %v %v", resp, err)
	}
	resp.Body.Close()

	// Once the flood goes away, the node accepts again.
	for _, c := range flood {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := websocket.Dialer{HandshakeTimeout: 2 * time.Second}
		conn, _, err := d.Dial("ws://"+p.WSAddr+"/", nil)
		if err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node does not accept after the flood: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
