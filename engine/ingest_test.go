package engine_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/engine"
)

// PROTOCOL.md 3: version events over HTTP, and the operator endpoints.

// connected starts a node with one connected client and one channel, and
// returns them with the channel's local endpoint.
func connected(t *testing.T, mod func(*engine.Config)) (n *engine.Node, c *wsClient, uaid, chid, ep string) {
	t.Helper()
	n = testNode(t, mod)
	c = dial(t, n)
	uaid = c.hello("")
	chid = newUUID()
	ep = localEndpoint(n, c.register(chid))
	return n, c, uaid, chid, ep
}

func TestPutToConnectedClientIs200(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	st, body := put(t, ep, "version=7")
	if st != http.StatusOK {
		t.Fatalf("PUT: %d %v, want 200", st, body)
	}
	if body == nil || len(body) != 0 {
		t.Fatalf("PUT body %v, want {}", body)
	}
	if got := c.expectNotification(); got[chid] != 7 {
		t.Fatalf("notification %v, want %s:7", got, chid)
	}
}

func TestPutToOfflineClientIs202AndDeliveredOnHello(t *testing.T) {
	n, c, uaid, chid, ep := connected(t, nil)
	c.closeNow()
	waitConnected(t, n, 0)
	st, body := put(t, ep, "version=7")
	if st != http.StatusAccepted {
		t.Fatalf("PUT to offline client: %d %v, want 202", st, body)
	}
	if body == nil || len(body) != 0 {
		t.Fatalf("PUT body %v, want {}", body)
	}
	c2 := dial(t, n)
	c2.hello(uaid, chid)
	if got := c2.expectNotification(); got[chid] != 7 {
		t.Fatalf("notification %v, want %s:7", got, chid)
	}
}

func TestPutInvalidVersionIs400(t *testing.T) {
	_, _, _, _, ep := connected(t, nil)
	for name, v := range map[string]string{
		"non-integer": "abc",
		"fraction":    "1.5",
		"exponent":    "1e3",
		"negative":    "-1",
		"plus sign":   "+1",
		"hex":         "0x10",
		"over 2^53-1": "9007199254740992",
		"over uint64": "184467440737095516160",
		"empty":       "",
	} {
		t.Run("body/"+name, func(t *testing.T) {
			st, body := put(t, ep, url.Values{"version": {v}}.Encode())
			if st != http.StatusBadRequest {
				t.Fatalf("PUT version=%q: %d %v, want 400", v, st, body)
			}
			checkErrorBody(t, st, body)
		})
		t.Run("query/"+name, func(t *testing.T) {
			st, body := put(t, ep+"?"+url.Values{"version": {v}}.Encode(), "")
			if st != http.StatusBadRequest {
				t.Fatalf("PUT ?version=%q: %d %v, want 400", v, st, body)
			}
			checkErrorBody(t, st, body)
		})
	}
}

func TestPutMaxVersionIsAccepted(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	const max = 1<<53 - 1
	if st := putVersion(t, ep, max); st != 200 {
		t.Fatalf("PUT version=2^53-1: %d, want 200", st)
	}
	if got := c.expectNotification(); got[chid] != max {
		t.Fatalf("notification %v, want %s:%d", got, chid, uint64(max))
	}
}

func TestPutVersionZeroOnFreshChannelChangesNothing(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	// A fresh channel's highest accepted version is 0: version 0 is not
	// greater, so it is answered as success and nothing is sent.
	if st := putVersion(t, ep, 0); st != 200 {
		t.Fatalf("PUT version=0: %d, want 200", st)
	}
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT version=1: %d, want 200", st)
	}
	if got := c.expectNotification(); len(got) != 1 || got[chid] != 1 {
		t.Fatalf("notification %v, want only %s:1", got, chid)
	}
}

func TestPutInvalidTokenIs404(t *testing.T) {
	_, _, _, _, ep := connected(t, nil)
	base := ep[:strings.Index(ep, "/update/")+len("/update/")]
	tok := ep[len(base):]

	// A token sealed by another node under another key.
	other := testNode(t, nil)
	oc := dial(t, other)
	oc.hello("")
	foreign := localEndpoint(other, oc.register(newUUID()))
	foreignTok := foreign[strings.Index(foreign, "/update/")+len("/update/"):]

	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	for name, bad := range map[string]string{
		"garbage":        "garbage",
		"empty":          "",
		"modified first": flip(tok, 0),
		"modified mid":   flip(tok, len(tok)/2),
		"modified last":  flip(tok, len(tok)-1),
		"truncated":      tok[:len(tok)-1],
		"extended":       tok + "A",
		"padded":         tok + "==",
		"forged":         foreignTok,
	} {
		t.Run(name, func(t *testing.T) {
			st, body := put(t, base+bad, "version=1")
			if st != http.StatusNotFound {
				t.Fatalf("PUT to token %q: %d %v, want 404", bad, st, body)
			}
			checkErrorBody(t, st, body)
		})
	}
}

