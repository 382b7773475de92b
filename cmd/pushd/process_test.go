package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/internal/proctest"
)

// pushdBin is the pushd binary built once for the process tests.
var pushdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pushd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if pushdBin, err = proctest.Build(dir, ".", "pushd", true); err != nil {
		fmt.Fprintln(os.Stderr, "building pushd:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a pushd process started by a test.
type proc = proctest.Proc

// startPushd runs pushd on ephemeral loopback ports with the given data
// directory; shell, if not empty, is a shell prefix such as "ulimit -n 300 &&".
func startPushd(t *testing.T, dataDir, shell string, args ...string) *proc {
	t.Helper()
	all := append([]string{"-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", dataDir}, args...)
	return proctest.Start(t, pushdBin, shell, all...)
}

// device is a gorilla/websocket client of a pushd process.
type device struct {
	t    *testing.T
	conn *websocket.Conn
}

func connect(t *testing.T, wsAddr string) *device {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, _, err := d.Dial("ws://"+wsAddr+"/", nil)
	if err != nil {
		t.Fatalf("dial %s: %v", wsAddr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &device{t: t, conn: conn}
}

func (d *device) roundTrip(msg any) map[string]any {
	d.t.Helper()
	if err := d.conn.WriteJSON(msg); err != nil {
		d.t.Fatalf("send: %v", err)
	}
	return d.read()
}

func (d *device) read() map[string]any {
	d.t.Helper()
	_ = d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := d.conn.ReadJSON(&m); err != nil {
		d.t.Fatalf("read: %v", err)
	}
	return m
}

// putVersion PUTs version=v to the endpoint path on httpAddr.
func putVersion(ctx context.Context, httpAddr, path string, v uint64) (int, error) {
	body := strings.NewReader(url.Values{"version": {fmt.Sprint(v)}}.Encode())
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+httpAddr+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

func endpointPath(t *testing.T, endpoint string) string {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatalf("endpoint %q: %v", endpoint, err)
	}
	return u.Path
}

func decodeUpdates(t *testing.T, m map[string]any) map[string]uint64 {
	t.Helper()
	if m["messageType"] != "notification" {
		b, _ := json.Marshal(m)
		t.Fatalf("want notification, got %s", b)
	}
	out := map[string]uint64{}
	for _, u := range m["updates"].([]any) {
		up := u.(map[string]any)
		out[up["channelID"].(string)] = uint64(up["version"].(float64))
	}
	return out
}

// registeredDevice connects a device that says hello with a fresh UAID and
// registers n channels; it returns the UAID, the channel IDs and the
// endpoints' paths.
func registeredDevice(t *testing.T, wsAddr string, n int) (dev *device, uaid string, chids, paths []string) {
	t.Helper()
	dev = connect(t, wsAddr)
	hello := dev.roundTrip(map[string]any{"messageType": "hello", "uaid": "", "channelIDs": []string{}})
	uaid, _ = hello["uaid"].(string)
	if uaid == "" {
		t.Fatalf("hello: %v", hello)
	}
	chids, paths = make([]string, n), make([]string, n)
	for i := range chids {
		chids[i] = uuid.NewString()
		reg := dev.roundTrip(map[string]any{"messageType": "register", "channelID": chids[i]})
		paths[i] = endpointPath(t, reg["pushEndpoint"].(string))
	}
	return dev, uaid, chids, paths
}
