package engine_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pushd/pushd/engine"
)

// restRegister registers chid for uaid ("" for a new one) over REST and
// returns the UAID and the endpoint on the node's real address.
func restRegister(t *testing.T, n *engine.Node, uaid, chid string) (string, string) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"uaid": uaid, "channelID": chid})
	resp, body := do(t, http.MethodPost, "http://"+n.HTTPAddr().String()+"/v1/register", "application/json", string(b))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/register: %s %s", resp.Status, body)
	}
	var m map[string]string
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("register answer %s: %v", body, err)
	}
	if m["channelID"] != chid || m["uaid"] == "" || m["pushEndpoint"] == "" {
		t.Fatalf("register answer %s", body)
	}
	return m["uaid"], localEndpoint(n, m["pushEndpoint"])
}

// poll is GET /v1/updates; it returns the status and the packet.
func poll(t *testing.T, n *engine.Node, query string) (int, map[string]map[string]uint64) {
	t.Helper()
	resp, body := do(t, http.MethodGet, "http://"+n.HTTPAddr().String()+"/v1/updates?"+query, "", "")
	var packet map[string]map[string]uint64
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &packet); err != nil {
			t.Fatalf("poll answer %s: %v", body, err)
		}
	}
	return resp.StatusCode, packet
}

func restAck(t *testing.T, n *engine.Node, uaids ...string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"uaids": uaids})
	if resp, body := do(t, http.MethodPost, "http://"+n.HTTPAddr().String()+"/v1/ack", "application/json", string(b)); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("POST /v1/ack: %s %s", resp.Status, body)
	}
}

func TestRESTRegisterPollAck(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.LockWait = 50 * time.Millisecond })
	chid := newUUID()
	uaid, ep := restRegister(t, n, "", chid)

	if st, _ := poll(t, n, "uaid="+uaid); st != http.StatusNoContent {
		t.Fatalf("poll with nothing pending: %d, want 204", st)
	}
	if st := putVersion(t, ep, 5); st != http.StatusAccepted {
		t.Fatalf("PUT for a REST client: %d, want 202", st)
	}
	st, packet := poll(t, n, "uaid="+uaid)
	if st != http.StatusOK || packet[uaid][chid] != 5 {
		t.Fatalf("poll: %d %v, want {%s:{%s:5}}", st, packet, uaid, chid)
	}

	// In flight until acked: PUTs wait, then 503; polls do not resend.
	if st := putVersion(t, ep, 6); st != http.StatusServiceUnavailable {
		t.Fatalf("PUT while the poll's versions are in flight: %d, want 503", st)
	}
	if st, packet := poll(t, n, "uaid="+uaid); st != http.StatusNoContent {
		t.Fatalf("poll while in flight: %d %v, want 204", st, packet)
	}

	restAck(t, n, uaid)
	if st := putVersion(t, ep, 7); st != http.StatusAccepted {
		t.Fatalf("PUT after the ack: %d, want 202", st)
	}
	if st, packet := poll(t, n, "uaid="+uaid); st != http.StatusOK || packet[uaid][chid] != 7 {
		t.Fatalf("poll after the ack: %d %v, want version 7", st, packet)
	}
}

func TestRESTPollManyUAIDsIsOnePacket(t *testing.T) {
	n := testNode(t, nil)
	a, b := newUUID(), newUUID()
	ua, epa := restRegister(t, n, "", a)
	ub, epb := restRegister(t, n, "", b)
	putVersion(t, epa, 1)
	putVersion(t, epb, 2)
	st, packet := poll(t, n, "uaid="+ua+"&uaid="+ub+"&uaid=not-a-uuid")
	if st != http.StatusOK || packet[ua][a] != 1 || packet[ub][b] != 2 || len(packet) != 2 {
		t.Fatalf("poll of two UAIDs: %d %v", st, packet)
	}
}

