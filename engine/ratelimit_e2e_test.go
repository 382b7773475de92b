package engine_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
)

// put429 PUTs until the node answers 429 (at most n times) and checks the
// answer's Retry-After and error body.
func put429(t *testing.T, ep string, n int) (accepted int) {
	t.Helper()
	for v := 1; v <= n; v++ {
		resp, body := do(t, http.MethodPut, ep, "application/x-www-form-urlencoded", "version="+strconv.Itoa(v))
		if resp.StatusCode != http.StatusTooManyRequests {
			accepted++
			continue
		}
		if ra, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || ra < 1 {
			t.Fatalf("429 with Retry-After %q", resp.Header.Get("Retry-After"))
		}
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("429 body %q: %v", body, err)
		}
		checkErrorBody(t, resp.StatusCode, m)
		return accepted
	}
	t.Fatalf("no 429 after %d PUTs", n)
	return accepted
}

func TestPutsOverTheEndpointRateGet429(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.EndpointRate = 3 })
	c := dial(t, n)
	c.hello("")
	hot := localEndpoint(n, c.register(newUUID()))
	other := localEndpoint(n, c.register(newUUID()))
	c.conn.Close() // offline: every accepted PUT is a 202, none waits for an ack
	waitConnected(t, n, 0)
	start := time.Now()
	got := put429(t, hot, 20)
	// The burst of 3, plus what the rate refilled while the PUTs ran.
	if refill := int(time.Since(start).Seconds() * 3); got < 3 || got > 3+refill {
		t.Fatalf("%d PUTs accepted before 429, want 3 (+%d refilled)", got, refill)
	}
	// Another endpoint has its own budget.
	if st := putVersion(t, other, 1); st != http.StatusAccepted {
		t.Fatalf("PUT to another endpoint: %d, want 202", st)
	}
	if v, _ := metric(t, n, `pushd_puts_total{status="429"}`); v != 1 {
		t.Fatalf("pushd_puts_total{status=\"429\"} = %v, want 1", v)
	}
}

func TestPutsOverTheSourceRateGet429(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.SourceRate = 4 })
	c := dial(t, n)
	c.hello("")
	a := localEndpoint(n, c.register(newUUID()))
	b := localEndpoint(n, c.register(newUUID()))
	c.conn.Close()
	waitConnected(t, n, 0)
	// The source's budget is shared by all endpoints it PUTs to.
	start := time.Now()
	for v := uint64(1); v <= 2; v++ {
		if st := putVersion(t, a, v); st != http.StatusAccepted {
			t.Fatalf("PUT %d within the source's burst: %d", v, st)
		}
	}
	got := put429(t, b, 20)
	if refill := int(time.Since(start).Seconds() * 4); got < 2 || got > 2+refill {
		t.Fatalf("%d more PUTs accepted from the source, want the 2 left of its burst (+%d refilled)", got, refill)
	}
}