func TestPutOtherMethodsAre405WithAllow(t *testing.T) {
	_, _, _, _, ep := connected(t, nil)
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodDelete, http.MethodPatch} {
		t.Run(method, func(t *testing.T) {
			resp, _ := do(t, method, ep, "application/x-www-form-urlencoded", "version=1")
			if resp.StatusCode != http.StatusMethodNotAllowed {
				t.Fatalf("%s: %s, want 405", method, resp.Status)
			}
			if allow := resp.Header.Get("Allow"); !strings.Contains(allow, "PUT") {
				t.Fatalf("%s: Allow %q, want it to list PUT", method, allow)
			}
		})
	}
}

func TestPutOptionsAnswersCORS(t *testing.T) {
	_, _, _, _, ep := connected(t, nil)
	req, err := http.NewRequest(http.MethodOptions, ep, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "PUT")
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("OPTIONS: %s, want 2xx", resp.Status)
	}
	if o := resp.Header.Get("Access-Control-Allow-Origin"); o == "" {
		t.Fatalf("OPTIONS without Access-Control-Allow-Origin")
	}
	if m := resp.Header.Get("Access-Control-Allow-Methods"); !strings.Contains(m, "PUT") {
		t.Fatalf("OPTIONS: Access-Control-Allow-Methods %q, want it to list PUT", m)
	}
}

func TestPutDataIsDeliveredInNotification(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	data := `hello "world" & ünïcødé = 1`
	if st, body := put(t, ep, url.Values{"version": {"3"}, "data": {data}}.Encode()); st != 200 {
		t.Fatalf("PUT with data: %d %v, want 200", st, body)
	}
	m := c.expect("notification", 0)
	ups := m["updates"].([]any)
	if len(ups) != 1 {
		t.Fatalf("notification %v, want one update", m)
	}
	up := ups[0].(map[string]any)
	if up["channelID"] != chid || up["version"] != float64(3) || up["data"] != data {
		t.Fatalf("update %v, want channelID %s version 3 data %q", up, chid, data)
	}
}

func TestPutDataIsStoredWhilePending(t *testing.T) {
	n, c, uaid, chid, ep := connected(t, nil)
	c.closeNow()
	waitConnected(t, n, 0)
	if st, body := put(t, ep, "version=4&data=stored"); st != 202 {
		t.Fatalf("PUT with data to offline client: %d %v, want 202", st, body)
	}
	c2 := dial(t, n)
	c2.hello(uaid, chid)
	m := c2.expect("notification", 0)
	up := m["updates"].([]any)[0].(map[string]any)
	if up["version"] != float64(4) || up["data"] != "stored" {
		t.Fatalf("pending update %v, want version 4 data %q", up, "stored")
	}
}

func TestPutDataAt4096BytesIsAccepted(t *testing.T) {
	_, c, _, _, ep := connected(t, nil)
	data := strings.Repeat("x", engine.MaxData)
	if st, body := put(t, ep, url.Values{"version": {"1"}, "data": {data}}.Encode()); st != 200 {
		t.Fatalf("PUT with 4096 bytes of data: %d %v, want 200", st, body)
	}
	m := c.expect("notification", 0)
	if got := m["updates"].([]any)[0].(map[string]any)["data"]; got != data {
		t.Fatalf("delivered data of %d bytes, want 4096", len(fmt.Sprint(got)))
	}
}

func TestPutDataOver4096BytesIs413(t *testing.T) {
	_, _, _, _, ep := connected(t, nil)
	for name, data := range map[string]string{
		"ascii":     strings.Repeat("x", engine.MaxData+1),
		"multibyte": strings.Repeat("é", engine.MaxData/2) + "x", // 4097 bytes, 2049 runes
	} {
		t.Run(name, func(t *testing.T) {
			st, body := put(t, ep, url.Values{"version": {"1"}, "data": {data}}.Encode())
			if st != http.StatusRequestEntityTooLarge {
				t.Fatalf("PUT with %d bytes of data: %d %v, want 413", len(data), st, body)
			}
			checkErrorBody(t, st, body)
		})
	}
}

func TestPutBodyTooLargeIs413(t *testing.T) {
	_, _, _, _, ep := connected(t, nil)
	st, body := put(t, ep, "version=1&pad="+strings.Repeat("a", 20000))
	if st != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT with a 20 kB body: %d %v, want 413", st, body)
	}
	checkErrorBody(t, st, body)
}

