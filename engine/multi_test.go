package engine_test

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
)

// PROTOCOL.md 2.1, 2.2, 2.4, 2.5: the seed's multi-UAID (relay) form.

// registerFor registers chid for uaid on a multi-UAID connection.
func (c *wsClient) registerFor(uaid, chid string) string {
	c.t.Helper()
	c.send(map[string]any{"messageType": "register", "uaid": uaid, "channelID": chid})
	m := c.expect("register", 200)
	ep, _ := m["pushEndpoint"].(string)
	if ep == "" {
		c.t.Fatalf("register reply without pushEndpoint: %v", m)
	}
	return ep
}

func TestMultiHelloEchoesAcceptedNormalisedUAIDs(t *testing.T) {
	n := testNode(t, nil)
	u1, u2, u3 := newUUID(), newUUID(), newUUID()
	c := dial(t, n)
	got := c.helloMulti(
		u1,
		strings.ToUpper(strings.ReplaceAll(u2, "-", "")),
		"not-a-uuid",
		"{"+u3+"}",
		strings.ToUpper(u3),
	)
	want := []string{u1, u2, u3}
	if len(got) != len(want) {
		t.Fatalf("multi hello answered %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("multi hello answered %v, want %v", got, want)
		}
	}
}

func TestMultiHelloWithNoValidUAIDEchoesEmptyList(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	if got := c.helloMulti("nope", ""); len(got) != 0 {
		t.Fatalf("multi hello answered %v, want []", got)
	}
}

func TestMultiPutDeliversUpdatePacket(t *testing.T) {
	n := testNode(t, nil)
	u1, u2 := newUUID(), newUUID()
	c := dial(t, n)
	c.helloMulti(u1, u2)
	chid := newUUID()
	ep := localEndpoint(n, c.registerFor(u2, chid))

	if st := putVersion(t, ep, 7); st != 200 {
		t.Fatalf("PUT to a multi-UAID connection: %d, want 200", st)
	}
	got := c.expectUpdate()
	if len(got) != 1 || len(got[u2]) != 1 || got[u2][chid] != 7 {
		t.Fatalf("update %v, want {%s:{%s:7}}", got, u2, chid)
	}
}

func TestMultiHelloSendsPendingUpdates(t *testing.T) {
	n := testNode(t, nil)
	u1, u2 := newUUID(), newUUID()
	a, b := newUUID(), newUUID()
	c1 := dial(t, n)
	c1.helloMulti(u1, u2)
	epA := localEndpoint(n, c1.registerFor(u1, a))
	epB := localEndpoint(n, c1.registerFor(u2, b))
	c1.closeNow()
	waitConnected(t, n, 0)
	if st := putVersion(t, epA, 3); st != 202 {
		t.Fatalf("PUT a:3 offline: %d, want 202", st)
	}
	if st := putVersion(t, epB, 4); st != 202 {
		t.Fatalf("PUT b:4 offline: %d, want 202", st)
	}

	c2 := dial(t, n)
	c2.helloMulti(u1, u2)
	got := c2.expectUpdate()
	if len(got) != 2 || got[u1][a] != 3 || got[u2][b] != 4 {
		t.Fatalf("pending update %v, want {%s:{%s:3}, %s:{%s:4}}", got, u1, a, u2, b)
	}
}

func TestMultiAckWithUAIDsEndsFlight(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.LockWait = 50 * time.Millisecond })
	u1 := newUUID()
	c := dial(t, n)
	c.helloMulti(u1)
	chid := newUUID()
	ep := localEndpoint(n, c.registerFor(u1, chid))

	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT 1: %d, want 200", st)
	}
	c.expectUpdate()
	expect503(t, ep, 2)

	// The ack names the UAID (in any accepted form).
	c.send(map[string]any{"messageType": "ack", "uaids": []string{strings.ToUpper(u1)}})
	c.registerFor(u1, chid) // barrier
	if st := putVersion(t, ep, 2); st != 200 {
		t.Fatalf("PUT 2 after the ack: %d, want 200", st)
	}
	if got := c.expectUpdate(); len(got[u1]) != 1 || got[u1][chid] != 2 {
		t.Fatalf("update %v, want {%s:{%s:2}} only", got, u1, chid)
	}
}

func TestMultiAckClearsPendingVersions(t *testing.T) {
	n := testNode(t, nil)
	u1 := newUUID()
	a, b := newUUID(), newUUID()
	c1 := dial(t, n)
	c1.helloMulti(u1)
	epA := localEndpoint(n, c1.registerFor(u1, a))
	epB := localEndpoint(n, c1.registerFor(u1, b))
	if st := putVersion(t, epA, 1); st != 200 {
		t.Fatalf("PUT a:1: %d, want 200", st)
	}
	c1.expectUpdate()
	c1.send(map[string]any{"messageType": "ack", "uaids": []string{u1}})
	c1.registerFor(u1, a) // barrier
	c1.closeNow()
	waitConnected(t, n, 0)

	c2 := dial(t, n)
	c2.helloMulti(u1)
	if st := putVersion(t, epB, 1); st != 200 {
		t.Fatalf("PUT b:1: %d, want 200", st)
	}
	if got := c2.expectUpdate(); len(got[u1]) != 1 || got[u1][b] != 1 {
		t.Fatalf("update %v, want only {%s:{%s:1}} (a:1 was acknowledged)", got, u1, b)
	}
}

