package relay_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/internal/relay"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func startNode(t *testing.T, cfg engine.Config) *engine.Node {
	t.Helper()
	if cfg.WSAddr == "" {
		cfg.WSAddr = "127.0.0.1:0"
	}
	cfg.HTTPAddr, cfg.Logger = "127.0.0.1:0", quiet
	n, err := engine.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	return n
}

// startRelay starts a relay node on dataDir fed by upstream; stop ends it.
func startRelay(t *testing.T, upstream *engine.Node, dataDir, wsAddr string) (n *engine.Node, stop func()) {
	t.Helper()
	up := relay.New("ws://"+upstream.WSAddr().String()+"/", quiet)
	n = startNode(t, engine.Config{DataDir: dataDir, WSAddr: wsAddr, Upstream: up})
	up.SetNode(n)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); up.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		<-done
		_ = n.Shutdown(context.Background())
	}
	t.Cleanup(stop)
	return n, stop
}

type device struct {
	t    *testing.T
	conn *websocket.Conn
}

func connect(t *testing.T, n *engine.Node) *device {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+n.WSAddr().String()+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &device{t, conn}
}

func (d *device) roundTrip(v map[string]any) map[string]any {
	d.t.Helper()
	if err := d.conn.WriteJSON(v); err != nil {
		d.t.Fatal(err)
	}
	return d.read()
}

func (d *device) read() map[string]any {
	d.t.Helper()
	_ = d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := d.conn.ReadJSON(&m); err != nil {
		d.t.Fatalf("device read: %v", err)
	}
	return m
}

// expectVersion reads until a notification of chid with version v,
// acking every notification as a device does.
func (d *device) expectVersion(chid string, v uint64) {
	d.t.Helper()
	for {
		m := d.read()
		if m["messageType"] != "notification" {
			continue
		}
		_ = d.conn.WriteJSON(map[string]any{"messageType": "ack", "updates": m["updates"]})
		for _, u := range m["updates"].([]any) {
			up := u.(map[string]any)
			if up["channelID"] == chid && uint64(up["version"].(float64)) == v {
				return
			}
		}
	}
}

func put(t *testing.T, n *engine.Node, endpoint string, v uint64) int {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+n.HTTPAddr().String()+u.Path, strings.NewReader(fmt.Sprintf("version=%d", v)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// registerThroughRelay says hello and registers a channel on the relay,
// retrying while the relay's upstream connection comes up.
func registerThroughRelay(t *testing.T, d *device, uaid, chid string) string {
	t.Helper()
	if m := d.roundTrip(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": []string{}}); m["status"] != float64(200) {
		t.Fatalf("hello: %v", m)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := d.roundTrip(map[string]any{"messageType": "register", "channelID": chid})
		if m["status"] == float64(200) {
			return m["pushEndpoint"].(string)
		}
		if time.Now().After(deadline) {
			t.Fatalf("register through the relay: %v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestAppServerToUpstreamToRelayToDevice(t *testing.T) {
	upstream := startNode(t, engine.Config{DataDir: t.TempDir(), EndpointURL: "https://push.example.com"})
	relayNode, _ := startRelay(t, upstream, t.TempDir(), "127.0.0.1:0")
	d := connect(t, relayNode)
	uaid, chid := uuid.NewString(), uuid.NewString()
	ep := registerThroughRelay(t, d, uaid, chid)
	if !strings.HasPrefix(ep, "https://push.example.com/update/") {
		t.Fatalf("the relay handed out %q, want the upstream's endpoint", ep)
	}
	// The app server PUTs to the public cluster; the relay's connection
	// holds the UAID there, so the upstream delivers at once.
	if st := put(t, upstream, ep, 5); st != 200 {
		t.Fatalf("PUT upstream: %d, want 200", st)
	}
	d.expectVersion(chid, 5)
}

func TestRelayDeliversAfterRestartWhatItAckedUpstream(t *testing.T) {
	upstream := startNode(t, engine.Config{DataDir: t.TempDir()})
	relayData := t.TempDir()
	relayNode, stop := startRelay(t, upstream, relayData, "127.0.0.1:0")
	d := connect(t, relayNode)
	uaid, chid := uuid.NewString(), uuid.NewString()
	ep := registerThroughRelay(t, d, uaid, chid)
	d.conn.Close() // the device goes offline

	if st := put(t, upstream, ep, 7); st != 200 {
		t.Fatalf("PUT upstream: %d, want 200 (the relay is connected)", st)
	}
	// Once the relay stored version 7 it acks upstream: the UAID is no
	// longer in flight there, so the next PUT is delivered, not held.
	deadline := time.Now().Add(10 * time.Second)
	last := uint64(8)
	for ; put(t, upstream, ep, last) != 200; last++ {
		if time.Now().After(deadline) {
			t.Fatal("the relay never acked upstream")
		}
	}
	// Restart the relay between its upstream ack and the device coming
	// back: the versions are its to deliver.
	stop()
	relay2, _ := startRelay(t, upstream, relayData, "127.0.0.1:0")
	d2 := connect(t, relay2)
	if m := d2.roundTrip(map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": []string{chid}}); m["uaid"] != uaid {
		t.Fatalf("hello at the restarted relay: %v", m)
	}
	d2.expectVersion(chid, last)
}
