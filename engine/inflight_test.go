package engine_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/shardstore"
)

// PROTOCOL.md 2.4, 2.5 and 6.2: notifications, acks and the in-flight
// state.

// putResult is the outcome of a PUT made off the test goroutine.
type putResult struct {
	status int
	err    error
}

// putAsync PUTs version=v in the background; the result arrives on the
// returned channel.
func putAsync(endpoint string, v uint64) <-chan putResult {
	out := make(chan putResult, 1)
	go func() {
		req, err := http.NewRequest(http.MethodPut, endpoint, strings.NewReader("version="+strconv.FormatUint(v, 10)))
		if err != nil {
			out <- putResult{err: err}
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := httpClient.Do(req)
		if err != nil {
			out <- putResult{err: err}
			return
		}
		resp.Body.Close()
		out <- putResult{status: resp.StatusCode}
	}()
	return out
}

// await waits for a background PUT; the bound only catches a hung server.
func await(t *testing.T, r <-chan putResult) int {
	t.Helper()
	select {
	case res := <-r:
		if res.err != nil {
			t.Fatalf("PUT: %v", res.err)
		}
		return res.status
	case <-time.After(30 * time.Second):
		t.Fatalf("PUT not answered")
		return 0
	}
}

// expect503 PUTs version=v and checks the busy answer of PROTOCOL.md 6.2.
func expect503(t *testing.T, ep string, v uint64) {
	t.Helper()
	resp, b := do(t, http.MethodPut, ep, "application/x-www-form-urlencoded", "version="+strconv.FormatUint(v, 10))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("PUT %d while in flight: %s %s, want 503", v, resp.Status, b)
	}
	if ra := resp.Header.Get("Retry-After"); ra == "" {
		t.Fatalf("503 without Retry-After")
	} else if _, err := strconv.Atoi(ra); err != nil {
		t.Fatalf("Retry-After %q is not a number of seconds", ra)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("503 body %q: %v", b, err)
	}
	checkErrorBody(t, http.StatusServiceUnavailable, body)
}

func TestPutWhileInFlightWaitsAndGets200WhenAckArrives(t *testing.T) {
	_, c, _, chid, ep := connected(t, func(cfg *engine.Config) { cfg.LockWait = 10 * time.Second })
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT 1: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 1 {
		t.Fatalf("notification %v, want %s:1", got, chid)
	}

	waiting := putAsync(ep, 2)
	select {
	case res := <-waiting:
		t.Fatalf("PUT 2 answered %d (%v) while version 1 was in flight", res.status, res.err)
	default:
	}
	c.ack(chid, 1)
	if st := await(t, waiting); st != 200 {
		t.Fatalf("PUT 2 after the ack: %d, want 200", st)
	}
	if got := c.expectNotification(); len(got) != 1 || got[chid] != 2 {
		t.Fatalf("notification %v, want only %s:2", got, chid)
	}
}

func TestPutWhileInFlightIs503WithRetryAfterWhenNoAck(t *testing.T) {
	n, c, _, chid, ep := connected(t, func(cfg *engine.Config) { cfg.LockWait = 50 * time.Millisecond })
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT 1: %d, want 200", st)
	}
	c.expectNotification()

	expect503(t, ep, 2)
	if v, _ := metric(t, n, `pushd_puts_total{status="503"}`); v != 1 {
		t.Fatalf(`pushd_puts_total{status="503"} = %v, want 1`, v)
	}

	// The ack ends the flight; the version refused with 503 was not
	// stored, so retrying it is accepted and delivered.
	c.ack(chid, 1)
	c.barrier(chid)
	if st := putVersion(t, ep, 2); st != 200 {
		t.Fatalf("PUT 2 after the ack: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 2 {
		t.Fatalf("notification %v, want %s:2", got, chid)
	}
}

func TestPutForAnotherChannelOfInFlightUAIDIs503(t *testing.T) {
	n, c, _, chid, ep := connected(t, func(cfg *engine.Config) { cfg.LockWait = 50 * time.Millisecond })
	other := newUUID()
	epOther := localEndpoint(n, c.register(other))
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT 1: %d, want 200", st)
	}
	c.expectNotification()
	// The lock is per UAID, not per channel.
	expect503(t, epOther, 1)
	c.ack(chid, 1)
	c.barrier(chid)
	if st := putVersion(t, epOther, 1); st != 200 {
		t.Fatalf("PUT to the other channel after the ack: %d, want 200", st)
	}
}

func TestInFlightEndsOnDisconnect(t *testing.T) {
	// A flight that outlived its connection would hold this PUT for the
	// whole lock wait and answer 503.
	_, c, _, chid, ep := connected(t, func(cfg *engine.Config) {
		cfg.LockWait = 10 * time.Second
		cfg.AckTimeout = time.Hour
	})
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT 1: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 1 {
		t.Fatalf("notification %v, want %s:1", got, chid)
	}
	c.closeNow()
	if st := putVersion(t, ep, 2); st != 202 {
		t.Fatalf("PUT right after the client disconnected: %d, want 202", st)
	}
}

