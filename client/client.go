package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// Config configures a Client. Zero values mean the defaults named.
type Config struct {
	// URL is the pushd WebSocket URL, e.g. "ws://localhost:8080/", or,
	// for the REST polling transport, its HTTP base URL, e.g.
	// "http://localhost:8081". Required.
	URL string
	// REST selects the REST polling transport (PROTOCOL.md 4) instead of
	// a WebSocket: registers over HTTP and long polls for versions.
	REST bool
	// PollWait is the REST long poll's wait. Zero means 30s.
	PollWait time.Duration
	// StatePath is the file the UAID and channel IDs are kept in. Zero
	// means they live only as long as the Client.
	StatePath string
	// MinBackoff is the first reconnect delay. Zero means 5s.
	MinBackoff time.Duration
	// MaxBackoff caps the reconnect delay. Zero means 5m.
	MaxBackoff time.Duration
	// Logger receives connection errors. Nil means slog.Default().
	Logger *slog.Logger
}

// App is one application's registration with the client.
type App struct {
	// OnEndpoint is called with the app's endpoint after each successful
	// register (the endpoint changes only when the UAID does).
	OnEndpoint func(endpoint string)
	// OnVersion is called for every version event; the version is acked
	// when it returns.
	OnVersion func(version uint64)
}

// ErrNoURL is returned by New without a URL.
var ErrNoURL = errors.New("client: no URL")

// Client is a SimplePush client for one user agent.
type Client struct {
	cfg Config
	log *slog.Logger

	mu sync.Mutex
	// apps, state, conn: guarded by mu.
	apps  map[string]App
	state state
	conn  *websocket.Conn // current connection, nil between connections
	wmu   sync.Mutex      // serialises writes on conn
	// restRunning is set while the REST transport runs.
	restRunning atomic.Bool
}

// state is what the client persists.
type state struct {
	UAID     string            `json:"uaid"`
	Channels map[string]string `json:"channels"` // app -> channel ID
}

// New returns a client; it loads the state file if there is one.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, ErrNoURL
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.PollWait <= 0 {
		cfg.PollWait = 30 * time.Second
	}
	c := &Client{cfg: cfg, log: cfg.Logger, apps: map[string]App{}}
	if cfg.StatePath != "" {
		if b, err := os.ReadFile(cfg.StatePath); err == nil {
			if err := json.Unmarshal(b, &c.state); err != nil {
				return nil, fmt.Errorf("client: state %s: %w", cfg.StatePath, err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("client: %w", err)
		}
	}
	if c.state.UAID == "" {
		c.state.UAID = uuid.NewString() // the user agent makes its own UAID
	}
	if c.state.Channels == nil {
		c.state.Channels = map[string]string{}
	}
	return c, nil
}

// UAID is the user agent's current UAID.
func (c *Client) UAID() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state.UAID
}

// Register adds an app. Its endpoint arrives through app.OnEndpoint once the
// client is connected (at once, if it is).
func (c *Client) Register(name string, app App) error {
	c.mu.Lock()
	c.apps[name] = app
	if _, ok := c.state.Channels[name]; !ok {
		c.state.Channels[name] = uuid.NewString()
	}
	err := c.saveLocked()
	conn, chid := c.conn, c.state.Channels[name]
	c.mu.Unlock()
	if err != nil {
		return err
	}
	switch {
	case c.cfg.REST:
		if c.restRunning.Load() {
			return c.restRegister(context.Background(), name, chid)
		}
	case conn != nil:
		return c.write(conn, map[string]any{"messageType": "register", "channelID": chid})
	}
	return nil
}

// REQUIRES: c.mu held.
func (c *Client) saveLocked() error {
	if c.cfg.StatePath == "" {
		return nil
	}
	b, err := json.MarshalIndent(c.state, "", "  ")
	if err != nil {
		return err
	}
	tmp := c.cfg.StatePath + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	if err := os.Rename(tmp, c.cfg.StatePath); err != nil {
		return fmt.Errorf("client: %w", err)
	}
	return nil
}

