package engine_test

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/engine"
)

// This file holds harness helpers beyond node_test.go: a raw WebSocket
// client with its own frame encoder (for byte-level cases the gorilla
// client cannot produce), HTTP helpers for the ingest listener, and metric
// reads for readiness polling.

// WebSocket opcodes (RFC 6455 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// wsFrame is one frame as the test writes it. Client frames must be
// masked; masked false produces a frame the server has to refuse.
type wsFrame struct {
	fin     bool
	rsv     byte // the three RSV bits, 0..7
	op      byte
	masked  bool
	payload []byte
}

// text is a final, masked text frame.
func text(s string) wsFrame { return wsFrame{fin: true, op: opText, masked: true, payload: []byte(s)} }

// encode writes the frame in RFC 6455 wire form.
func (f wsFrame) encode() []byte {
	var b []byte
	b0 := f.op & 0x0f
	b0 |= (f.rsv & 7) << 4
	if f.fin {
		b0 |= 0x80
	}
	b = append(b, b0)
	var mask byte
	if f.masked {
		mask = 0x80
	}
	switch n := len(f.payload); {
	case n < 126:
		b = append(b, mask|byte(n))
	case n <= 0xffff:
		b = append(b, mask|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !f.masked {
		return append(b, f.payload...)
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	b = append(b, key[:]...)
	for i, c := range f.payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// closePayload is a close frame body: code and reason.
func closePayload(code int, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// rawClient is a test device speaking bytes over a TCP connection.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// dialTCP opens a TCP connection to the client listener; nothing is sent.
func dialTCP(t *testing.T, n *engine.Node) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", n.WSAddr().String(), 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// handshakeRequest is an opening handshake for path offering protocols.
func handshakeRequest(addr, path string, protocols ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, addr)
	b.WriteString("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")
	if len(protocols) > 0 {
		fmt.Fprintf(&b, "Sec-WebSocket-Protocol: %s\r\n", strings.Join(protocols, ", "))
	}
	b.WriteString("\r\n")
	return b.String()
}

// dialRaw opens a TCP connection and completes the opening handshake.
func dialRaw(t *testing.T, n *engine.Node) *rawClient {
	t.Helper()
	r := dialTCP(t, n)
	r.write([]byte(handshakeRequest(n.WSAddr().String(), "/", "push-notification")))
	r.expectUpgrade()
	return r
}

// write sends bytes as they are.
func (r *rawClient) write(b []byte) {
	r.t.Helper()
	_ = r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// trickle sends b one byte per write, so the server sees every split.
func (r *rawClient) trickle(b []byte) {
	r.t.Helper()
	for i := range b {
		r.write(b[i : i+1])
	}
}

// send writes frames in one write (so that a server that closes on one
// of them cannot make a later write fail).
func (r *rawClient) send(frames ...wsFrame) {
	r.t.Helper()
	var b []byte
	for _, f := range frames {
		b = append(b, f.encode()...)
	}
	r.write(b)
}

// expectUpgrade reads the handshake response and checks it is a 101.
func (r *rawClient) expectUpgrade() *http.Response {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("reading handshake response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		r.t.Fatalf("handshake answered %s, want 101", resp.Status)
	}
	return resp
}

// readFrame reads one server frame. Server frames must not be masked.
func (r *rawClient) readFrame() (wsFrame, error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return wsFrame{}, err
	}
	f := wsFrame{fin: h[0]&0x80 != 0, rsv: (h[0] >> 4) & 7, op: h[0] & 0x0f, masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var ext [2]byte
		if _, err := io.ReadFull(r.br, ext[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(ext[:]))
	case 127:
		var ext [8]byte
		if _, err := io.ReadFull(r.br, ext[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(ext[:])
	}
	if f.masked {
		return f, errors.New("server sent a masked frame")
	}
	if n > 1<<20 {
		return f, fmt.Errorf("server frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// expectFrame reads the next frame and checks its opcode.
func (r *rawClient) expectFrame(op byte) wsFrame {
	r.t.Helper()
	f, err := r.readFrame()
	if err != nil {
		r.t.Fatalf("want frame with opcode %#x: %v", op, err)
	}
	if f.op != op {
		r.t.Fatalf("got frame opcode %#x payload %q, want opcode %#x", f.op, f.payload, op)
	}
	return f
}

// expectMessage reads a text frame and decodes it as a JSON object.
func (r *rawClient) expectMessage() map[string]any {
	r.t.Helper()
	f := r.expectFrame(opText)
	var m map[string]any
	if err := json.Unmarshal(f.payload, &m); err != nil {
		r.t.Fatalf("%q is not a JSON object: %v", f.payload, err)
	}
	return m
}

// expectClose reads frames until a close frame, checks its code, and then
// checks that the server ends the TCP connection.
func (r *rawClient) expectClose(code int) {
	r.t.Helper()
	for {
		f, err := r.readFrame()
		if err != nil {
			r.t.Fatalf("want close frame %d: %v", code, err)
		}
		if f.op != opClose {
			continue
		}
		if len(f.payload) < 2 {
			r.t.Fatalf("close frame without a code, want %d", code)
		}
		if got := int(binary.BigEndian.Uint16(f.payload)); got != code {
			r.t.Fatalf("close code %d (%q), want %d", got, f.payload[2:], code)
		}
		r.expectEOF()
		return
	}
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// expectEOF checks that the server closes the TCP connection (with nothing
// but, possibly, a close frame before it) before a generous deadline.
func (r *rawClient) expectEOF() {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		b, err := r.br.ReadByte()
		if err == nil {
			// Drain a close frame or anything else the server flushes.
			_ = b
			continue
		}
		if isTimeout(err) {
			r.t.Fatalf("server did not close the connection")
		}
		return // EOF or reset: closed
	}
}

// hello says a single-UAID hello over the raw connection.
func (r *rawClient) hello(uaid string) string {
	r.t.Helper()
	r.send(text(fmt.Sprintf(`{"messageType":"hello","uaid":%q,"channelIDs":[]}`, uaid)))
	m := r.expectMessage()
	if m["messageType"] != "hello" || m["status"] != float64(200) {
		r.t.Fatalf("hello answered %v", m)
	}
	return m["uaid"].(string)
}

// dialPlain dials with gorilla, offering no sub-protocol.
func dialPlain(t *testing.T, n *engine.Node) (*wsClient, *http.Response) {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial("ws://"+n.WSAddr().String()+"/", nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return &wsClient{t: t, conn: conn}, resp
}

// barrier returns once every message the client sent before it has been
// carried out: a connection's messages are handled in order, and an
// idempotent register of an existing channel (chid) is answered.
func (c *wsClient) barrier(chid string) {
	c.t.Helper()
	c.register(chid)
}

// ackDone acknowledges a version and waits until the server has carried
// the ack out, so that a PUT right after it does not race the ack.
func (c *wsClient) ackDone(chid string, version uint64) {
	c.t.Helper()
	c.ack(chid, version)
	c.barrier(chid)
}

// closeNow closes the client's TCP connection without a close handshake.
func (c *wsClient) closeNow() { c.conn.Close() }

// sendMulti says a multi-UAID hello and returns the reply's UAIDs.
func (c *wsClient) helloMulti(uaids ...string) []string {
	c.t.Helper()
	c.send(map[string]any{"messageType": "hello", "uaids": uaids})
	m := c.expect("hello", 200)
	raw, ok := m["uaids"].([]any)
	if !ok {
		c.t.Fatalf("multi hello reply without uaids: %v", m)
	}
	out := make([]string, len(raw))
	for i, u := range raw {
		out[i] = u.(string)
	}
	return out
}

// expectUpdate reads a multi-UAID update and returns it as
// uaid -> channelID -> version.
func (c *wsClient) expectUpdate() map[string]map[string]uint64 {
	c.t.Helper()
	m := c.expect("update", 0)
	ups, ok := m["updates"].(map[string]any)
	if !ok {
		c.t.Fatalf("update without an updates object: %v", m)
	}
	out := map[string]map[string]uint64{}
	for u, chans := range ups {
		out[u] = map[string]uint64{}
		for ch, v := range chans.(map[string]any) {
			out[u][ch] = uint64(v.(float64))
		}
	}
	return out
}

// httpClient bounds every request of the helpers here, so that a server
// that never answers fails the test instead of hanging it.
var httpClient = &http.Client{Timeout: 30 * time.Second}

// do sends an HTTP request and returns the response with its body read.
func do(t *testing.T, method, url, contentType, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// checkErrorBody checks the JSON error body of PROTOCOL.md 3.
func checkErrorBody(t *testing.T, status int, body map[string]any) {
	t.Helper()
	if body == nil {
		t.Fatalf("status %d without a JSON error body", status)
	}
	for _, k := range []string{"code", "errno", "error", "message"} {
		if _, ok := body[k]; !ok {
			t.Fatalf("error body %v lacks %q", body, k)
		}
	}
	if body["code"] != float64(status) {
		t.Fatalf("error body code %v, want %d", body["code"], status)
	}
	if _, ok := body["errno"].(float64); !ok {
		t.Fatalf("error body errno %v is not a number", body["errno"])
	}
	if body["error"] != http.StatusText(status) {
		t.Fatalf("error body error %v, want %q", body["error"], http.StatusText(status))
	}
	if s, _ := body["message"].(string); s == "" {
		t.Fatalf("error body message %v is empty", body["message"])
	}
}

// metric returns the value of one series of the node's /metrics, e.g.
// `pushd_puts_total{status="200"}`; ok is false when the series is absent.
func metric(t *testing.T, n *engine.Node, series string) (v float64, ok bool) {
	t.Helper()
	resp, body := do(t, http.MethodGet, "http://"+n.HTTPAddr().String()+"/metrics", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	for _, line := range strings.Split(string(body), "\n") {
		rest, found := strings.CutPrefix(line, series+" ")
		if !found {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		return v, true
	}
	return 0, false
}

// waitConnected waits until the node counts want UAIDs as connected, so
// that a test can tell a disconnect has been carried out.
func waitConnected(t *testing.T, n *engine.Node, want int) {
	t.Helper()
	eventually(t, 10*time.Second, func() bool {
		v, _ := metric(t, n, "pushd_uaids_connected")
		return v == float64(want)
	}, fmt.Sprintf("%d connected UAIDs", want))
}

// newUUID returns a fresh UUID4 in canonical form.
func newUUID() string { return uuid.NewString() }