func TestInFlightEndsAfterAckTimeoutAndVersionsStayPending(t *testing.T) {
	n, c, _, a, epA := connected(t, func(cfg *engine.Config) {
		cfg.LockWait = 10 * time.Second
		cfg.AckTimeout = 100 * time.Millisecond
	})
	b := newUUID()
	epB := localEndpoint(n, c.register(b))
	if st := putVersion(t, epA, 1); st != 200 {
		t.Fatalf("PUT a:1: %d, want 200", st)
	}
	if got := c.expectNotification(); got[a] != 1 {
		t.Fatalf("notification %v, want %s:1", got, a)
	}
	// No ack. Once the ack timeout ends the flight, the PUT goes ahead,
	// and the next UPDATE carries the unacknowledged a:1 again.
	if st := putVersion(t, epB, 1); st != 200 {
		t.Fatalf("PUT b:1 after the ack timeout: %d, want 200", st)
	}
	got := c.expectNotification()
	if len(got) != 2 || got[a] != 1 || got[b] != 1 {
		t.Fatalf("notification %v, want %s:1 and %s:1", got, a, b)
	}
}

func TestUnackedVersionIsResentOnNextConnection(t *testing.T) {
	n, c, uaid, chid, ep := connected(t, nil)
	if st := putVersion(t, ep, 5); st != 200 {
		t.Fatalf("PUT 5: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 5 {
		t.Fatalf("notification %v, want %s:5", got, chid)
	}
	c.closeNow()

	c2 := dial(t, n)
	c2.hello(uaid, chid)
	if got := c2.expectNotification(); got[chid] != 5 {
		t.Fatalf("notification on reconnect %v, want %s:5 again", got, chid)
	}
}

func TestAckedVersionIsNotResent(t *testing.T) {
	n, c, uaid, a, epA := connected(t, nil)
	b := newUUID()
	epB := localEndpoint(n, c.register(b))
	if st := putVersion(t, epA, 1); st != 200 {
		t.Fatalf("PUT a:1: %d, want 200", st)
	}
	c.expectNotification()
	c.ack(a, 1)
	c.barrier(a)

	// On the same connection...
	if st := putVersion(t, epB, 1); st != 200 {
		t.Fatalf("PUT b:1: %d, want 200", st)
	}
	if got := c.expectNotification(); len(got) != 1 || got[b] != 1 {
		t.Fatalf("notification %v, want only %s:1", got, b)
	}
	c.ack(b, 1)
	c.barrier(a)
	c.closeNow()
	waitConnected(t, n, 0)

	// ...and on the next one.
	c2 := dial(t, n)
	c2.hello(uaid, a, b)
	if st := putVersion(t, epB, 2); st != 200 {
		t.Fatalf("PUT b:2: %d, want 200", st)
	}
	if got := c2.expectNotification(); len(got) != 1 || got[b] != 2 {
		t.Fatalf("notification %v, want only %s:2", got, b)
	}
}

func TestAckOfOlderVersionKeepsFlight(t *testing.T) {
	_, c, _, chid, ep := connected(t, func(cfg *engine.Config) { cfg.LockWait = 50 * time.Millisecond })
	if st := putVersion(t, ep, 5); st != 200 {
		t.Fatalf("PUT 5: %d, want 200", st)
	}
	c.expectNotification()
	c.ack(chid, 4)
	c.barrier(chid)
	expect503(t, ep, 6)

	c.ack(chid, 5)
	c.barrier(chid)
	if st := putVersion(t, ep, 6); st != 200 {
		t.Fatalf("PUT 6 after acking 5: %d, want 200", st)
	}
}

func TestPartialAckKeepsFlight(t *testing.T) {
	n, c, uaid, a, epA := connected(t, func(cfg *engine.Config) { cfg.LockWait = 50 * time.Millisecond })
	b := newUUID()
	epB := localEndpoint(n, c.register(b))
	c.closeNow()
	waitConnected(t, n, 0)
	putVersion(t, epA, 1)
	putVersion(t, epB, 1)

	c2 := dial(t, n)
	c2.hello(uaid, a, b)
	if got := c2.expectNotification(); len(got) != 2 {
		t.Fatalf("pending notification %v, want %s:1 and %s:1", got, a, b)
	}
	c2.ack(a, 1)
	c2.barrier(a)
	expect503(t, epA, 2)

	c2.ack(b, 1)
	c2.barrier(a)
	if st := putVersion(t, epA, 2); st != 200 {
		t.Fatalf("PUT a:2 after acking everything: %d, want 200", st)
	}
	if got := c2.expectNotification(); len(got) != 1 || got[a] != 2 {
		t.Fatalf("notification %v, want only %s:2", got, a)
	}
}

func TestNewerVersionWhileInFlightStaysPendingAndIsSentNext(t *testing.T) {
	n, c, uaid, chid, ep := connected(t, func(cfg *engine.Config) {
		cfg.LockWait = 10 * time.Second
		cfg.AckTimeout = 100 * time.Millisecond
	})
	if st := putVersion(t, ep, 5); st != 200 {
		t.Fatalf("PUT 5: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 5 {
		t.Fatalf("notification %v, want %s:5", got, chid)
	}
	// 5 is not acknowledged; its flight times out and 6 is sent.
	if st := putVersion(t, ep, 6); st != 200 {
		t.Fatalf("PUT 6: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != 6 {
		t.Fatalf("notification %v, want %s:6", got, chid)
	}
	// A late ack of 5 must not clear 6.
	c.ack(chid, 5)
	c.barrier(chid)
	c.closeNow()

	c2 := dial(t, n)
	c2.hello(uaid, chid)
	if got := c2.expectNotification(); got[chid] != 6 {
		t.Fatalf("notification on reconnect %v, want %s:6 still pending", got, chid)
	}
}

func TestMalformedAckIsIgnored(t *testing.T) {
	_, c, _, chid, ep := connected(t, func(cfg *engine.Config) { cfg.LockWait = 50 * time.Millisecond })
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT 1: %d, want 200", st)
	}
	c.expectNotification()
	for _, ack := range []string{
		`{"messageType":"ack"}`,
		`{"messageType":"ack","updates":"x"}`,
		`{"messageType":"ack","updates":[1,2]}`,
		`{"messageType":"ack","updates":[{"channelID":"` + chid + `","version":"1"}]}`,
		`{"messageType":"ack","updates":[{"channelID":"` + chid + `","version":-1}]}`,
		`{"messageType":"ack","updates":[{"channelID":"` + chid + `","version":1.5}]}`,
		`{"messageType":"ack","updates":[{"channelID":"nope","version":1}]}`,
		`{"messageType":"ack","updates":[{"version":1}]}`,
	} {
		c.send(ack)
	}
	// The connection is open and the flight is still on.
	c.barrier(chid)
	expect503(t, ep, 2)

	c.ack(chid, 1)
	c.barrier(chid)
	if st := putVersion(t, ep, 2); st != 200 {
		t.Fatalf("PUT 2 after a valid ack: %d, want 200", st)
	}
}

func TestFlightMovesToNewestConnection(t *testing.T) {
	n, c, uaid, chid, ep := connected(t, func(cfg *engine.Config) { cfg.LockWait = 10 * time.Second })
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT 1: %d, want 200", st)
	}
	c.expectNotification()

	c2 := dial(t, n)
	c2.hello(uaid, chid)
	c.expectClose(4001)
	if got := c2.expectNotification(); got[chid] != 1 {
		t.Fatalf("notification on the new connection %v, want %s:1", got, chid)
	}
	c2.ackDone(chid, 1)
	if st := putVersion(t, ep, 2); st != 200 {
		t.Fatalf("PUT 2 after the new connection acked: %d, want 200", st)
	}
	if got := c2.expectNotification(); got[chid] != 2 {
		t.Fatalf("notification %v, want %s:2", got, chid)
	}
}

// TestStoreWhileInFlightIsSentAfterTheAck: Node.Store (the relay's way in)
// does not wait for the client; the version stays pending and goes out
// right after the client acks the UPDATE in flight.
func TestStoreWhileInFlightIsSentAfterTheAck(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	u, _ := uuid.Parse(c.hello(""))
	chid := newUUID()
	ep := localEndpoint(n, c.register(chid))
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT: %d", st)
	}
	c.expectNotification() // version 1 in flight, not acked yet

	// (Were Store to wait for the ack, which comes only after it, it would
	// give up with PutBusy.)
	st, err := n.Store(u, uuid.MustParse(chid), shardstore.Put{Version: 2})
	if err != nil || st != engine.PutStored {
		t.Fatalf("Store while in flight: %v %v, want PutStored", st, err)
	}
	c.ack(chid, 1)
	if got := c.expectNotification(); got[chid] != 2 {
		t.Fatalf("after the ack: %v, want %s:2", got, chid)
	}
}

// TestAckRightBeforeCloseCounts: a client that acks and hangs up at once
// has acknowledged the version; it is not sent again.
func TestAckRightBeforeCloseCounts(t *testing.T) {
	n, c, uaid, a, epA := connected(t, nil)
	b := newUUID()
	epB := localEndpoint(n, c.register(b))
	for i := range 20 { // the close often lands while the ack is queued
		v := uint64(i + 1)
		if st := putVersion(t, epA, v); st != 200 {
			t.Fatalf("PUT a:%d: %d, want 200", v, st)
		}
		c.expectNotification()
		c.ack(a, v)
		c.closeNow()
		waitConnected(t, n, 0)
		c = dial(t, n)
		c.hello(uaid, a, b)
		if st := putVersion(t, epB, v); st != 200 {
			t.Fatalf("PUT b:%d: %d, want 200", v, st)
		}
		if got := c.expectNotification(); len(got) != 1 || got[b] != v {
			t.Fatalf("round %d: notification %v, want only %s:%d", i, got, b, v)
		}
		c.ack(b, v)
		c.barrier(a)
	}
}
