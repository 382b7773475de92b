package engine_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/pushd/pushd/engine"
)

// PROTOCOL.md 2.2: register and unregister.

func TestRegisterAnswersEndpointUnderPublicBase(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.EndpointURL = "https://push.example.com/" })
	c := dial(t, n)
	c.hello("")
	chid := newUUID()
	c.send(map[string]any{"messageType": "register", "channelID": chid})
	m := c.expect("register", 200)
	if m["channelID"] != chid {
		t.Fatalf("register reply %v, want channelID %s", m, chid)
	}
	ep, _ := m["pushEndpoint"].(string)
	tok, ok := strings.CutPrefix(ep, "https://push.example.com/update/")
	if !ok || tok == "" || strings.Contains(tok, "/") {
		t.Fatalf("pushEndpoint %q, want https://push.example.com/update/<token>", ep)
	}
}

func TestRegisterNormalisesChannelID(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	chid := newUUID()
	c.send(map[string]any{"messageType": "register", "channelID": strings.ToUpper(strings.ReplaceAll(chid, "-", ""))})
	m := c.expect("register", 200)
	if m["channelID"] != chid {
		t.Fatalf("register reply %v, want channelID %s", m, chid)
	}
	ep := localEndpoint(n, m["pushEndpoint"].(string))
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 1 {
		t.Fatalf("notification %v, want %s:1", got, chid)
	}
}

func TestRegisterIsIdempotent(t *testing.T) {
	// With a limit of one channel, a second registration of the same
	// channel must not count as a new one.
	n := testNode(t, func(cfg *engine.Config) { cfg.MaxChannels = 1 })
	c := dial(t, n)
	c.hello("")
	chid := newUUID()
	first := c.register(chid)
	second := c.register(chid)
	if first != second {
		t.Fatalf("registering %s twice gave endpoints\n%s\n%s", chid, first, second)
	}

	if st := putVersion(t, localEndpoint(n, second), 4); st != 200 {
		t.Fatalf("PUT to the re-registered endpoint: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 4 {
		t.Fatalf("notification %v, want %s:4", got, chid)
	}
}

func TestRegisterAgainKeepsHighestVersion(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	chid := newUUID()
	ep := localEndpoint(n, c.register(chid))
	if st := putVersion(t, ep, 10); st != 200 {
		t.Fatalf("PUT 10: %d, want 200", st)
	}
	c.expectNotification()
	c.ack(chid, 10)

	// Registering the existing channel again must not reset it: version 5
	// is still below its highest accepted version, 10.
	c.register(chid)
	if st := putVersion(t, ep, 5); st != 200 {
		t.Fatalf("stale PUT 5: %d, want 200", st)
	}
	if st := putVersion(t, ep, 11); st != 200 {
		t.Fatalf("PUT 11: %d, want 200", st)
	}
	if got := c.expectNotification(); len(got) != 1 || got[chid] != 11 {
		t.Fatalf("notification %v, want only %s:11", got, chid)
	}
}

func TestSameChannelIDUnderTwoUAIDsIsTwoChannels(t *testing.T) {
	n := testNode(t, nil)
	chid := newUUID()
	c1 := dial(t, n)
	c1.hello("")
	ep1 := localEndpoint(n, c1.register(chid))
	c2 := dial(t, n)
	c2.hello("")
	ep2 := localEndpoint(n, c2.register(chid))
	if ep1 == ep2 {
		t.Fatalf("two UAIDs got the same endpoint %s for channel %s", ep1, chid)
	}

	if st := putVersion(t, ep1, 5); st != 200 {
		t.Fatalf("PUT 5 to the first UAID: %d, want 200", st)
	}
	if got := c1.expectNotification(); got[chid] != 5 {
		t.Fatalf("first client got %v, want %s:5", got, chid)
	}
	// Version 3 is below the first channel's 5: were they one channel, it
	// would be stale and not delivered.
	if st := putVersion(t, ep2, 3); st != 200 {
		t.Fatalf("PUT 3 to the second UAID: %d, want 200", st)
	}
	if got := c2.expectNotification(); got[chid] != 3 {
		t.Fatalf("second client got %v, want %s:3", got, chid)
	}
}

func TestRegisterInvalidChannelIDIs401AndConnectionStaysOpen(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	valid := newUUID()
	for _, msg := range []string{
		`{"messageType":"register"}`,
		`{"messageType":"register","channelID":""}`,
		`{"messageType":"register","channelID":"not-a-uuid"}`,
		`{"messageType":"register","channelID":"{` + valid + `}"}`,
		`{"messageType":"register","channelID":42}`,
	} {
		c.send(msg)
		m := c.expect("register", 401)
		if m["status"] != float64(401) {
			t.Fatalf("%s answered %v, want status 401", msg, m)
		}
		if e, _ := m["error"].(string); e == "" {
			t.Fatalf("%s answered %v, want an error text", msg, m)
		}
	}
	// Still open, still serving.
	c.register(valid)
}

func TestRegisterOverChannelLimitIs413(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.MaxChannels = 3 })
	c := dial(t, n)
	c.hello("")
	var chids []string
	for i := 0; i < 3; i++ {
		chids = append(chids, newUUID())
		c.register(chids[i])
	}
	c.send(map[string]any{"messageType": "register", "channelID": newUUID()})
	m := c.expect("register", 413)
	if m["status"] != float64(413) {
		t.Fatalf("fourth channel answered %v, want status 413", m)
	}

	// At the limit, an existing channel still registers, and unregistering
	// one makes room.
	c.register(chids[0])
	c.send(map[string]any{"messageType": "unregister", "channelID": chids[1]})
	c.expect("unregister", 200)
	c.register(newUUID())
}