func TestMultiRegisterNeedsOneOfTheConnectionsUAIDs(t *testing.T) {
	n := testNode(t, nil)
	u1 := newUUID()
	c := dial(t, n)
	c.helloMulti(u1)
	for name, msg := range map[string]map[string]any{
		"no uaid":      {"messageType": "register", "channelID": newUUID()},
		"invalid uaid": {"messageType": "register", "uaid": "nope", "channelID": newUUID()},
		"foreign uaid": {"messageType": "register", "uaid": newUUID(), "channelID": newUUID()},
	} {
		c.send(msg)
		if m := c.expect("register", 401); m["status"] != float64(401) {
			t.Fatalf("%s: register answered %v, want 401", name, m)
		}
	}
	// Still open; the connection's own UAID, in any accepted form, works.
	c.registerFor(strings.ToUpper(strings.ReplaceAll(u1, "-", "")), newUUID())
}

func TestMultiUnregisterNeedsOneOfTheConnectionsUAIDs(t *testing.T) {
	n := testNode(t, nil)
	// Another user agent with a channel.
	other := dial(t, n)
	ou := other.hello("")
	chid := newUUID()
	ep := localEndpoint(n, other.register(chid))

	u1 := newUUID()
	c := dial(t, n)
	c.helloMulti(u1)
	c.send(map[string]any{"messageType": "unregister", "uaid": ou, "channelID": chid})
	c.expect("unregister", 200)
	c.registerFor(u1, newUUID()) // barrier

	// The other UAID's channel is untouched.
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT to the other UAID's channel: %d, want 200", st)
	}
	if got := other.expectNotification(); got[chid] != 1 {
		t.Fatalf("notification %v, want %s:1", got, chid)
	}

	// Its own UAID's channel is unregistered.
	own := newUUID()
	ownEp := localEndpoint(n, c.registerFor(u1, own))
	c.send(map[string]any{"messageType": "unregister", "uaid": u1, "channelID": own})
	c.expect("unregister", 200)
	if st, body := put(t, ownEp, "version=1"); st != 404 {
		t.Fatalf("PUT to an unregistered channel: %d %v, want 404", st, body)
	}
}

func TestMultiHelloAfterSingleHelloIs401AndClose(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	c.hello("")
	c.send(map[string]any{"messageType": "hello", "uaids": []string{newUUID()}})
	c.expect("hello", 401)
	c.expectClose(1008)
}

// With -relay-networks, multi-UAID hellos come only from those networks;
// others are 401 and close 1008, and single-UAID hellos are not affected.
func TestMultiHelloOnlyFromRelayNetworks(t *testing.T) {
	elsewhere := testNode(t, func(c *engine.Config) { c.RelayNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	c := dial(t, elsewhere)
	c.send(map[string]any{"messageType": "hello", "uaids": []string{newUUID()}})
	c.expect("hello", 401)
	c.expectClose(1008)
	dial(t, elsewhere).hello("")

	loopback := testNode(t, func(c *engine.Config) { c.RelayNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} })
	u := newUUID()
	if got := dial(t, loopback).helloMulti(u); len(got) != 1 || got[0] != u {
		t.Errorf("multi hello from a relay network answered %v, want [%s]", got, u)
	}
}

func TestMultiHelloSupersedesSingleConnection(t *testing.T) {
	n := testNode(t, nil)
	single := dial(t, n)
	u := single.hello("")
	chid := newUUID()
	ep := localEndpoint(n, single.register(chid))

	relay := dial(t, n)
	relay.helloMulti(u)
	single.expectClose(4001)
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT: %d, want 200", st)
	}
	if got := relay.expectUpdate(); got[u][chid] != 1 {
		t.Fatalf("update %v, want {%s:{%s:1}}", got, u, chid)
	}
}

func TestMultiHelloAcceptsAtMostMaxUAIDs(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.MaxUAIDs = 2 })
	u1, u2, u3 := newUUID(), newUUID(), newUUID()
	c := dial(t, n)
	got := c.helloMulti(u1, u2, u3)
	if len(got) != 2 || got[0] != u1 || got[1] != u2 {
		t.Fatalf("multi hello with a limit of 2 answered %v, want [%s %s]", got, u1, u2)
	}
	// The UAID left out is not the connection's.
	c.send(map[string]any{"messageType": "register", "uaid": u3, "channelID": newUUID()})
	c.expect("register", 401)
}

