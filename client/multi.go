package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/pushd/pushd/internal/protocol"
)

// MultiConfig configures a Multi. Zero values mean the defaults named.
type MultiConfig struct {
	// URL is the pushd WebSocket URL. Required.
	URL string
	// UAIDs lists the UAIDs to name on each (re)connection. Nil means
	// none until Register names them.
	UAIDs func() ([]uuid.UUID, error)
	// OnUpdate receives each UPDATE packet (uaid -> channel -> version) and
	// returns the UAIDs to ack: those whose versions it has made safe. It
	// runs on the connection's reader goroutine, one packet at a time.
	OnUpdate func(packet map[uuid.UUID]map[uuid.UUID]uint64) (ack []uuid.UUID)
	// MinBackoff and MaxBackoff bound the reconnect delay. Zero means 1s
	// and 1m. The delay starts over at MinBackoff once a connection has
	// named all its UAIDs.
	MinBackoff, MaxBackoff time.Duration
	// RequestTimeout bounds each hello the connection sends on its own
	// when it (re)connects, and each write. Zero means 30s. Register and
	// Unregister are bounded by their context.
	RequestTimeout time.Duration
	// Logger receives connection errors. Nil means slog.Default().
	Logger *slog.Logger
}

// ErrNotConnected is returned by Multi's requests while it has no
// connection.
var ErrNotConnected = errors.New("client: not connected")

// Multi is the seed's multi-UAID client, for relays: one WebSocket that
// carries many user agents. Its methods are safe for concurrent use;
// requests go one at a time on the connection.
//
// Replies carry no request id, and a request that gives up (its context
// ended) may still get its reply later: each request takes only a reply
// that names what it asked for (the channel of a register or unregister,
// UAIDs of the hello's), so a late success is never taken for the next
// request's. A late refusal names nothing, so the next request of its
// type may take it and fail; its caller retries.
type Multi struct {
	cfg MultiConfig

	// reqSlot holds a token while a request (and its reply) is under way:
	// one at a time, and a request waiting for the slot still ends with
	// its context.
	reqSlot chan struct{}
	// writeSlot holds a token while a message is written on the
	// connection, likewise.
	writeSlot chan struct{}

	mu sync.Mutex
	// conn, attached, replies, gone: guarded by mu.
	conn     *websocket.Conn
	attached map[uuid.UUID]bool // UAIDs named on conn
	replies  chan map[string]any
	gone     chan struct{} // closed when conn's reader stops
}

// NewMulti returns a multi-UAID client; call Run to connect.
func NewMulti(cfg MultiConfig) (*Multi, error) {
	if cfg.URL == "" {
		return nil, ErrNoURL
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = time.Minute
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.UAIDs == nil {
		cfg.UAIDs = func() ([]uuid.UUID, error) { return nil, nil }
	}
	return &Multi{cfg: cfg, reqSlot: make(chan struct{}, 1), writeSlot: make(chan struct{}, 1)}, nil
}

// Run keeps the connection until ctx ends, reconnecting with back-off.
func (m *Multi) Run(ctx context.Context) {
	backoff := m.cfg.MinBackoff
	for ctx.Err() == nil {
		named, err := m.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if named {
			backoff = m.cfg.MinBackoff
		}
		m.cfg.Logger.Warn("multi-UAID connection lost", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, m.cfg.MaxBackoff)
	}
}

// session holds one connection until it fails or ctx ends; named reports
// whether it got as far as naming all its UAIDs.
func (m *Multi) session(ctx context.Context) (named bool, err error) {
	d := websocket.Dialer{Subprotocols: []string{"push-notification"}, HandshakeTimeout: 10 * time.Second}
	conn, _, err := d.DialContext(ctx, m.cfg.URL, nil)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetReadLimit(1 << 24)
	all, err := m.cfg.UAIDs()
	if err != nil {
		return false, err
	}
	replies, gone := make(chan map[string]any, 1), make(chan struct{})
	m.mu.Lock()
	m.conn, m.attached, m.replies, m.gone = conn, map[uuid.UUID]bool{}, replies, gone
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.conn, m.attached = nil, nil
		m.mu.Unlock()
	}()
	readErr := make(chan error, 1)
	go func() {
		readErr <- m.read(conn, replies)
		close(gone)
	}()
	// Each multi-UAID hello adds to the connection: name them 500 at a time.
	for i := 0; i == 0 || i < len(all); i += 500 {
		hctx, cancel := context.WithTimeout(ctx, m.cfg.RequestTimeout)
		err := m.hello(hctx, all[i:min(i+500, len(all))])
		cancel()
		if errors.Is(err, ErrUAIDsRefused) {
			// The connection is full: the rest cannot be named on it.
			m.cfg.Logger.Warn("the server took fewer UAIDs than named", "named", min(i+500, len(all)), "total", len(all), "err", err)
			break
		}
		if err != nil {
			return false, err
		}
	}
	return true, <-readErr
}

func (m *Multi) hello(ctx context.Context, uaids []uuid.UUID) error {
	ids := make([]string, len(uaids))
	named := make(map[uuid.UUID]bool, len(uaids))
	for i, u := range uaids {
		ids[i] = u.String()
		named[u] = true
	}
	// listed returns the UAIDs a hello reply accepted, and false if it
	// names one this hello did not.
	listed := func(r map[string]any) ([]uuid.UUID, bool) {
		got, _ := r["uaids"].([]any)
		out := make([]uuid.UUID, 0, len(got))
		for _, g := range got {
			s, _ := g.(string)
			u, ok := protocol.ParseUUID(s)
			if !ok || !named[u] {
				return nil, false
			}
			out = append(out, u)
		}
		return out, true
	}
	r, err := m.request(ctx, map[string]any{"messageType": "hello", "uaids": ids}, "hello", func(r map[string]any) bool {
		_, ok := listed(r)
		return ok
	})
	if err != nil {
		return err
	}
	accepted, _ := listed(r)
	m.mu.Lock()
	for _, u := range accepted {
		if m.attached != nil {
			m.attached[u] = true
		}
	}
	m.mu.Unlock()
	if left := len(uaids) - len(accepted); left > 0 {
		return fmt.Errorf("%w: %d of %d UAIDs left out", ErrUAIDsRefused, left, len(uaids))
	}
	return nil
}

