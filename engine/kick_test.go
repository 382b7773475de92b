package engine_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/engine"
)

func loopbackOnly(cfg *engine.Config) {
	cfg.KickUDPNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	cfg.KickInterval = time.Hour
}

// offlineDevice says hello (with extra hello fields), registers a channel,
// disconnects, and returns its UAID and endpoint.
func offlineDevice(t *testing.T, n *engine.Node, hello map[string]any, register map[string]any) (string, string) {
	t.Helper()
	c := dial(t, n)
	hello["messageType"] = "hello"
	hello["uaid"] = ""
	hello["channelIDs"] = []string{}
	c.send(hello)
	uaid := c.expect("hello", 200)["uaid"].(string)
	register["messageType"] = "register"
	register["channelID"] = newUUID()
	c.send(register)
	ep := localEndpoint(n, c.expect("register", 200)["pushEndpoint"].(string))
	c.conn.Close()
	waitConnected(t, n, 0)
	return uaid, ep
}

func TestUDPKickWakesOfflineFirefoxOSClient(t *testing.T) {
	n := testNode(t, loopbackOnly)
	wake, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer wake.Close()
	port := wake.LocalAddr().(*net.UDPAddr).Port
	_, ep := offlineDevice(t, n, map[string]any{
		"wakeup_hostport": map[string]any{"ip": "127.0.0.1", "port": port},
		"mobilenetwork":   map[string]any{"mcc": "214", "mnc": "07"},
	}, map[string]any{})

	if st := putVersion(t, ep, 1); st != http.StatusAccepted {
		t.Fatalf("PUT: %d, want 202", st)
	}
	buf := make([]byte, 64)
	_ = wake.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := wake.ReadFrom(buf); err != nil {
		t.Fatalf("no wake-up datagram: %v", err)
	}
	// At most one kick per UAID per interval.
	if st := putVersion(t, ep, 2); st != http.StatusAccepted {
		t.Fatalf("second PUT: %d", st)
	}
	_ = wake.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, _, err := wake.ReadFrom(buf); err == nil {
		t.Fatal("a second kick within the interval")
	}
	if v, _ := metric(t, n, `pushd_kicks_total{outcome="sent"}`); v != 1 {
		t.Fatalf("kicks sent = %v, want 1", v)
	}
}

func TestWebhookKickPostsUAID(t *testing.T) {
	got := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ UAID string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- r.Method + " " + r.URL.Path + " " + body.UAID
	}))
	defer srv.Close()
	n := testNode(t, func(cfg *engine.Config) {
		cfg.KickWebhookPrefixes = []string{srv.URL + "/wake/"}
	})
	uaid, ep := offlineDevice(t, n, map[string]any{},
		map[string]any{"kick": map[string]any{"type": "webhook", "url": srv.URL + "/wake/device1"}})
	putVersion(t, ep, 1)
	select {
	case g := <-got:
		if g != "POST /wake/device1 "+uaid {
			t.Fatalf("webhook got %q", g)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("webhook not called")
	}
}

func TestKickTargetsOutsideTheAllowListsAreRefused(t *testing.T) {
	n := testNode(t, loopbackOnly)
	c := dial(t, n)
	c.hello("")
	// A webhook the operator did not allow: 401, connection stays open.
	c.send(map[string]any{"messageType": "register", "channelID": newUUID(),
		"kick": map[string]any{"type": "webhook", "url": "http://127.0.0.1:1/x"}})
	if m := c.expect("register", 401); !strings.Contains(m["error"].(string), "kick") {
		t.Fatalf("refusal %v", m)
	}
	c.register(newUUID())
	c.conn.Close()
	waitConnected(t, n, 0)

	// A wake-up address outside the allowed networks: the hello is served,
	// the address is not kept, nothing is sent.
	_, ep := offlineDevice(t, n, map[string]any{
		"wakeup_hostport": map[string]any{"ip": "192.0.2.1", "port": 9},
	}, map[string]any{})
	putVersion(t, ep, 1)
	time.Sleep(200 * time.Millisecond) // give a wrongly queued kick time to show
	if v, _ := metric(t, n, `pushd_kicks_total{outcome="sent"}`); v != 0 {
		t.Fatalf("kicks sent = %v, want 0", v)
	}
}

// recordingDriver is a proprietary driver plugged in through the public
// configuration.
type recordingDriver struct {
	mu    sync.Mutex
	calls []string
}

func (d *recordingDriver) Kick(_ context.Context, u uuid.UUID, t engine.KickTarget) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, t.Type+" "+u.String()+" "+t.URL)
	return nil
}

func TestProprietaryKickDriver(t *testing.T) {
	d := &recordingDriver{}
	n := testNode(t, func(cfg *engine.Config) {
		cfg.KickDrivers = map[string]engine.KickDriver{"vendorpush": d}
	})
	uaid, ep := offlineDevice(t, n, map[string]any{},
		map[string]any{"kick": map[string]any{"type": "vendorpush", "url": "token-123"}})
	putVersion(t, ep, 1)
	eventually(t, 10*time.Second, func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return len(d.calls) == 1 && d.calls[0] == "vendorpush "+uaid+" token-123"
	}, "the driver to be called")

	// A connected client is not kicked.
	c := dial(t, n)
	c.hello(uaid)
	for chid, v := range c.expectNotification() {
		c.ack(chid, v)
	}
	if st := putVersion(t, ep, 2); st != http.StatusOK {
		t.Fatalf("PUT to the connected client: %d", st)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.calls) != 1 {
		t.Fatalf("driver calls %v, want only the first", d.calls)
	}
}
