package cluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var transportKey = []byte("pushd test cluster key, 32 bytes")

// transportLog collects a Transport's logs as text, for tests that check what
// was logged.
type transportLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *transportLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *transportLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *transportLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// startTransport starts a Transport on a free loopback port and closes it
// when the test ends. mods adjust the config.
func startTransport(tb testing.TB, name string, h Handler, mods ...func(*TransportConfig)) *Transport {
	tb.Helper()
	cfg := TransportConfig{Name: name, Key: transportKey, Handler: h}
	for _, m := range mods {
		m(&cfg)
	}
	tr, err := NewTransport(cfg)
	if err != nil {
		tb.Fatalf("NewTransport(%s): %v", name, err)
	}
	tb.Cleanup(func() { tr.Close() })
	return tr
}

func withTransportKey(key []byte) func(*TransportConfig) {
	return func(c *TransportConfig) { c.Key = key }
}

func withTransportLog(l *transportLog) func(*TransportConfig) {
	return func(c *TransportConfig) { c.Logger = l.logger() }
}

func echoHandler(_ context.Context, _ string, _ uint8, req []byte) ([]byte, error) {
	return req, nil
}

// checkTransportLeaks fails the test if goroutines started during it are still
// running once its cleanups (the Transports' Close) have run. Call it first.
func checkTransportLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		ok := transportPoll(5*time.Second, func() bool { return runtime.NumGoroutine() <= before })
		if !ok {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutines: %d before, %d after Close\n%s", before, runtime.NumGoroutine(), buf)
		}
	})
}