func TestPutVersionInQuery(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	if st, body := put(t, ep+"?version=8", ""); st != 200 {
		t.Fatalf("PUT ?version=8: %d %v, want 200", st, body)
	}
	if got := c.expectNotification(); got[chid] != 8 {
		t.Fatalf("notification %v, want %s:8", got, chid)
	}
	c.ackDone(chid, 8)

	// Query version with data in the body.
	if st, body := put(t, ep+"?version=9", "data=from-body"); st != 200 {
		t.Fatalf("PUT ?version=9 with data: %d %v, want 200", st, body)
	}
	m := c.expect("notification", 0)
	up := m["updates"].([]any)[0].(map[string]any)
	if up["version"] != float64(9) || up["data"] != "from-body" {
		t.Fatalf("update %v, want version 9 data %q", up, "from-body")
	}
}

func TestPutBodyVersionTakesPrecedenceOverQuery(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	if st, body := put(t, ep+"?version=5", "version=6"); st != 200 {
		t.Fatalf("PUT: %d %v, want 200", st, body)
	}
	if got := c.expectNotification(); got[chid] != 6 {
		t.Fatalf("notification %v, want the body's %s:6", got, chid)
	}
}

func TestPutWithoutVersionUsesCurrentTime(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	before := uint64(time.Now().Unix())
	if st, body := put(t, ep, ""); st != 200 {
		t.Fatalf("PUT without version: %d %v, want 200", st, body)
	}
	after := uint64(time.Now().Unix())
	got := c.expectNotification()[chid]
	if got < before || got > after {
		t.Fatalf("version %d, want the Unix time, between %d and %d", got, before, after)
	}
}

func TestPutWithoutVersionUsesHighestPlusOne(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	future := uint64(time.Now().Unix()) + 1_000_000
	if st := putVersion(t, ep, future); st != 200 {
		t.Fatalf("PUT %d: %d, want 200", future, st)
	}
	c.expectNotification()
	c.ackDone(chid, future)
	for i := uint64(1); i <= 2; i++ {
		if st, body := put(t, ep, "data=next"); st != 200 {
			t.Fatalf("PUT without version: %d %v, want 200", st, body)
		}
		if got := c.expectNotification()[chid]; got != future+i {
			t.Fatalf("version %d, want highest+1 = %d", got, future+i)
		}
		c.ackDone(chid, future+i)
	}
}

func TestPutLowerOrEqualVersionIsSuccessAndChangesNothing(t *testing.T) {
	_, c, _, chid, ep := connected(t, nil)
	if st := putVersion(t, ep, 10); st != 200 {
		t.Fatalf("PUT 10: %d, want 200", st)
	}
	c.expectNotification()
	c.ackDone(chid, 10)
	for _, v := range []uint64{10, 3} {
		if st := putVersion(t, ep, v); st != 200 {
			t.Fatalf("stale PUT %d to connected client: %d, want 200", v, st)
		}
	}
	if st := putVersion(t, ep, 11); st != 200 {
		t.Fatalf("PUT 11: %d, want 200", st)
	}
	// Had a stale PUT been sent or stored, it would come first.
	if got := c.expectNotification(); len(got) != 1 || got[chid] != 11 {
		t.Fatalf("notification %v, want only %s:11", got, chid)
	}
}

func TestPutLowerVersionToOfflineClientKeepsHighest(t *testing.T) {
	n, c, uaid, chid, ep := connected(t, nil)
	c.closeNow()
	waitConnected(t, n, 0)
	if st := putVersion(t, ep, 10); st != 202 {
		t.Fatalf("PUT 10: %d, want 202", st)
	}
	if st, body := put(t, ep, "version=4&data=old"); st != 202 {
		t.Fatalf("stale PUT 4 to offline client: %d %v, want 202", st, body)
	}
	c2 := dial(t, n)
	c2.hello(uaid, chid)
	m := c2.expect("notification", 0)
	up := m["updates"].([]any)[0].(map[string]any)
	if up["version"] != float64(10) {
		t.Fatalf("pending update %v, want version 10", up)
	}
	if _, has := up["data"]; has {
		t.Fatalf("pending update %v carries the stale PUT's data", up)
	}
}