// ErrUAIDsRefused is returned when the server's hello reply leaves out
// UAIDs the client named (the server's limit of UAIDs per connection).
var ErrUAIDsRefused = errors.New("client: the server did not take every UAID")

// read dispatches incoming messages: replies to the waiting request,
// UPDATE packets to OnUpdate, then the ack.
func (m *Multi) read(conn *websocket.Conn, replies chan<- map[string]any) error {
	for {
		var msg map[string]any
		if err := conn.ReadJSON(&msg); err != nil {
			return err
		}
		if msg["messageType"] != "update" {
			select {
			case replies <- msg:
			default:
				m.cfg.Logger.Warn("reply nobody waits for", "message", msg["messageType"])
			}
			continue
		}
		if m.cfg.OnUpdate == nil {
			continue
		}
		ack := m.cfg.OnUpdate(decodePacket(msg["updates"]))
		if len(ack) == 0 {
			continue
		}
		ids := make([]string, len(ack))
		for i, u := range ack {
			ids[i] = u.String()
		}
		if err := m.write(context.Background(), conn, map[string]any{"messageType": "ack", "uaids": ids}); err != nil {
			return err
		}
	}
}

// decodePacket reads {"<uaid>":{"<chid>":v}}, skipping malformed entries.
func decodePacket(v any) map[uuid.UUID]map[uuid.UUID]uint64 {
	out := map[uuid.UUID]map[uuid.UUID]uint64{}
	packet, _ := v.(map[string]any)
	for us, chans := range packet {
		u, ok := protocol.ParseUUID(us)
		cm, ok2 := chans.(map[string]any)
		if !ok || !ok2 {
			continue
		}
		for cs, vv := range cm {
			chid, ok := protocol.ParseUUID(cs)
			ver, ok2 := vv.(float64)
			if !ok || !ok2 || ver < 0 || ver > protocol.MaxVersion {
				continue
			}
			if out[u] == nil {
				out[u] = map[uuid.UUID]uint64{}
			}
			out[u][chid] = uint64(ver)
		}
	}
	return out
}

// write sends v on conn within ctx and the request timeout. A write that
// fails may have left part of a frame: it closes the connection.
func (m *Multi) write(ctx context.Context, conn *websocket.Conn, v any) error {
	select {
	case m.writeSlot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-m.writeSlot }()
	deadline := time.Now().Add(m.cfg.RequestTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	err := conn.SetWriteDeadline(deadline)
	if err == nil {
		err = conn.WriteJSON(v)
	}
	if err != nil {
		conn.Close()
	}
	return err
}

// request sends msg and waits for the reply of type want that mine
// accepts (a refusal is always taken: it names nothing to match).
func (m *Multi) request(ctx context.Context, msg map[string]any, want string, mine func(map[string]any) bool) (map[string]any, error) {
	select {
	case m.reqSlot <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-m.reqSlot }()
	m.mu.Lock()
	conn, replies, gone := m.conn, m.replies, m.gone
	m.mu.Unlock()
	if conn == nil {
		return nil, ErrNotConnected
	}
	// A reply that came after its request gave up, left in the buffer,
	// would take the room of this request's own.
	for drained := false; !drained; {
		select {
		case <-replies:
		default:
			drained = true
		}
	}
	if err := m.write(ctx, conn, msg); err != nil {
		return nil, err
	}
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-gone:
			return nil, ErrNotConnected
		case r := <-replies:
			if r["messageType"] != want {
				continue
			}
			if st, _ := r["status"].(float64); st != 200 {
				return nil, fmt.Errorf("client: %s refused: status %v %v", want, r["status"], r["error"])
			}
			if !mine(r) {
				continue // the late answer to a request that gave up
			}
			return r, nil
		}
	}
}

// Register names uaid on the connection if it is new and registers chid
// for it, returning the endpoint.
func (m *Multi) Register(ctx context.Context, uaid, chid uuid.UUID) (string, error) {
	m.mu.Lock()
	attached := m.attached[uaid]
	m.mu.Unlock()
	if !attached {
		if err := m.hello(ctx, []uuid.UUID{uaid}); err != nil {
			return "", err
		}
	}
	r, err := m.request(ctx, map[string]any{"messageType": "register", "uaid": uaid.String(), "channelID": chid.String()}, "register", sameChannel(chid))
	if err != nil {
		return "", err
	}
	ep, _ := r["pushEndpoint"].(string)
	if ep == "" {
		return "", errors.New("client: register answered without an endpoint")
	}
	return ep, nil
}

// Unregister drops chid of uaid.
func (m *Multi) Unregister(ctx context.Context, uaid, chid uuid.UUID) error {
	_, err := m.request(ctx, map[string]any{"messageType": "unregister", "uaid": uaid.String(), "channelID": chid.String()}, "unregister", sameChannel(chid))
	return err
}

// sameChannel accepts a reply naming chid.
func sameChannel(chid uuid.UUID) func(map[string]any) bool {
	return func(r map[string]any) bool {
		s, _ := r["channelID"].(string)
		id, ok := protocol.ParseUUID(s)
		return ok && id == chid
	}
}