// poll calls f until it returns true or d passes, and reports whether it
// returned true.
func transportPoll(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if f() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func transportWait(t *testing.T, what string, f func() bool) {
	t.Helper()
	if !transportPoll(10*time.Second, f) {
		t.Fatalf("timed out waiting for %s", what)
	}
}

func transportCallCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// pendingCalls counts the calls tr's connections to addr still track.
func pendingCalls(tr *Transport, addr string) int {
	n := 0
	for _, s := range tr.peer(addr).slots {
		if c := s.conn.Load(); c != nil {
			c.mu.Lock()
			n += len(c.mu.pending)
			c.mu.Unlock()
		}
	}
	return n
}

func TestTransportEcho(t *testing.T) {
	checkTransportLeaks(t)
	type seen struct {
		from   string
		method uint8
	}
	got := make(chan seen, 2)
	b := startTransport(t, "b", func(ctx context.Context, from string, method uint8, req []byte) ([]byte, error) {
		got <- seen{from, method}
		return append([]byte("echo:"), req...), nil
	})
	a := startTransport(t, "a", nil)

	resp, err := a.Call(transportCallCtx(t), b.Addr(), 7, []byte("hello"))
	if err != nil || string(resp) != "echo:hello" {
		t.Fatalf("Call = %q, %v; want \"echo:hello\"", resp, err)
	}
	if s := <-got; s != (seen{"a", 7}) {
		t.Fatalf("handler saw %+v, want from a, method 7", s)
	}
	resp, err = a.Call(transportCallCtx(t), b.Addr(), 0, nil)
	if err != nil || string(resp) != "echo:" {
		t.Fatalf("empty Call = %q, %v", resp, err)
	}
}

func TestTransportConcurrentCalls(t *testing.T) {
	checkTransportLeaks(t)
	b := startTransport(t, "b", func(_ context.Context, _ string, method uint8, req []byte) ([]byte, error) {
		return fmt.Appendf(nil, "%d/%s", method, req), nil
	})
	a := startTransport(t, "a", nil)

	const calls = 1000
	ctx := transportCallCtx(t)
	errs := make(chan error, calls)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Go(func() {
			req := fmt.Sprintf("req-%d", i)
			resp, err := a.Call(ctx, b.Addr(), uint8(i), []byte(req))
			if want := fmt.Sprintf("%d/%s", uint8(i), req); err != nil || string(resp) != want {
				errs <- fmt.Errorf("call %d = %q, %v; want %q", i, resp, err, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := pendingCalls(a, b.Addr()); n != 0 {
		t.Errorf("%d calls still pending after all answered", n)
	}
	// Calls spread over ConnsPerPeer (2) connections.
	for i, s := range a.peer(b.Addr()).slots {
		if s.conn.Load() == nil {
			t.Errorf("connection %d of %d was never dialled", i, DefaultConnsPerPeer)
		}
	}
}

func TestTransportRemoteError(t *testing.T) {
	checkTransportLeaks(t)
	b := startTransport(t, "b", func(_ context.Context, _ string, method uint8, req []byte) ([]byte, error) {
		if method == 1 {
			return nil, fmt.Errorf("no such uaid %s", req)
		}
		return req, nil
	})
	a := startTransport(t, "a", nil)

	_, err := a.Call(transportCallCtx(t), b.Addr(), 1, []byte("u1"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "no such uaid u1" {
		t.Fatalf("Call error = %v; want *RemoteError \"no such uaid u1\"", err)
	}
	// The connection survives a handler error.
	if resp, err := a.Call(transportCallCtx(t), b.Addr(), 2, []byte("ok")); err != nil || string(resp) != "ok" {
		t.Fatalf("Call after RemoteError = %q, %v", resp, err)
	}
}

func TestTransportWrongKey(t *testing.T) {
	other := []byte("another cluster's key, 32 bytes!")
	for _, tc := range []struct {
		name                 string
		clientKey, serverKey []byte
	}{
		{"client key differs", other, transportKey},
		{"server key differs", transportKey, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkTransportLeaks(t)
			var served atomic.Int32
			var blog, alog transportLog
			b := startTransport(t, "b", func(context.Context, string, uint8, []byte) ([]byte, error) {
				served.Add(1)
				return nil, nil
			}, withTransportKey(tc.serverKey), withTransportLog(&blog))
			a := startTransport(t, "a", nil, withTransportKey(tc.clientKey), withTransportLog(&alog))

			for range 3 {
				_, err := a.Call(transportCallCtx(t), b.Addr(), 1, []byte("x"))
				if !errors.Is(err, ErrUnavailable) {
					t.Fatalf("Call error = %v; want ErrUnavailable", err)
				}
			}
			if n := served.Load(); n != 0 {
				t.Fatalf("handler ran %d times", n)
			}
			if l := alog.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "remote="+b.Addr()) {
				t.Errorf("client log lacks a warning naming %s:\n%s", b.Addr(), l)
			}
			// The server saw the client hang up before its proof.
			transportWait(t, "server warning", func() bool { return strings.Contains(blog.String(), "level=WARN") })
			for _, l := range []string{alog.String(), blog.String()} {
				if strings.Contains(l, string(transportKey)) || strings.Contains(l, string(other)) {
					t.Errorf("log shows a key:\n%s", l)
				}
			}
		})
	}
}

// rawPeer is a hand-driven TCP client, for feeding a Transport what a pushd
// node never sends.
type rawPeer struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawPeer{t: t, nc: nc, r: bufio.NewReader(nc)}
}

func (p *rawPeer) send(b []byte) {
	p.t.Helper()
	if _, err := p.nc.Write(b); err != nil {
		p.t.Fatalf("send: %v", err)
	}
}

// handshake runs the client side of the handshake with key and returns the
// server's hello. If proof is false it stops before sending its proof.
func (p *rawPeer) handshake(key []byte, proof bool) hello {
	p.t.Helper()
	mine := newHello("raw")
	p.send(appendHello(nil, &mine))
	theirs, err := readHello(p.r)
	if err != nil {
		p.t.Fatalf("server hello: %v", err)
	}
	if _, err := readProof(p.r); err != nil {
		p.t.Fatalf("server proof: %v", err)
	}
	if proof {
		mac := handshakeMAC(key, labelClient, &theirs.nonce, &mine.nonce, mine.name, theirs.name)
		p.send(mac[:])
	}
	return theirs
}

// expectClosed reads until the server closes the connection.
func (p *rawPeer) expectClosed() {
	p.t.Helper()
	_, err := io.Copy(io.Discard, p.r)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		p.t.Fatalf("server did not close the connection")
	}
}

func rawFrame(length uint32, kind frameKind, id uint64, payload []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, length)
	b = append(b, byte(kind))
	b = binary.BigEndian.AppendUint64(b, id)
	b = append(b, 1)
	return append(b, payload...)
}

func TestTransportBadInput(t *testing.T) {
	checkTransportLeaks(t)
	var served atomic.Int32
	var blog transportLog
	b := startTransport(t, "b", func(_ context.Context, _ string, _ uint8, req []byte) ([]byte, error) {
		served.Add(1)
		return req, nil
	}, withTransportLog(&blog), func(c *TransportConfig) { c.MaxFrame = 1024 })
	a := startTransport(t, "a", nil, func(c *TransportConfig) { c.MaxFrame = 1024 })

	for _, tc := range []struct {
		name string
		feed func(p *rawPeer)
	}{
		{"garbage", func(p *rawPeer) {
			p.send([]byte("GET / HTTP/1.1\r\nHost: pushd\r\n\r\n"))
		}},
		{"wrong version", func(p *rawPeer) {
			h := newHello("raw")
			msg := appendHello(nil, &h)
			msg[4] = 99
			p.send(msg)
		}},
		{"empty name", func(p *rawPeer) {
			p.send(append([]byte("pshd\x01\x00"), make([]byte, nonceLen)...))
		}},
		{"truncated hello", func(p *rawPeer) {
			h := newHello("raw")
			p.send(appendHello(nil, &h)[:20])
			p.nc.(*net.TCPConn).CloseWrite()
		}},
		{"wrong proof", func(p *rawPeer) {
			p.handshake([]byte("not the cluster key, not at all!"), true)
		}},
		{"truncated proof", func(p *rawPeer) {
			p.handshake(transportKey, false)
			p.send([]byte{1, 2, 3})
			p.nc.(*net.TCPConn).CloseWrite()
		}},
		{"oversized length", func(p *rawPeer) {
			p.handshake(transportKey, true)
			p.send(rawFrame(1<<31, kindRequest, 1, nil))
		}},
		{"length below header", func(p *rawPeer) {
			p.handshake(transportKey, true)
			p.send(rawFrame(3, kindRequest, 1, nil))
		}},
		{"answer sent to server", func(p *rawPeer) {
			p.handshake(transportKey, true)
			p.send(rawFrame(frameFixedLen, kindResponse, 1, nil))
		}},
		{"unknown kind", func(p *rawPeer) {
			p.handshake(transportKey, true)
			p.send(rawFrame(frameFixedLen, 77, 1, nil))
		}},
		{"truncated frame", func(p *rawPeer) {
			p.handshake(transportKey, true)
			p.send(rawFrame(frameFixedLen+100, kindRequest, 1, []byte("short")))
			p.nc.(*net.TCPConn).CloseWrite()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dialRaw(t, b.Addr())
			tc.feed(p)
			p.expectClosed()
			// Others are still served.
			if resp, err := a.Call(transportCallCtx(t), b.Addr(), 1, []byte("still here")); err != nil || string(resp) != "still here" {
				t.Fatalf("Call after %s = %q, %v", tc.name, resp, err)
			}
		})
	}
	if n := served.Load(); n != 11 {
		t.Errorf("handler ran %d times, want 11 (only the good calls)", n)
	}
	// Every bad connection but the truncated frame (a peer may die
	// mid-frame) is a warning.
	if l := blog.String(); strings.Count(l, "level=WARN") < 10 {
		t.Errorf("want a warning per bad connection, got:\n%s", l)
	}
}

// A raw client that sends well-formed requests is served like a node: the
// frame layout in the doc comment is the one on the wire.
func TestTransportRawRequest(t *testing.T) {
	checkTransportLeaks(t)
	b := startTransport(t, "b", func(_ context.Context, from string, method uint8, req []byte) ([]byte, error) {
		if method == 2 {
			return nil, errors.New("nope")
		}
		return fmt.Appendf(nil, "%s:%d:%s", from, method, req), nil
	})
	p := dialRaw(t, b.Addr())
	if h := p.handshake(transportKey, true); h.name != "b" {
		t.Fatalf("server name %q", h.name)
	}
	req := appendFrame(nil, kindRequest, 41, 1, []byte("ping"))
	req = appendFrame(req, kindRequest, 42, 2, []byte("fail"))
	p.send(req)
	got := map[uint64]string{}
	var hdr [frameHeaderLen]byte
	for range 2 {
		fh, payload, err := readFrame(p.r, &hdr, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		got[fh.id] = fmt.Sprintf("%d %d %s", fh.kind, fh.method, payload)
	}
	want := map[uint64]string{41: "2 1 raw:1:ping", 42: "3 2 nope"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("answers %v, want %v", got, want)
	}
}

func TestTransportPeerCloseAndRedial(t *testing.T) {
	checkTransportLeaks(t)
	var started atomic.Int32
	blocking := func(ctx context.Context, _ string, method uint8, req []byte) ([]byte, error) {
		if method == 1 {
			started.Add(1)
			<-ctx.Done()
			return nil, ctx.Err()
		}
		return req, nil
	}
	b := startTransport(t, "b", blocking)
	a := startTransport(t, "a", nil)
	addr := b.Addr()

	const waiting = 20
	errs := make(chan error, waiting)
	for range waiting {
		go func() {
			_, err := a.Call(context.Background(), addr, 1, nil)
			errs <- err
		}()
	}
	transportWait(t, "handlers to start", func() bool { return started.Load() == waiting })
	closed := time.Now()
	b.Close()
	for range waiting {
		if err := <-errs; !errors.Is(err, ErrUnavailable) {
			t.Fatalf("waiting Call error = %v; want ErrUnavailable", err)
		}
	}
	if d := time.Since(closed); d > 2*time.Second {
		t.Errorf("waiting calls took %v to fail", d)
	}
	// While b is down calls fail fast.
	start := time.Now()
	if _, err := a.Call(transportCallCtx(t), addr, 2, nil); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Call to a dead peer = %v; want ErrUnavailable", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Call to a dead peer took %v", d)
	}

	startTransport(t, "b", blocking, func(c *TransportConfig) { c.Addr = addr })
	transportWait(t, "calls to succeed after redial", func() bool {
		resp, err := a.Call(transportCallCtx(t), addr, 2, []byte("back"))
		return err == nil && string(resp) == "back"
	})
}

func TestTransportDeadline(t *testing.T) {
	checkTransportLeaks(t)
	release := make(chan struct{})
	answered := make(chan struct{})
	b := startTransport(t, "b", func(ctx context.Context, _ string, method uint8, req []byte) ([]byte, error) {
		if method == 1 {
			defer close(answered)
			<-release
			return []byte("too late"), nil
		}
		return req, nil
	})
	a := startTransport(t, "a", nil)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Call(ctx, b.Addr(), 1, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call error = %v; want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Call returned %v after a 100ms deadline", d)
	}
	if n := pendingCalls(a, b.Addr()); n != 0 {
		t.Errorf("%d calls pending after the deadline", n)
	}
	// The late answer is dropped and the connection keeps working.
	close(release)
	<-answered
	for range 3 {
		if resp, err := a.Call(transportCallCtx(t), b.Addr(), 2, []byte("next")); err != nil || string(resp) != "next" {
			t.Fatalf("Call after late answer = %q, %v", resp, err)
		}
	}
}

func TestTransportDialDeadline(t *testing.T) {
	checkTransportLeaks(t)
	// A listener that accepts and never answers the handshake.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var accepted sync.WaitGroup
	accepted.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
		}
	})
	t.Cleanup(func() { ln.Close(); accepted.Wait() })
	a := startTransport(t, "a", nil)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := a.Call(ctx, ln.Addr().String(), 1, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call error = %v; want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Call returned %v after a 100ms deadline", d)
	}
}

