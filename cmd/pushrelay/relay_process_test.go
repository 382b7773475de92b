package main_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/internal/proctest"
)

var pushdBin, relayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pushrelay-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if pushdBin, err = proctest.Build(dir, "../pushd", "pushd", false); err == nil {
		relayBin, err = proctest.Build(dir, ".", "pushrelay", false)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func startRelay(t *testing.T, upstream *proctest.Proc, dataDir string) *proctest.Proc {
	t.Helper()
	return proctest.Start(t, relayBin, "", "-upstream", "ws://"+upstream.WSAddr+"/",
		"-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", dataDir)
}

func dial(t *testing.T, addr string) *websocket.Conn {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func roundTrip(t *testing.T, conn *websocket.Conn, v any) map[string]any {
	t.Helper()
	if err := conn.WriteJSON(v); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func put(t *testing.T, httpAddr, endpoint string, v uint64) int {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+httpAddr+u.Path, strings.NewReader(fmt.Sprintf("version=%d", v)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRelayKilledAfterItsUpstreamAckStillDelivers: app server -> pushd ->
// pushrelay -> device, with the relay SIGKILLed after it acked a version
// upstream and before the device came back.
func TestRelayKilledAfterItsUpstreamAckStillDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	upstream := proctest.Start(t, pushdBin, "", "-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", t.TempDir())
	relayData := t.TempDir()
	relay := startRelay(t, upstream, relayData)

	dev := dial(t, relay.WSAddr)
	uaid, chid := uuid.NewString(), uuid.NewString()
	if m := roundTrip(t, dev, map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": []string{}}); m["uaid"] != uaid {
		t.Fatalf("hello: %v", m)
	}
	var ep string
	for deadline := time.Now().Add(15 * time.Second); ep == ""; {
		m := roundTrip(t, dev, map[string]any{"messageType": "register", "channelID": chid})
		ep, _ = m["pushEndpoint"].(string)
		if ep == "" && time.Now().After(deadline) {
			t.Fatalf("register through the relay: %v\n%s", m, relay.Output())
		}
	}
	dev.Close()

	// The relay holds the UAID upstream, so the PUT is delivered to it. Wait
	// until upstream has nothing in flight: the relay stored the version and
	// acked it, and upstream dropped it. From here on it is the relay's.
	last := uint64(1)
	for deadline := time.Now().Add(15 * time.Second); put(t, upstream.HTTPAddr, ep, last) != 200; last++ {
		if time.Now().After(deadline) {
			t.Fatalf("PUTs through the relay are not delivered\n%s", relay.Output())
		}
	}
	for deadline := time.Now().Add(15 * time.Second); inFlight(t, upstream.HTTPAddr) != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("the relay never acked upstream\n%s", relay.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}

	relay.Kill()
	relay2 := startRelay(t, upstream, relayData)
	dev2 := dial(t, relay2.WSAddr)
	if m := roundTrip(t, dev2, map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": []string{chid}}); m["uaid"] != uaid {
		t.Fatalf("hello at the restarted relay: %v", m)
	}
	for {
		_ = dev2.SetReadDeadline(time.Now().Add(15 * time.Second))
		var m map[string]any
		if err := dev2.ReadJSON(&m); err != nil {
			t.Fatalf("waiting for version %d: %v\n%s", last, err, relay2.Output())
		}
		if m["messageType"] != "notification" {
			continue
		}
		up := m["updates"].([]any)[0].(map[string]any)
		if up["channelID"] == chid && uint64(up["version"].(float64)) == last {
			return
		}
	}
}

// inFlight reads pushd_uaids_in_flight from a node's /metrics.
func inFlight(t *testing.T, httpAddr string) int {
	t.Helper()
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "pushd_uaids_in_flight "); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatalf("metric line %q", line)
			}
			return n
		}
	}
	t.Fatal("no pushd_uaids_in_flight on /metrics")
	return 0
}

// TestStuckUpstreamHoldsUpOnlyItsOwnRegisters: with one worker, a register
// waiting on an upstream that answers nothing (SIGSTOPped) waits in the
// waiting lane; the relay's other devices are served meanwhile.
func TestStuckUpstreamHoldsUpOnlyItsOwnRegisters(t *testing.T) {
	if testing.Short() {
		t.Skip("multi-process test")
	}
	upstream := proctest.Start(t, pushdBin, "", "-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", t.TempDir())
	relay := proctest.Start(t, relayBin, "", "-upstream", "ws://"+upstream.WSAddr+"/",
		"-ws-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0", "-data-dir", t.TempDir(), "-workers", "1")
	a := dial(t, relay.WSAddr)
	if m := roundTrip(t, a, map[string]any{"messageType": "hello", "uaid": "", "channelIDs": []string{}}); m["status"] != float64(200) {
		t.Fatalf("hello: %v", m)
	}
	// Once one register went through, the relay's upstream session is up.
	for deadline := time.Now().Add(15 * time.Second); ; {
		m := roundTrip(t, a, map[string]any{"messageType": "register", "channelID": uuid.NewString()})
		if m["status"] == float64(200) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("register through the relay: %v\n%s", m, relay.Output())
		}
		time.Sleep(100 * time.Millisecond)
	}
	upstream.Pause()
	t.Cleanup(upstream.Resume)
	if err := a.WriteJSON(map[string]any{"messageType": "register", "channelID": uuid.NewString()}); err != nil {
		t.Fatal(err)
	}

	b := dial(t, relay.WSAddr)
	if m := roundTrip(t, b, map[string]any{"messageType": "hello", "uaid": "", "channelIDs": []string{}}); m["status"] != float64(200) {
		t.Fatalf("hello of another device: %v", m)
	}
	if m := roundTrip(t, b, map[string]any{}); len(m) != 0 {
		t.Fatalf("ping answered %v, want {}", m)
	}
	// The register is still waiting on the upstream, not done and failed.
	_ = a.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	var m map[string]any
	if err := a.ReadJSON(&m); err == nil {
		t.Fatalf("register answered %v while the upstream is stopped", m)
	}
}
