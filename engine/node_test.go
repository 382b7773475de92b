package engine_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/internal/nodetest"
)

// testNode starts a real node on loopback with ephemeral ports and a fresh
// data directory (nodetest.Start), with 8 workers, and stops it when the
// test ends.
func testNode(t *testing.T, mod func(*engine.Config)) *engine.Node {
	t.Helper()
	return nodetest.Start(t, func(c *engine.Config) {
		c.Workers = 8
		if mod != nil {
			mod(c)
		}
	})
}

// wsClient is a test device: a gorilla/websocket connection with helpers
// that make an exchange read like a transcript.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dial(t *testing.T, n *engine.Node) *wsClient {
	t.Helper()
	d := websocket.Dialer{Subprotocols: []string{"push-notification"}, HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws://"+n.WSAddr().String()+"/", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn}
}

// send writes msg (a string of JSON, or a value to marshal) as a text frame.
func (c *wsClient) send(msg any) {
	c.t.Helper()
	var b []byte
	switch m := msg.(type) {
	case string:
		b = []byte(m)
	default:
		var err error
		if b, err = json.Marshal(m); err != nil {
			c.t.Fatalf("marshal: %v", err)
		}
	}
	if err := c.conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("send %s: %v", b, err)
	}
}

// recv reads the next message as a JSON object.
func (c *wsClient) recv() map[string]any {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		c.t.Fatalf("recv: %s is not a JSON object: %v", b, err)
	}
	return m
}

// expect reads the next message and checks its messageType (and status,
// when the message has one).
func (c *wsClient) expect(messageType string, status int) map[string]any {
	c.t.Helper()
	m := c.recv()
	if got := m["messageType"]; got != messageType {
		c.t.Fatalf("got %v, want messageType %q", m, messageType)
	}
	if s, ok := m["status"]; ok && int(s.(float64)) != status {
		c.t.Fatalf("got %v, want status %d", m, status)
	}
	return m
}

// expectClose reads until the server closes and checks the close code.
func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := c.conn.ReadMessage()
		if err == nil {
			_ = b
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok {
			c.t.Fatalf("want close %d, got %v", code, err)
		}
		if ce.Code != code {
			c.t.Fatalf("want close %d, got %d (%s)", code, ce.Code, ce.Text)
		}
		return
	}
}

// hello says hello and returns the UAID the server answered with.
func (c *wsClient) hello(uaid string, channelIDs ...string) string {
	c.t.Helper()
	if channelIDs == nil {
		channelIDs = []string{}
	}
	c.send(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": channelIDs})
	m := c.expect("hello", 200)
	u, _ := m["uaid"].(string)
	if u == "" {
		c.t.Fatalf("hello reply without uaid: %v", m)
	}
	return u
}

// register registers chid and returns its endpoint.
func (c *wsClient) register(chid string) string {
	c.t.Helper()
	c.send(map[string]any{"messageType": "register", "channelID": chid})
	m := c.expect("register", 200)
	ep, _ := m["pushEndpoint"].(string)
	if ep == "" {
		c.t.Fatalf("register reply without pushEndpoint: %v", m)
	}
	return ep
}

// ack acknowledges one version of one channel.
func (c *wsClient) ack(chid string, version uint64) {
	c.t.Helper()
	c.send(map[string]any{"messageType": "ack", "updates": []map[string]any{{"channelID": chid, "version": version}}})
}

// expectNotification reads a notification and returns its updates as
// channelID -> version.
func (c *wsClient) expectNotification() map[string]uint64 {
	c.t.Helper()
	m := c.expect("notification", 0)
	out := map[string]uint64{}
	for _, u := range m["updates"].([]any) {
		up := u.(map[string]any)
		out[up["channelID"].(string)] = uint64(up["version"].(float64))
	}
	return out
}

// put PUTs body to endpoint and returns the status and decoded body.
func put(t *testing.T, endpoint, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, endpoint, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("PUT %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// putVersion PUTs version=v.
func putVersion(t *testing.T, endpoint string, v uint64) int {
	t.Helper()
	st, _ := put(t, endpoint, url.Values{"version": {fmt.Sprint(v)}}.Encode())
	return st
}

// localEndpoint rewrites an endpoint onto the node's real HTTP address
// (the configured public base is not what the test listens on).
func localEndpoint(n *engine.Node, ep string) string {
	i := strings.Index(ep, "/update/")
	return "http://" + n.HTTPAddr().String() + ep[i:]
}

// eventually polls f until it returns true or the deadline passes.
func eventually(t *testing.T, within time.Duration, f func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