func TestTransportUnreachable(t *testing.T) {
	checkTransportLeaks(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	a := startTransport(t, "a", nil)
	start := time.Now()
	for range 5 {
		if _, err := a.Call(context.Background(), addr, 1, nil); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Call error = %v; want ErrUnavailable", err)
		}
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("5 calls to a closed port took %v", d)
	}
}

func TestTransportClose(t *testing.T) {
	checkTransportLeaks(t)
	var started, ended atomic.Int32
	b := startTransport(t, "b", func(ctx context.Context, _ string, _ uint8, _ []byte) ([]byte, error) {
		started.Add(1)
		<-ctx.Done()
		time.Sleep(20 * time.Millisecond) // Close must wait for this
		ended.Add(1)
		return nil, ctx.Err()
	})
	a := startTransport(t, "a", nil)
	c := startTransport(t, "c", nil)

	// a's own Close fails its waiting calls with ErrClosed.
	errs := make(chan error, 10)
	for range 10 {
		go func() {
			_, err := a.Call(context.Background(), b.Addr(), 1, nil)
			errs <- err
		}()
	}
	transportWait(t, "handlers to start", func() bool { return started.Load() == 10 })
	a.Close()
	for range 10 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Fatalf("waiting Call error = %v; want ErrClosed", err)
		}
	}
	if _, err := a.Call(context.Background(), b.Addr(), 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close = %v; want ErrClosed", err)
	}
	a.Close() // again: no-op

	// b's Close cancels its running handlers and waits for them.
	go c.Call(context.Background(), b.Addr(), 1, nil)
	transportWait(t, "handlers to start", func() bool { return started.Load() == 11 })
	b.Close()
	if n := ended.Load(); n != 11 {
		t.Fatalf("Close returned with %d of 11 handlers finished", n)
	}
}

