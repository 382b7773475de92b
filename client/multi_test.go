package client_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/client"
)

// scriptedUpstream is a WebSocket server that plays a misbehaving pushd:
// answer decides, per message, after how long to send which reply (nil:
// never). It counts the connections it accepted, and sends on written
// (when not nil) after each delayed reply it wrote or failed to write.
type scriptedUpstream struct {
	conns   atomic.Int32
	answer  func(msg map[string]any) (delay time.Duration, reply map[string]any)
	written chan struct{}
}

func (s *scriptedUpstream) start(t *testing.T) string {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		s.conns.Add(1)
		var wmu sync.Mutex
		for {
			var msg map[string]any
			if err := c.ReadJSON(&msg); err != nil {
				return
			}
			delay, reply := s.answer(msg)
			if reply == nil {
				continue
			}
			go func() {
				time.Sleep(delay)
				wmu.Lock()
				_ = c.WriteJSON(reply)
				wmu.Unlock()
				if delay > 0 && s.written != nil {
					s.written <- struct{}{}
				}
			}()
		}
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}

func runMulti(t *testing.T, url string) *client.Multi {
	m, err := client.NewMulti(client.MultiConfig{
		URL:            url,
		UAIDs:          func() ([]uuid.UUID, error) { return []uuid.UUID{uuid.New()}, nil },
		MinBackoff:     20 * time.Millisecond,
		MaxBackoff:     50 * time.Millisecond,
		RequestTimeout: 300 * time.Millisecond,

		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// An upstream that takes the connection and then answers nothing: every
// Register still ends with its own context, none waits behind the
// connection's hello, and the client reconnects after its hello goes
// unanswered for the request timeout.
func TestMultiRequestsEndWithTheirContextWhenTheUpstreamIsSilent(t *testing.T) {
	up := &scriptedUpstream{answer: func(map[string]any) (time.Duration, map[string]any) { return 0, nil }}
	m := runMulti(t, up.start(t))
	for deadline := time.Now().Add(10 * time.Second); up.conns.Load() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client never connected")
		}
	}
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			_, err := m.Register(ctx, uuid.New(), uuid.New())
			errs <- err
		}()
	}
	for range 3 {
		select {
		case err := <-errs:
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, client.ErrNotConnected) {
				t.Errorf("Register: %v, want its context's deadline or not connected", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Register with a 200ms context still blocked after 10s")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); up.conns.Load() < 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the client did not reconnect after its hello went unanswered")
		}
	}
}

// A register reply that comes after its request gave up is not taken for
// the next register's: that one gets its own channel's endpoint, on the
// same connection.
func TestMultiLateReplyIsNotTakenForTheNextRequest(t *testing.T) {
	slow := uuid.NewString()
	up := &scriptedUpstream{answer: func(msg map[string]any) (time.Duration, map[string]any) {
		switch msg["messageType"] {
		case "hello":
			return 0, map[string]any{"messageType": "hello", "status": 200, "uaids": msg["uaids"]}
		case "register":
			chid, _ := msg["channelID"].(string)
			reply := map[string]any{"messageType": "register", "status": 200, "channelID": chid, "pushEndpoint": "http://push.invalid/" + chid}
			if chid == slow {
				return 500 * time.Millisecond, reply
			}
			return 0, reply
		}
		return 0, nil
	}}
	up.written = make(chan struct{}, 16)
	m := runMulti(t, up.start(t))
	uaid := uuid.New()
	register := func(chid string, timeout time.Duration) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return m.Register(ctx, uaid, uuid.MustParse(chid))
	}
	var err error
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err = register(slow, 200*time.Millisecond); errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slow register: %v, want its deadline", err)
		}
	}
	<-up.written // the late reply is out
	next := uuid.NewString()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		ep, err := register(next, 2*time.Second)
		if err == nil {
			if want := "http://push.invalid/" + next; ep != want {
				t.Fatalf("next register's endpoint %q, want %q", ep, want)
			}
			if n := up.conns.Load(); n != 1 {
				t.Errorf("%d connections: a slow reply made the client reconnect", n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("next register: %v", err)
		}
	}
}

// A hello reply that leaves UAIDs out (the server's connection is full)
// attaches only those it lists: a register for one left out says so, and
// the connection stays up.
func TestMultiUAIDLeftOutOfTheHelloIsNotAttached(t *testing.T) {
	var hellos atomic.Int32
	up := &scriptedUpstream{answer: func(msg map[string]any) (time.Duration, map[string]any) {
		switch msg["messageType"] {
		case "hello":
			hellos.Add(1)
			return 0, map[string]any{"messageType": "hello", "status": 200, "uaids": []string{}}
		case "register":
			return 0, map[string]any{"messageType": "register", "status": 401, "error": "invalid uaid"}
		}
		return 0, nil
	}}
	m := runMulti(t, up.start(t))
	u := uuid.New()
	for try := 0; try < 2; try++ {
		var err error
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, err = m.Register(ctx, u, uuid.New())
			cancel()
			if !errors.Is(err, client.ErrNotConnected) || time.Now().After(deadline) {
				break
			}
		}
		if !errors.Is(err, client.ErrUAIDsRefused) {
			t.Fatalf("register %d: %v, want ErrUAIDsRefused", try, err)
		}
	}
	if got := hellos.Load(); got != 3 { // the connection's own, then one per register
		t.Errorf("%d hellos, want 3: a UAID left out was taken as attached", got)
	}
	if n := up.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}