func TestErrorBodyShape(t *testing.T) {
	n := testNode(t, nil)
	resp, b := do(t, http.MethodPut, "http://"+n.HTTPAddr().String()+"/update/not-a-token", "application/x-www-form-urlencoded", "version=1")
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("PUT to a garbage token: %s, want 404", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("error Content-Type %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	checkErrorBody(t, 404, body)
	if body["errno"] != float64(102) || body["message"] != "invalid endpoint" {
		t.Fatalf("error body %v, want errno 102 and message %q (PROTOCOL.md 3)", body, "invalid endpoint")
	}
	if len(body) != 4 {
		t.Fatalf("error body %v, want exactly code, errno, error, message", body)
	}
}

func TestHealthIs200(t *testing.T) {
	n := testNode(t, nil)
	resp, _ := do(t, http.MethodGet, "http://"+n.HTTPAddr().String()+"/health", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /health: %s, want 200", resp.Status)
	}
}

func TestMetricsCountPutsByStatus(t *testing.T) {
	n, c, _, chid, ep := connected(t, nil)
	if st := putVersion(t, ep, 1); st != 200 {
		t.Fatalf("PUT: %d, want 200", st)
	}
	c.expectNotification()
	c.ack(chid, 1)
	put(t, ep, "version=x")                                             // 400
	put(t, localEndpoint(n, "/update/garbage"), "version=1")            // 404
	do(t, http.MethodGet, ep, "", "")                                   // 405
	put(t, ep, "version=2&data="+strings.Repeat("x", engine.MaxData+1)) // 413
	c.closeNow()
	waitConnected(t, n, 0)
	if st := putVersion(t, ep, 2); st != 202 {
		t.Fatalf("PUT to offline client: %d, want 202", st)
	}

	for series, want := range map[string]float64{
		`pushd_puts_total{status="200"}`: 1,
		`pushd_puts_total{status="400"}`: 1,
		`pushd_puts_total{status="404"}`: 1,
		`pushd_puts_total{status="405"}`: 1,
		`pushd_puts_total{status="413"}`: 1,
		`pushd_puts_total{status="202"}`: 1,
		`pushd_hellos_total`:             1,
		`pushd_registers_total`:          1,
		`pushd_notifications_sent_total`: 1,
		`pushd_uaids_connected`:          0,
	} {
		got, ok := metric(t, n, series)
		if !ok {
			t.Errorf("/metrics lacks %s", series)
			continue
		}
		if got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
}

func TestNewerVersionWithoutDataDropsOldData(t *testing.T) {
	n, c, uaid, chid, ep := connected(t, nil)
	c.closeNow()
	waitConnected(t, n, 0)
	if st, body := put(t, ep, "version=1&data=old"); st != 202 {
		t.Fatalf("PUT 1 with data: %d %v, want 202", st, body)
	}
	if st := putVersion(t, ep, 2); st != 202 {
		t.Fatalf("PUT 2 without data: %d, want 202", st)
	}
	c2 := dial(t, n)
	c2.hello(uaid, chid)
	m := c2.expect("notification", 0)
	up := m["updates"].([]any)[0].(map[string]any)
	if up["version"] != float64(2) {
		t.Fatalf("pending update %v, want version 2", up)
	}
	if d, has := up["data"]; has {
		t.Fatalf("version 2 was sent without data but is delivered with %q", d)
	}
}

// tokenOf returns the token of an endpoint URL.
func tokenOf(t *testing.T, ep string) string {
	t.Helper()
	i := strings.Index(ep, "/update/")
	if i < 0 {
		t.Fatalf("endpoint %q has no /update/", ep)
	}
	return ep[i+len("/update/"):]
}

func TestTokenRevealsNothingAboutUAIDOrChannel(t *testing.T) {
	n := testNode(t, nil)
	c := dial(t, n)
	uaid := c.hello("")
	a, b := newUUID(), newUUID()
	ta, err := base64.RawURLEncoding.DecodeString(tokenOf(t, c.register(a)))
	if err != nil {
		t.Fatalf("token is not base64url without padding: %v", err)
	}
	tb, err := base64.RawURLEncoding.DecodeString(tokenOf(t, c.register(b)))
	if err != nil {
		t.Fatalf("token is not base64url without padding: %v", err)
	}
	for _, id := range []string{uaid, a, b} {
		raw := uuid.MustParse(id)
		for _, tok := range [][]byte{ta, tb} {
			if bytes.Contains(tok, raw[:8]) || bytes.Contains(tok, raw[8:]) {
				t.Fatalf("token %x contains half of %s in the clear", tok, id)
			}
		}
	}
	// Two channels of one UAID: the tokens share no more than chance
	// would (plus a version byte).
	same := 0
	for i := 0; i < len(ta) && i < len(tb); i++ {
		if ta[i] == tb[i] {
			same++
		}
	}
	if same > 16 {
		t.Fatalf("tokens of two channels of one UAID agree on %d of %d bytes:\n%x\n%x", same, len(ta), ta, tb)
	}
}

func TestTokenKeyRotation(t *testing.T) {
	dir := t.TempDir()
	k1, k2 := strings.Repeat("11", 32), strings.Repeat("22", 32)
	keys := func(k string) func(*engine.Config) {
		return func(cfg *engine.Config) { cfg.DataDir, cfg.TokenKeys = dir, k }
	}
	stop := func(n *engine.Node) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.Shutdown(ctx); err != nil {
			t.Fatalf("shutdown: %v", err)
		}
	}

	n1 := testNode(t, keys(k1))
	c1 := dial(t, n1)
	uaid := c1.hello("")
	chid := newUUID()
	oldTok := tokenOf(t, c1.register(chid))
	stop(n1)

	// k2 seals, k1 still opens.
	n2 := testNode(t, keys(k2+","+k1))
	if st := putVersion(t, localEndpoint(n2, "/update/"+oldTok), 1); st != 202 {
		t.Fatalf("PUT with a token sealed by the old key: %d, want 202", st)
	}
	c2 := dial(t, n2)
	c2.hello(uaid, chid)
	if got := c2.expectNotification(); got[chid] != 1 {
		t.Fatalf("notification %v, want %s:1", got, chid)
	}
	c2.ack(chid, 1)
	newTok := tokenOf(t, c2.register(chid))
	if newTok == oldTok {
		t.Fatalf("the new first key did not seal the new token")
	}
	stop(n2)

	// k1 retired: its tokens are dead, k2's work.
	n3 := testNode(t, keys(k2))
	if st, body := put(t, localEndpoint(n3, "/update/"+oldTok), "version=2"); st != 404 {
		t.Fatalf("PUT with a token of a retired key: %d %v, want 404", st, body)
	}
	if st := putVersion(t, localEndpoint(n3, "/update/"+newTok), 3); st != 202 {
		t.Fatalf("PUT with a token of the current key: %d, want 202", st)
	}
}

func TestPutHugeBodyIs413WithJSONError(t *testing.T) {
	_, _, _, _, ep := connected(t, nil)
	// Larger than any buffer the HTTP server keeps for a body. A server
	// may answer before it has read the body and close, so the request is
	// written by hand: the body goes out in the background, its write
	// errors ignored, while the answer is read.
	u, err := url.Parse(ep)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := "version=1&pad=" + strings.Repeat("a", 100<<10)
	head := fmt.Sprintf("PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n", u.Path, u.Host, len(body))
	if _, err := conn.Write([]byte(head)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = conn.Write([]byte(body)) }()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("reading the answer to a 100 kB PUT: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("PUT with a 100 kB body: %s %q, want 413", resp.Status, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("413 body %q is not JSON: %v", b, err)
	}
	checkErrorBody(t, resp.StatusCode, m)
}

func TestAcceptedVersionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	sameDir := func(cfg *engine.Config) { cfg.DataDir = dir }
	n1 := testNode(t, sameDir)
	c1 := dial(t, n1)
	uaid := c1.hello("")
	chid := newUUID()
	tok := tokenOf(t, c1.register(chid))
	c1.closeNow()
	waitConnected(t, n1, 0)
	if st, body := put(t, localEndpoint(n1, "/update/"+tok), "version=7&data=kept"); st != 202 {
		t.Fatalf("PUT to offline client: %d %v, want 202", st, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown: %v", err)
	}

	n2 := testNode(t, sameDir)
	c2 := dial(t, n2)
	if got := c2.hello(uaid, chid); got != uaid {
		t.Fatalf("hello after restart answered %s, want %s (the registration is durable)", got, uaid)
	}
	m := c2.expect("notification", 0)
	up := m["updates"].([]any)[0].(map[string]any)
	if up["channelID"] != chid || up["version"] != float64(7) || up["data"] != "kept" {
		t.Fatalf("update after restart %v, want %s:7 with data %q", up, chid, "kept")
	}
}

func TestPutVersionWithLeadingZerosIsAccepted(t *testing.T) {
	// "00000000000000000007" is an integer, not negative, not over 2^53-1
	// (PROTOCOL.md 3 lists no other reason for a 400).
	_, c, _, chid, ep := connected(t, nil)
	if st, body := put(t, ep, "version=00000000000000000007"); st != 200 {
		t.Fatalf("PUT version=00000000000000000007: %d %v, want 200", st, body)
	}
	if got := c.expectNotification(); got[chid] != 7 {
		t.Fatalf("notification %v, want %s:7", got, chid)
	}
}