func TestTransportBatchedWrites(t *testing.T) {
	checkTransportLeaks(t)
	b := startTransport(t, "b", echoHandler)
	a := startTransport(t, "a", nil, func(c *TransportConfig) { c.ConnsPerPeer = 1 })
	ctx := transportCallCtx(t)
	if _, err := a.Call(ctx, b.Addr(), 1, nil); err != nil { // dial
		t.Fatal(err)
	}
	// The writers count a write after it returns, which can be after
	// its answer arrived.
	transportWait(t, "the first write to be counted", func() bool {
		return a.stats.framesSent.Load() == 1 && b.stats.framesSent.Load() == 1
	})
	framesBefore, writesBefore := a.stats.framesSent.Load(), a.stats.writes.Load()
	bFrames, bWrites := b.stats.framesSent.Load(), b.stats.writes.Load()

	const calls = 1000
	go1 := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range calls {
		wg.Go(func() {
			<-go1
			req := fmt.Appendf(nil, "%d", i)
			if resp, err := a.Call(ctx, b.Addr(), 1, req); err != nil || !bytes.Equal(resp, req) {
				failed.Add(1)
			}
		})
	}
	close(go1)
	wg.Wait()
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d calls failed", n)
	}
	transportWait(t, "the writes to be counted", func() bool {
		return a.stats.framesSent.Load()-framesBefore == calls && b.stats.framesSent.Load()-bFrames == calls
	})
	frames := a.stats.framesSent.Load() - framesBefore
	writes := a.stats.writes.Load() - writesBefore
	t.Logf("requests: %d frames in %d writes; responses: %d frames in %d writes",
		frames, writes, b.stats.framesSent.Load()-bFrames, b.stats.writes.Load()-bWrites)
	if frames != calls || writes >= calls {
		t.Fatalf("%d request frames in %d writes; want %d frames in fewer writes", frames, writes, calls)
	}
}

