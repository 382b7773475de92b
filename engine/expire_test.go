package engine_test

import (
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
)

// With -uaid-ttl, a UAID nobody uses is dropped: its endpoints answer 404
// and a device that comes back with its channels starts over with a new
// UAID. A UAID whose device stays connected, and one a REST client keeps
// polling, outlive the TTL.
func TestIdleUAIDIsDroppedAfterTheTTL(t *testing.T) {
	const ttl = 2 * time.Second
	n := testNode(t, func(c *engine.Config) { c.UAIDTTL = ttl })

	gone := dial(t, n)
	goneUAID := gone.hello("")
	goneChid := newUUID()
	goneEP := localEndpoint(n, gone.register(goneChid))
	gone.closeNow()
	waitConnected(t, n, 0)
	if st := putVersion(t, goneEP, 1); st != 202 {
		t.Fatalf("PUT to the offline device: %d, want 202", st)
	}

	stays := dial(t, n)
	stays.hello("")
	staysChid := newUUID()
	staysEP := localEndpoint(n, stays.register(staysChid))

	polled, polledEP := restRegister(t, n, "", newUUID())
	start := time.Now()
	eventually(t, 10*ttl, func() bool {
		if st, _ := poll(t, n, "uaid="+polled); st != 200 && st != 204 {
			t.Fatalf("poll: %d", st)
		}
		v, _ := metric(t, n, "pushd_uaids_expired_total")
		return v >= 1
	}, "the idle UAID dropped")
	if time.Since(start) < ttl {
		t.Errorf("a UAID was dropped %v after its last use, before the TTL of %v", time.Since(start), ttl)
	}
	// Both others are past the TTL since their hello and register too.
	for time.Since(start) < 2*ttl {
		if st, _ := poll(t, n, "uaid="+polled); st != 200 && st != 204 {
			t.Fatalf("poll: %d", st)
		}
		time.Sleep(100 * time.Millisecond)
	}

	if st := putVersion(t, goneEP, 2); st != 404 {
		t.Errorf("PUT to the dropped UAID's endpoint: %d, want 404", st)
	}
	if st := putVersion(t, staysEP, 1); st != 200 {
		t.Errorf("PUT to the connected device: %d, want 200", st)
	}
	if got := stays.expectNotification(); got[staysChid] != 1 {
		t.Errorf("connected device got %v", got)
	}
	if st := putVersion(t, polledEP, 1); st != 202 {
		t.Errorf("PUT to the polling REST client: %d, want 202", st)
	}
	if v, _ := metric(t, n, "pushd_uaids_expired_total"); v != 1 {
		t.Errorf("%v UAIDs dropped, want 1", v)
	}

	back := dial(t, n)
	if u := back.hello(goneUAID, goneChid); u == goneUAID {
		t.Errorf("the dropped UAID's device came back to its old UAID %s, want a new one", u)
	}
}