func TestMultiInFlightIsPerUAID(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.LockWait = 50 * time.Millisecond })
	u1, u2 := newUUID(), newUUID()
	c := dial(t, n)
	c.helloMulti(u1, u2)
	a, b := newUUID(), newUUID()
	epA := localEndpoint(n, c.registerFor(u1, a))
	epB := localEndpoint(n, c.registerFor(u2, b))

	if st := putVersion(t, epA, 1); st != 200 {
		t.Fatalf("PUT to u1: %d, want 200", st)
	}
	c.expectUpdate()
	// u1 is in flight; u2 is not held up by it.
	if st := putVersion(t, epB, 1); st != 200 {
		t.Fatalf("PUT to u2 while u1 is in flight: %d, want 200", st)
	}
	if got := c.expectUpdate(); len(got) != 1 || got[u2][b] != 1 {
		t.Fatalf("update %v, want {%s:{%s:1}} only", got, u2, b)
	}
	// Acking u2 does not end u1's flight.
	c.send(map[string]any{"messageType": "ack", "uaids": []string{u2}})
	c.registerFor(u1, a) // barrier
	expect503(t, epA, 2)
	if st := putVersion(t, epB, 2); st != 200 {
		t.Fatalf("PUT to u2 after its ack: %d, want 200", st)
	}
}

func TestMultiInFlightEndsOnDisconnect(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) {
		cfg.LockWait = 10 * time.Second
		cfg.AckTimeout = time.Hour
	})
	u1, u2 := newUUID(), newUUID()
	c := dial(t, n)
	c.helloMulti(u1, u2)
	a, b := newUUID(), newUUID()
	epA := localEndpoint(n, c.registerFor(u1, a))
	epB := localEndpoint(n, c.registerFor(u2, b))
	putVersion(t, epA, 1)
	c.expectUpdate()
	putVersion(t, epB, 1)
	c.expectUpdate()
	c.closeNow()
	for _, ep := range []string{epA, epB} {
		if st := putVersion(t, ep, 2); st != 202 {
			t.Fatalf("PUT right after the relay disconnected: %d, want 202", st)
		}
	}

	// Both unacknowledged UAIDs get their versions on the next connection.
	c2 := dial(t, n)
	c2.helloMulti(u1, u2)
	got := c2.expectUpdate()
	if got[u1][a] != 2 || got[u2][b] != 2 {
		t.Fatalf("update %v, want %s:2 for %s and %s:2 for %s", got, a, u1, b, u2)
	}
}

func TestMultiUnregisterDropsPendingVersion(t *testing.T) {
	n := testNode(t, nil)
	u1 := newUUID()
	a, b := newUUID(), newUUID()
	c1 := dial(t, n)
	c1.helloMulti(u1)
	epA := localEndpoint(n, c1.registerFor(u1, a))
	epB := localEndpoint(n, c1.registerFor(u1, b))
	putVersion(t, epA, 5)
	c1.expectUpdate()
	c1.send(map[string]any{"messageType": "unregister", "uaid": u1, "channelID": a})
	c1.expect("unregister", 200)
	c1.closeNow()
	waitConnected(t, n, 0)

	c2 := dial(t, n)
	c2.helloMulti(u1)
	if st := putVersion(t, epB, 1); st != 200 {
		t.Fatalf("PUT b:1: %d, want 200", st)
	}
	if got := c2.expectUpdate(); len(got[u1]) != 1 || got[u1][b] != 1 {
		t.Fatalf("update %v, want only {%s:{%s:1}}", got, u1, b)
	}
}

func TestMultiHelloReplyComesBeforeAnyUpdate(t *testing.T) {
	// A relay names many UAIDs; a PUT for the first one races the hello.
	// Whatever the interleaving, the client must see the hello reply
	// before any update (PROTOCOL.md 2.1: versions come after the reply).
	n := testNode(t, func(cfg *engine.Config) { cfg.MaxMessage = 1 << 20 })
	u1 := newUUID()
	chid := newUUID()
	c1 := dial(t, n)
	c1.helloMulti(u1)
	ep := localEndpoint(n, c1.registerFor(u1, chid))
	c1.closeNow()
	waitConnected(t, n, 0)

	uaids := []string{u1}
	for len(uaids) < 10000 {
		uaids = append(uaids, newUUID())
	}
	stop := make(chan struct{})
	putting := make(chan struct{})
	go func() {
		defer close(putting)
		for v := uint64(1); ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			res := <-putAsync(ep, v)
			if res.err != nil || res.status == 200 {
				return // delivered to the relay (or the node is gone)
			}
		}
	}()
	c := dial(t, n)
	c.send(map[string]any{"messageType": "hello", "uaids": uaids})
	m := c.recv()
	close(stop)
	<-putting
	if m["messageType"] != "hello" {
		t.Fatalf("first message after a multi hello is %v, want the hello reply", m["messageType"])
	}
}