func TestRESTLongPollAnswersWhenAVersionArrives(t *testing.T) {
	n := testNode(t, nil)
	chid := newUUID()
	uaid, ep := restRegister(t, n, "", chid)

	type result struct {
		st     int
		packet map[string]map[string]uint64
	}
	done := make(chan result, 1)
	go func() {
		resp, body := doNoFatal(http.MethodGet, "http://"+n.HTTPAddr().String()+"/v1/updates?wait=30s&uaid="+uaid)
		var r result
		r.st = resp
		_ = json.Unmarshal(body, &r.packet)
		done <- r
	}()
	// The poll is waiting: it answers only once the PUT comes.
	select {
	case r := <-done:
		t.Fatalf("long poll answered %d before any version", r.st)
	case <-time.After(300 * time.Millisecond):
	}
	putVersion(t, ep, 9)
	select {
	case r := <-done:
		if r.st != http.StatusOK || r.packet[uaid][chid] != 9 {
			t.Fatalf("long poll: %d %v, want version 9", r.st, r.packet)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("long poll did not answer after the PUT")
	}
	// A long poll with nothing arriving ends with 204 after its wait.
	if st, _ := poll(t, n, "wait=200ms&uaid="+newUUID()); st != http.StatusNoContent {
		t.Fatalf("long poll that times out: %d, want 204", st)
	}
}

func TestRESTUnregister(t *testing.T) {
	n := testNode(t, nil)
	chid := newUUID()
	uaid, ep := restRegister(t, n, "", chid)
	putVersion(t, ep, 3)
	if resp, _ := do(t, http.MethodDelete, "http://"+n.HTTPAddr().String()+"/v1/register/"+uaid+"/"+chid, "", ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %s, want 204", resp.Status)
	}
	if st := putVersion(t, ep, 4); st != http.StatusNotFound {
		t.Fatalf("PUT after unregister: %d, want 404", st)
	}
	if st, packet := poll(t, n, "uaid="+uaid); st != http.StatusNoContent {
		t.Fatalf("poll after unregister: %d %v, want 204 (pending version dropped)", st, packet)
	}
	// Unknown or malformed: still 204.
	if resp, _ := do(t, http.MethodDelete, "http://"+n.HTTPAddr().String()+"/v1/register/x/y", "", ""); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE of garbage: %s, want 204", resp.Status)
	}
}

func TestRESTUnackedVersionsAreOfferedAgainAfterAckTimeout(t *testing.T) {
	n := testNode(t, func(cfg *engine.Config) { cfg.AckTimeout = 100 * time.Millisecond })
	chid := newUUID()
	uaid, ep := restRegister(t, n, "", chid)
	putVersion(t, ep, 5)
	if st, _ := poll(t, n, "uaid="+uaid); st != http.StatusOK {
		t.Fatalf("first poll: %d", st)
	}
	eventually(t, 10*time.Second, func() bool {
		st, packet := poll(t, n, "uaid="+uaid)
		return st == http.StatusOK && packet[uaid][chid] == 5
	}, "the unacked version to be offered again")
}

func TestRESTBadRequests(t *testing.T) {
	n := testNode(t, nil)
	base := "http://" + n.HTTPAddr().String()
	for _, tc := range []struct {
		method, path, body string
		want               int
	}{
		{http.MethodPost, "/v1/register", `{"channelID":"nope"}`, 400},
		{http.MethodPost, "/v1/register", `not json`, 400},
		{http.MethodGet, "/v1/updates", ``, 400},
		{http.MethodGet, "/v1/updates?uaid=" + newUUID() + "&wait=soon", ``, 400},
		{http.MethodPost, "/v1/ack", `[1]`, 400},
		{http.MethodGet, "/v1/register", ``, 405},
		{http.MethodPut, "/v1/updates?uaid=" + newUUID(), ``, 405},
		{http.MethodGet, "/v1/other", ``, 404},
	} {
		resp, body := do(t, tc.method, base+tc.path, "application/json", tc.body)
		if resp.StatusCode != tc.want {
			t.Errorf("%s %s %s: %s, want %d", tc.method, tc.path, tc.body, resp.Status, tc.want)
		}
		if tc.want != 405 && !strings.Contains(string(body), `"errno"`) {
			t.Errorf("%s %s: body %s is not the JSON error", tc.method, tc.path, body)
		}
	}
}

// doNoFatal is a GET usable from a goroutine (no t.Fatal).
func doNoFatal(method, url string) (int, []byte) {
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, nil
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}
