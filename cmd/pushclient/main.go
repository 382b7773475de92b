// Command pushclient is a small SimplePush client for trying pushd: it
// registers the apps named by -apps, prints "endpoint <app> <url>" for each
// and "version <app> <n>" for every version event, and acks them. Its UAID
// and channel IDs are kept in -state, so a restarted client is the same
// user agent; when the server answers with a new UAID it registers its apps
// again. It reconnects with exponential back-off.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// state is what the client keeps between runs.
type state struct {
	UAID     string            `json:"uaid"`
	Channels map[string]string `json:"channels"` // app -> channelID
}

func main() {
	ws := flag.String("ws", "ws://localhost:8080/", "pushd WebSocket `URL`")
	apps := flag.String("apps", "demo", "comma-separated app `names` to register")
	statePath := flag.String("state", "pushclient.json", "state `file` (UAID and channel IDs)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	st := loadState(*statePath)
	names := strings.Split(*apps, ",")
	backoff := 5 * time.Second
	for ctx.Err() == nil {
		err := session(ctx, *ws, names, st, *statePath)
		if ctx.Err() != nil {
			return
		}
		wait := backoff/2 + rand.N(backoff/2)
		fmt.Fprintf(os.Stderr, "pushclient: %v; reconnecting in %v\n", err, wait.Round(time.Millisecond))
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(2*backoff, 5*time.Minute)
	}
}

func loadState(path string) *state {
	st := &state{Channels: map[string]string{}}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, st)
	}
	if st.Channels == nil {
		st.Channels = map[string]string{}
	}
	if st.UAID == "" {
		st.UAID = uuid.NewString() // the user agent makes its own UAID
	}
	return st
}

func (st *state) save(path string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
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

// session runs one connection until it fails or ctx ends.
func session(ctx context.Context, url string, apps []string, st *state, statePath string) error {
	d := websocket.Dialer{Subprotocols: []string{"push-notification"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()

	var known []string
	for _, app := range apps {
		if id, ok := st.Channels[app]; ok {
			known = append(known, id)
		}
	}
	if known == nil {
		known = []string{}
	}
	if err := conn.WriteJSON(map[string]any{"messageType": "hello", "uaid": st.UAID, "channelIDs": known}); err != nil {
		return err
	}
	var hello message
	if err := conn.ReadJSON(&hello); err != nil {
		return err
	}
	if hello.MessageType != "hello" || hello.Status != 200 {
		return fmt.Errorf("hello refused: %+v", hello)
	}
	if hello.UAID != st.UAID {
		// The server lost this user agent's state: start over.
		st.UAID, st.Channels = hello.UAID, map[string]string{}
	}
	for _, app := range apps {
		if _, ok := st.Channels[app]; !ok {
			st.Channels[app] = uuid.NewString()
		}
	}
	if err := st.save(statePath); err != nil {
		return err
	}
	for _, app := range apps {
		if err := conn.WriteJSON(map[string]any{"messageType": "register", "channelID": st.Channels[app]}); err != nil {
			return err
		}
	}
	apps4 := map[string]string{} // channelID -> app
	for app, id := range st.Channels {
		apps4[id] = app
	}
	// A quiet connection pings at the interval the server gave (never more
	// often than once a minute); the pinger and the loop share the writer.
	var wmu sync.Mutex
	write := func(v any) error {
		wmu.Lock()
		defer wmu.Unlock()
		return conn.WriteJSON(v)
	}
	ping := time.Duration(max(hello.Ping, 60)) * time.Second
	_ = conn.SetReadDeadline(time.Now().Add(ping + 30*time.Second))
	pinger := time.AfterFunc(ping, func() { _ = write(struct{}{}) })
	defer pinger.Stop()
	for {
		var m message
		if err := conn.ReadJSON(&m); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(ping + 30*time.Second))
		pinger.Reset(ping)
		switch m.MessageType {
		case "register":
			if m.Status != 200 {
				return fmt.Errorf("register refused: %+v", m)
			}
			fmt.Printf("endpoint %s %s\n", apps4[m.ChannelID], m.PushEndpoint)
		case "notification":
			for _, u := range m.Updates {
				fmt.Printf("version %s %d\n", apps4[u.ChannelID], u.Version)
			}
			if err := write(map[string]any{"messageType": "ack", "updates": m.Updates}); err != nil {
				return err
			}
		case "":
			// {} answering our ping
		default:
			if m.Status >= 400 {
				return errors.New("server error: " + m.MessageType)
			}
		}
	}
}