func (c *Client) write(conn *websocket.Conn, v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return conn.WriteJSON(v)
}

// Run connects and serves until ctx ends, reconnecting with jittered
// exponential back-off.
func (c *Client) Run(ctx context.Context) error {
	backoff := c.cfg.MinBackoff
	session := c.session
	if c.cfg.REST {
		session = c.restSession
	}
	for {
		connected, err := session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if connected {
			backoff = c.cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Warn("push connection lost; reconnecting", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

type message struct {
	MessageType  string `json:"messageType"`
	Status       int    `json:"status"`
	UAID         string `json:"uaid"`
	ChannelID    string `json:"channelID"`
	PushEndpoint string `json:"pushEndpoint"`
	Ping         int    `json:"ping"`
	Updates      []struct {
		ChannelID string `json:"channelID"`
		Version   uint64 `json:"version"`
	} `json:"updates"`
}

// session runs one connection; connected says whether hello succeeded.
func (c *Client) session(ctx context.Context) (connected bool, err error) {
	d := websocket.Dialer{Subprotocols: []string{"push-notification"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, c.cfg.URL, nil)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	c.mu.Lock()
	uaid := c.state.UAID
	known := make([]string, 0, len(c.state.Channels))
	for _, id := range c.state.Channels {
		known = append(known, id)
	}
	c.mu.Unlock()
	if err := c.write(conn, map[string]any{"messageType": "hello", "uaid": uaid, "channelIDs": known}); err != nil {
		return false, err
	}
	var hello message
	if err := conn.ReadJSON(&hello); err != nil {
		return false, err
	}
	if hello.MessageType != "hello" || hello.Status != 200 {
		return false, fmt.Errorf("client: hello refused: status %d", hello.Status)
	}

	c.mu.Lock()
	if hello.UAID != c.state.UAID {
		// The server lost this user agent: new UAID, new channels.
		c.state.UAID = hello.UAID
		for name := range c.state.Channels {
			c.state.Channels[name] = uuid.NewString()
		}
	}
	err = c.saveLocked()
	c.conn = conn
	var regs []string
	for name := range c.apps {
		regs = append(regs, c.state.Channels[name])
	}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.conn = nil
		c.mu.Unlock()
	}()
	if err != nil {
		return true, err
	}
	for _, chid := range regs {
		if err := c.write(conn, map[string]any{"messageType": "register", "channelID": chid}); err != nil {
			return true, err
		}
	}

	ping := time.Duration(max(hello.Ping, 60)) * time.Second
	pinger := time.AfterFunc(ping, func() { _ = c.write(conn, struct{}{}) })
	defer pinger.Stop()
	for {
		_ = conn.SetReadDeadline(time.Now().Add(ping + 30*time.Second))
		var m message
		if err := conn.ReadJSON(&m); err != nil {
			return true, err
		}
		pinger.Reset(ping)
		if err := c.handle(conn, &m); err != nil {
			return true, err
		}
	}
}

// handle carries out one server message.
func (c *Client) handle(conn *websocket.Conn, m *message) error {
	switch m.MessageType {
	case "register":
		if m.Status != 200 {
			return fmt.Errorf("client: register refused: status %d", m.Status)
		}
		if app, ok := c.appFor(m.ChannelID); ok && app.OnEndpoint != nil {
			app.OnEndpoint(m.PushEndpoint)
		}
	case "notification":
		for _, u := range m.Updates {
			if app, ok := c.appFor(u.ChannelID); ok && app.OnVersion != nil {
				app.OnVersion(u.Version)
			}
		}
		return c.write(conn, map[string]any{"messageType": "ack", "updates": m.Updates})
	}
	return nil
}

func (c *Client) appFor(chid string) (App, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, id := range c.state.Channels {
		if id == chid {
			app, ok := c.apps[name]
			return app, ok
		}
	}
	return App{}, false
}
