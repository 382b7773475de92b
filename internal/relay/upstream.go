// Package relay is the PUSH RELAY's upstream side: one multi-UAID
// WebSocket to a pushd cluster that carries every UAID registered through
// the relay. Registrations go up it (engine.Upstream); UPDATE packets come
// down it, are made durable in the relay's own node, and only then acked
// upstream, so that from the ack on, delivery is the relay's job, even
// across a restart.
//
// Concurrency: Upstream's methods are safe for concurrent use; requests
// (hello, register, unregister) go one at a time on the connection, and a
// single reader goroutine owns incoming messages.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/engine"
	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/shardstore"
)

// ErrNotConnected is returned while the relay has no upstream connection.
var ErrNotConnected = errors.New("relay: upstream not connected")

// Upstream is the relay's connection to its upstream cluster. It
// implements engine.Upstream.
type Upstream struct {
	url  string
	log  *slog.Logger
	node *engine.Node

	reqMu sync.Mutex // one request (and its reply) at a time

	mu sync.Mutex
	// conn, attached, replies: guarded by mu.
	conn     *websocket.Conn
	attached map[uuid.UUID]bool // UAIDs named in a hello on conn
	replies  chan map[string]any
	wmu      sync.Mutex // serialises writes on conn
}

var _ engine.Upstream = (*Upstream)(nil)

// New returns an upstream for url (ws://host:port/). Attach the relay's
// node with SetNode before Run.
func New(url string, log *slog.Logger) *Upstream {
	return &Upstream{url: url, log: log}
}

// SetNode gives the upstream the node that stores and delivers what comes
// down. It must be called before Run.
func (up *Upstream) SetNode(n *engine.Node) { up.node = n }

// Run keeps the upstream connection until ctx ends, reconnecting with
// back-off. Each connection names every UAID the node holds.
func (up *Upstream) Run(ctx context.Context) {
	backoff := time.Second
	for ctx.Err() == nil {
		err := up.session(ctx)
		if ctx.Err() != nil {
			return
		}
		up.log.Warn("upstream connection lost", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Minute)
	}
}

func (up *Upstream) session(ctx context.Context) error {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, up.url, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetReadLimit(1 << 24)

	// Name every UAID the relay holds, in hellos of at most 500 (each
	// multi-UAID hello adds to the connection).
	var all []uuid.UUID
	if err := up.node.UAIDs(func(u uuid.UUID) bool { all = append(all, u); return true }); err != nil {
		return err
	}
	replies := make(chan map[string]any, 1)
	up.mu.Lock()
	up.conn, up.attached, up.replies = conn, map[uuid.UUID]bool{}, replies
	up.mu.Unlock()
	defer func() {
		up.mu.Lock()
		up.conn, up.attached = nil, nil
		up.mu.Unlock()
	}()

	readErr := make(chan error, 1)
	go func() { readErr <- up.read(conn, replies) }()
	hello := func(batch []uuid.UUID) error {
		ids := make([]string, len(batch))
		for i, u := range batch {
			ids[i] = u.String()
		}
		_, err := up.request(ctx, map[string]any{"messageType": "hello", "uaids": ids}, "hello")
		if err == nil {
			up.mu.Lock()
			for _, u := range batch {
				up.attached[u] = true
			}
			up.mu.Unlock()
		}
		return err
	}
	for i := 0; i == 0 || i < len(all); i += 500 {
		if err := hello(all[i:min(i+500, len(all))]); err != nil {
			return err
		}
	}
	return <-readErr
}

// read dispatches incoming messages: replies to the waiting request,
// UPDATE packets to the node.
func (up *Upstream) read(conn *websocket.Conn, replies chan<- map[string]any) error {
	for {
		var m map[string]any
		if err := conn.ReadJSON(&m); err != nil {
			return err
		}
		if m["messageType"] == "update" {
			up.update(conn, m)
			continue
		}
		select {
		case replies <- m:
		default:
			up.log.Warn("upstream reply nobody waits for", "message", m)
		}
	}
}

// update makes an UPDATE packet's versions durable in the node and then
// acks the UAIDs whose versions all are.
func (up *Upstream) update(conn *websocket.Conn, m map[string]any) {
	packet, _ := m["updates"].(map[string]any)
	var acked []string
	for us, chans := range packet {
		u, ok := protocol.ParseUUID(us)
		cm, ok2 := chans.(map[string]any)
		if !ok || !ok2 {
			continue
		}
		durable := true
		for cs, vv := range cm {
			chid, ok := protocol.ParseUUID(cs)
			v, ok2 := vv.(float64)
			if !ok || !ok2 || v < 0 || v > protocol.MaxVersion {
				continue
			}
			st, err := up.node.Put(u, chid, shardstore.Put{Version: uint64(v)})
			if err != nil || st == engine.PutBusy {
				// Not durable here: leave it unacked; upstream sends it
				// again after its ack timeout.
				durable = false
			}
		}
		if durable {
			acked = append(acked, us)
		}
	}
	if len(acked) > 0 {
		if err := up.write(conn, map[string]any{"messageType": "ack", "uaids": acked}); err != nil {
			up.log.Warn("upstream ack", "err", err)
		}
	}
}

func (up *Upstream) write(conn *websocket.Conn, v any) error {
	up.wmu.Lock()
	defer up.wmu.Unlock()
	return conn.WriteJSON(v)
}

// request sends msg and waits for the reply of type want.
func (up *Upstream) request(ctx context.Context, msg map[string]any, want string) (map[string]any, error) {
	up.reqMu.Lock()
	defer up.reqMu.Unlock()
	up.mu.Lock()
	conn, replies := up.conn, up.replies
	up.mu.Unlock()
	if conn == nil {
		return nil, ErrNotConnected
	}
	if err := up.write(conn, msg); err != nil {
		return nil, err
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-replies:
			if r["messageType"] != want {
				continue
			}
			if st, _ := r["status"].(float64); st != 200 {
				return nil, fmt.Errorf("relay: upstream %s: status %v %v", want, r["status"], r["error"])
			}
			return r, nil
		}
	}
}

// Register implements engine.Upstream.
func (up *Upstream) Register(ctx context.Context, u, chid uuid.UUID) (string, error) {
	up.mu.Lock()
	attached := up.attached[u]
	up.mu.Unlock()
	if !attached {
		if _, err := up.request(ctx, map[string]any{"messageType": "hello", "uaids": []string{u.String()}}, "hello"); err != nil {
			return "", err
		}
		up.mu.Lock()
		if up.attached != nil {
			up.attached[u] = true
		}
		up.mu.Unlock()
	}
	r, err := up.request(ctx, map[string]any{"messageType": "register", "uaid": u.String(), "channelID": chid.String()}, "register")
	if err != nil {
		return "", err
	}
	ep, _ := r["pushEndpoint"].(string)
	if ep == "" {
		return "", errors.New("relay: upstream register without an endpoint")
	}
	return ep, nil
}

// Unregister implements engine.Upstream.
func (up *Upstream) Unregister(ctx context.Context, u, chid uuid.UUID) error {
	_, err := up.request(ctx, map[string]any{"messageType": "unregister", "uaid": u.String(), "channelID": chid.String()}, "unregister")
	return err
}