func TestTransportTooLarge(t *testing.T) {
	checkTransportLeaks(t)
	small := func(c *TransportConfig) { c.MaxFrame = 1000 }
	b := startTransport(t, "b", func(_ context.Context, _ string, _ uint8, req []byte) ([]byte, error) {
		return bytes.Repeat(req, 2), nil
	}, small)
	a := startTransport(t, "a", nil, small)

	if _, err := a.Call(transportCallCtx(t), b.Addr(), 1, make([]byte, 1001)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large request error = %v; want ErrTooLarge", err)
	}
	var re *RemoteError
	if _, err := a.Call(transportCallCtx(t), b.Addr(), 1, make([]byte, 600)); !errors.As(err, &re) {
		t.Fatalf("large response error = %v; want *RemoteError", err)
	}
	if resp, err := a.Call(transportCallCtx(t), b.Addr(), 1, make([]byte, 500)); err != nil || len(resp) != 1000 {
		t.Fatalf("Call at MaxFrame = %d bytes, %v", len(resp), err)
	}
}

func TestTransportConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  TransportConfig
	}{
		{"no name", TransportConfig{Key: transportKey}},
		{"long name", TransportConfig{Name: strings.Repeat("n", 256), Key: transportKey}},
		{"short key", TransportConfig{Name: "a", Key: []byte("short")}},
		{"negative MaxFrame", TransportConfig{Name: "a", Key: transportKey, MaxFrame: -1}},
		{"bad address", TransportConfig{Name: "a", Key: transportKey, Addr: "127.0.0.1:x"}},
	} {
		if tr, err := NewTransport(tc.cfg); err == nil {
			tr.Close()
			t.Errorf("%s: NewTransport accepted it", tc.name)
		}
	}
}
