package client_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/pushd/pushd/client"
	"github.com/pushd/pushd/engine"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// startNode starts a real node; wsAddr "127.0.0.1:0" picks a port.
func startNode(t *testing.T, dataDir, wsAddr string) *engine.Node {
	t.Helper()
	n, err := engine.New(engine.Config{WSAddr: wsAddr, HTTPAddr: "127.0.0.1:0", DataDir: dataDir, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Shutdown(context.Background()) })
	return n
}

// app records one app's callbacks.
type app struct {
	endpoints chan string
	versions  chan uint64
}

func newApp() *app { return &app{endpoints: make(chan string, 8), versions: make(chan uint64, 8)} }

func (a *app) callbacks() client.App {
	return client.App{
		OnEndpoint: func(ep string) { a.endpoints <- ep },
		OnVersion:  func(v uint64) { a.versions <- v },
	}
}

func (a *app) endpoint(t *testing.T) string {
	t.Helper()
	select {
	case ep := <-a.endpoints:
		return ep
	case <-time.After(10 * time.Second):
		t.Fatal("no endpoint")
	}
	return ""
}

func (a *app) version(t *testing.T, want uint64) {
	t.Helper()
	for {
		select {
		case v := <-a.versions:
			if v == want {
				return
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("version %d never came", want)
		}
	}
}

func runClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	cfg.Logger = quiet
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return c
}

// put PUTs version v to the endpoint's path on n.
func put(t *testing.T, n *engine.Node, endpoint string, v uint64) int {
	t.Helper()
	u, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+n.HTTPAddr().String()+u.Path, strings.NewReader(fmt.Sprintf("version=%d", v)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEndpointAndVersionCallbacks(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	c := runClient(t, client.Config{URL: "ws://" + n.WSAddr().String() + "/"})
	mail, chat := newApp(), newApp()
	if err := c.Register("mail", mail.callbacks()); err != nil {
		t.Fatal(err)
	}
	epMail := mail.endpoint(t)
	// An app registered while connected gets its endpoint at once.
	if err := c.Register("chat", chat.callbacks()); err != nil {
		t.Fatal(err)
	}
	epChat := chat.endpoint(t)
	if epMail == epChat {
		t.Fatal("two apps share an endpoint")
	}
	if st := put(t, n, epChat, 5); st != 200 {
		t.Fatalf("PUT: %d", st)
	}
	chat.version(t, 5)
	// The client acked: the next PUT is delivered, not held.
	deadline := time.Now().Add(10 * time.Second)
	for put(t, n, epChat, 6) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("PUT after the version callback is still refused")
		}
	}
	chat.version(t, 6)
}

func TestReconnectsAfterNodeRestartAndGetsStoredVersions(t *testing.T) {
	data := t.TempDir()
	n := startNode(t, data, "127.0.0.1:0")
	wsAddr := n.WSAddr().String()
	state := filepath.Join(t.TempDir(), "state.json")
	c := runClient(t, client.Config{URL: "ws://" + wsAddr + "/", StatePath: state, MinBackoff: 50 * time.Millisecond})
	a := newApp()
	if err := c.Register("app", a.callbacks()); err != nil {
		t.Fatal(err)
	}
	ep := a.endpoint(t)
	uaid := c.UAID()

	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, data, wsAddr) // same data, same address
	if st := put(t, n2, ep, 9); st != 200 && st != 202 {
		t.Fatalf("PUT to the restarted node: %d", st)
	}
	a.version(t, 9)
	if c.UAID() != uaid {
		t.Fatalf("UAID changed across a restart that kept the data: %s -> %s", uaid, c.UAID())
	}
	if got := a.endpoint(t); got != ep {
		t.Fatalf("endpoint after reconnect %s, want %s", got, ep)
	}
}

func TestUAIDResetReregistersEveryApp(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	wsAddr := n.WSAddr().String()
	c := runClient(t, client.Config{URL: "ws://" + wsAddr + "/", MinBackoff: 50 * time.Millisecond})
	a := newApp()
	if err := c.Register("app", a.callbacks()); err != nil {
		t.Fatal(err)
	}
	old := a.endpoint(t)
	uaid := c.UAID()

	// The node comes back without its data: it no longer knows the
	// client's channel, so it hands out a new UAID.
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, t.TempDir(), wsAddr)
	ep := a.endpoint(t)
	if ep == old || c.UAID() == uaid {
		t.Fatalf("after the reset: UAID %s (was %s), endpoint %s (was %s)", c.UAID(), uaid, ep, old)
	}
	if st := put(t, n2, ep, 3); st != 200 {
		t.Fatalf("PUT to the new endpoint: %d", st)
	}
	a.version(t, 3)
}

func TestRESTTransportRegistersAndLongPolls(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	c := runClient(t, client.Config{URL: "http://" + n.HTTPAddr().String(), REST: true, PollWait: 5 * time.Second})
	a := newApp()
	if err := c.Register("app", a.callbacks()); err != nil {
		t.Fatal(err)
	}
	ep := a.endpoint(t)
	// A REST client is never "connected": PUTs are stored (202), and the
	// long poll hands them over.
	if st := put(t, n, ep, 4); st != 202 {
		t.Fatalf("PUT: %d, want 202", st)
	}
	a.version(t, 4)
	// Acked after the callback: the next PUT is not held and arrives too.
	deadline := time.Now().Add(10 * time.Second)
	for put(t, n, ep, 5) != 202 {
		if time.Now().After(deadline) {
			t.Fatal("PUT after the REST ack is still refused")
		}
	}
	a.version(t, 5)
}

func TestMultiRegistersManyUAIDsAndAcksWhatItKeeps(t *testing.T) {
	n := startNode(t, t.TempDir(), "127.0.0.1:0")
	type update struct {
		uaid, chid uuid.UUID
		v          uint64
	}
	got := make(chan update, 16)
	m, err := client.NewMulti(client.MultiConfig{
		URL:    "ws://" + n.WSAddr().String() + "/",
		Logger: quiet,
		OnUpdate: func(p map[uuid.UUID]map[uuid.UUID]uint64) (ack []uuid.UUID) {
			for u, chans := range p {
				for c, v := range chans {
					got <- update{u, c, v}
				}
				ack = append(ack, u)
			}
			return ack
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.Run(ctx) }()
	defer func() { cancel(); <-done }()

	var eps [3]string
	uaids := [3]uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	chid := uuid.New() // the same channel ID under three UAIDs: three channels
	for i, u := range uaids {
		deadline := time.Now().Add(10 * time.Second)
		for {
			ep, err := m.Register(ctx, u, chid)
			if err == nil {
				eps[i] = ep
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("register %d: %v", i, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for i, ep := range eps {
		if st := put(t, n, ep, uint64(10+i)); st != 200 {
			t.Fatalf("PUT %d: %d", i, st)
		}
		select {
		case g := <-got:
			if g.uaid != uaids[i] || g.chid != chid || g.v != uint64(10+i) {
				t.Fatalf("update %+v, want %s/%s/%d", g, uaids[i], chid, 10+i)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no update for PUT %d", i)
		}
	}
	// Acked: the next PUT to each is delivered again, not held.
	deadline := time.Now().Add(10 * time.Second)
	for put(t, n, eps[0], 20) != 200 {
		if time.Now().After(deadline) {
			t.Fatal("PUT after the ack is still held")
		}
	}
}