func TestUnregisterAlwaysAnswers200(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	chid := newUUID()
	c.register(chid)
	for _, id := range []string{chid, chid, newUUID(), "not-a-uuid", ""} {
		c.send(map[string]any{"messageType": "unregister", "channelID": id})
		m := c.expect("unregister", 200)
		if m["status"] != float64(200) || m["channelID"] != id {
			t.Fatalf("unregister %q answered %v, want status 200 echoing the channelID", id, m)
		}
	}
	c.register(newUUID())
}

func TestUnregisteredEndpointIs404(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	chid := newUUID()
	ep := localEndpoint(n, c.register(chid))
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT before unregister: %d, want 200", st)
	}
	c.expectNotification()
	c.ack(chid, 1)

	c.send(map[string]any{"messageType": "unregister", "channelID": chid})
	c.expect("unregister", 200)
	st, body := put(t, ep, "version=2")
	if st != http.StatusNotFound {
		t.Fatalf("PUT after unregister: %d %v, want 404", st, body)
	}
	checkErrorBody(t, st, body)
}

func TestUnregisterDropsPendingVersion(t *testing.T) {
	n := testNode(t, nil)
	c1 := dial(t, n)
	uaid := c1.hello("")
	a, b := newUUID(), newUUID()
	epA := localEndpoint(n, c1.register(a))
	epB := localEndpoint(n, c1.register(b))

	// a:5 is delivered and never acknowledged, so it stays pending...
	if st := putVersion(t, epA, 5); st != 200 {
		t.Fatalf("PUT a:5: %d, want 200", st)
	}
	if got := c1.expectNotification(); got[a] != 5 {
		t.Fatalf("notification %v, want %s:5", got, a)
	}
	// ...until a is unregistered.
	c1.send(map[string]any{"messageType": "unregister", "channelID": a})
	c1.expect("unregister", 200)
	c1.closeNow()
	waitConnected(t, n, 0)

	c2 := dial(t, n)
	c2.hello(uaid, b)
	// The next UPDATE carries every pending version: b:1 alone.
	if st := putVersion(t, epB, 1); st != 200 {
		t.Fatalf("PUT b:1: %d, want 200", st)
	}
	got := c2.expectNotification()
	if len(got) != 1 || got[b] != 1 {
		t.Fatalf("notification %v, want only %s:1 (the unregistered %s:5 dropped)", got, b, a)
	}
}

func TestReRegisterAfterUnregisterStartsFresh(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	chid := newUUID()
	ep := localEndpoint(n, c.register(chid))
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT: %d, want 200", st)
	}
	c.expectNotification()
	c.ack(chid, 1)
	c.send(map[string]any{"messageType": "unregister", "channelID": chid})
	c.expect("unregister", 200)

	ep2 := localEndpoint(n, c.register(chid))
	if st := putVersion(t, ep2, 2); st != 200 {
		t.Fatalf("PUT to the re-registered channel: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 2 {
		t.Fatalf("notification %v, want %s:2", got, chid)
	}
}

func TestErrorRepliesEchoMessageType(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	c.send(`{"messageType":"register","channelID":"nope"}`)
	m := c.recv()
	want := map[string]any{"messageType": "register", "status": float64(401)}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("error reply %v, want %s=%v", m, k, v)
		}
	}
	if _, ok := m["error"].(string); !ok {
		t.Fatalf("error reply %v without an error text", m)
	}
}
