package cluster

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults and fixed limits of the transport.
const (
	// DefaultMaxFrame is TransportConfig.MaxFrame's zero value: 16 MiB.
	DefaultMaxFrame = 16 << 20
	// DefaultConnsPerPeer is TransportConfig.ConnsPerPeer's zero value.
	DefaultConnsPerPeer = 2

	// handshakeTimeout bounds a dial plus the whole handshake, on both
	// sides.
	handshakeTimeout = 5 * time.Second
	// writeTimeout bounds one batch write: a peer that stops reading for
	// this long is disconnected, and the calls waiting on it fail.
	writeTimeout = 10 * time.Second
	// maxHandshakes bounds the accepted connections still in their
	// handshake; more are closed at once.
	maxHandshakes = 64
	// maxInflight bounds the requests served at once on one connection.
	// Past it the connection's reader stops reading until a handler
	// returns, and TCP pushes back on the caller.
	maxInflight = 4096
	// maxQueued bounds the bytes waiting for one connection's writer.
	// Senders past it wait (a Call until its ctx ends). One larger frame
	// is always let into an empty queue.
	maxQueued = 4 << 20
	// maxErrorText bounds the handler error text sent back.
	maxErrorText = 4 << 10
	// Redial backoff after a failed dial or handshake: during it, Calls to
	// the address fail at once with the last dial error.
	minRedialBackoff = 50 * time.Millisecond
	maxRedialBackoff = time.Second
)

// Errors of Transport.Call, besides ctx errors and *RemoteError. Call also
// returns ErrClosed, which it shares with Membership, once Close has begun,
// also to Calls that were waiting when it began.
var (
	// ErrUnavailable is wrapped by the error of a Call that could not
	// connect or authenticate to the peer, or whose connection broke while
	// it waited. In the last case the request may or may not have run on
	// the peer.
	ErrUnavailable = errors.New("cluster: peer unavailable")

	// ErrTooLarge is returned by Call when the request is larger than
	// TransportConfig.MaxFrame. Nothing is sent.
	ErrTooLarge = errors.New("cluster: request larger than MaxFrame")
)

// RemoteError is the error of a Call whose request the peer's Handler
// answered with an error. Msg is that error's text, cut to 4 KiB.
type RemoteError struct {
	Msg string
}

func (e *RemoteError) Error() string { return "cluster: remote: " + e.Msg }

// Handler serves one request that arrived from the peer node named from
// (the name it gave in the handshake; any holder of the cluster key can
// claim any name).
//
// Concurrency: each request runs in its own goroutine, so a Handler is
// called concurrently, also for requests on one connection, and must be
// safe for that. Blocking: it may block (on fsync, on a lock wait) for up to
// seconds; only that request and the connection's in-flight allowance wait.
// ctx ends when the connection breaks or the Transport closes; Close waits
// for running handlers, so they should watch ctx.
//
// Buffers: req is valid only until the Handler returns; copy what you keep.
// The returned slice is copied before Handler's goroutine moves on and may
// alias req. A returned error's text is sent back as a RemoteError; a
// response larger than MaxFrame is replaced by such an error. A panic is
// not recovered.
type Handler func(ctx context.Context, from string, method uint8, req []byte) ([]byte, error)

// TransportConfig configures a Transport. NewTransport copies it.
type TransportConfig struct {
	// Name is this node's name, sent in the handshake and given to the
	// peer's Handler as from. Required, 1 to 255 bytes.
	Name string

	// Addr is the host:port to listen on. Port 0 picks a free port (see
	// Transport.Addr). Empty means "127.0.0.1:0".
	Addr string

	// Key is the cluster secret; at least MinKeySize (16) bytes. Both sides
	// of every connection prove they know it. Required.
	Key []byte

	// Handler serves requests from peers. Nil means this node serves
	// none: every request is answered with an error.
	Handler Handler

	// Logger receives the transport's logs: rejected handshakes and bad
	// frames at Warn with the remote address, lost connections at Debug.
	// Nil means discard.
	Logger *slog.Logger

	// MaxFrame is the largest payload (request, response or error text)
	// accepted. A peer that sends a larger one is disconnected. Zero means
	// DefaultMaxFrame (16 MiB). Give every node the same value.
	MaxFrame int

	// ConnsPerPeer is the number of persistent connections kept to each
	// peer address; Calls spread over them round-robin. Zero means
	// DefaultConnsPerPeer (2).
	ConnsPerPeer int
}

// Transport carries requests and responses between pushd nodes over
// persistent TCP connections. It listens for peers and dials them lazily,
// on the first Call to an address; many concurrent Calls share each
// connection (pipelined, matched by id), and the frames that are ready
// together leave in one write.
//
// Connections are one-way for requests: the dialling node sends requests
// and the accepting node answers them. Two nodes that call each other hold
// connections in both directions.
//
// # Wire format
//
// Handshake, before anything else, under a 5 s deadline:
//
//	client -> server  hello: "pshd" | u8 version (1) | u8 n | name (n >= 1 bytes) | nonce (32 random bytes)
//	server -> client  hello (its own name and nonce) | mac_s (32 bytes)
//	client -> server  mac_c (32 bytes)
//
//	names = u8 len | client name | u8 len | server name
//	mac_s = HMAC-SHA256(key, "pushd-server" | client nonce | server nonce | names)
//	mac_c = HMAC-SHA256(key, "pushd-client" | server nonce | client nonce | names)
//
// The client checks mac_s before it sends mac_c; the server checks mac_c
// before it reads a frame. Any mismatch, wrong magic, wrong version or
// short message closes the connection, and the side that saw it logs at
// Warn. The key never travels.
//
// Frames, both directions, integers big-endian:
//
//	u32 length | u8 kind | u64 id | u8 method | payload
//
// length counts the bytes after itself (10 + payload). kind is 1 request
// (client to server), 2 response or 3 error response (server to client; the
// payload of 3 is the error text). id is chosen by the client, unique on its
// connection, and echoed in the answer; method is the caller's and is
// echoed too. A frame whose length is below 10 or whose payload is above
// MaxFrame, or whose kind is wrong for its direction, closes that
// connection only. An answer for an unknown id (a call that gave up) is
// dropped.
//
// The handshake authenticates peers; it does not sign or encrypt frames.
// Run the cluster on a network where connections cannot be hijacked.
//
// # Concurrency
//
// All methods are safe for concurrent use. Locks, outermost first (a lock
// is only taken while holding those above it):
//
//	slot.mu (one per connection slot of a peer)
//	  -> Transport.mu
//	conn.mu, sendQueue.mu: leaves, nothing else is taken while held
//
// No lock is held across network I/O or a blocking channel operation.
// Every goroutine is owned by the Transport and counted in wg; Close waits
// for all of them.
type Transport struct {
	cfg     TransportConfig // defaults applied, Key copied
	handler Handler
	log     *slog.Logger
	ln      net.Listener
	addr    string

	// ctx ends when Close begins: it cancels dials, and every connection's
	// ctx (the one handlers get) derives from it.
	ctx    context.Context
	cancel context.CancelFunc

	// handshakes is a semaphore of maxHandshakes accepted connections in
	// their handshake.
	handshakes chan struct{}

	// peers maps a dialled address to its *peer. Entries are never
	// removed: a cluster's addresses are few.
	peers sync.Map

	wg        sync.WaitGroup
	closeOnce sync.Once

	mu struct {
		sync.Mutex
		closed bool
		// conns holds every connection, accepted or dialled, from its
		// handshake until it closes.
		conns map[*conn]struct{}
	}

	// stats are counted for tests and benchmarks.
	stats struct {
		framesSent atomic.Uint64 // frames handed to the kernel
		writes     atomic.Uint64 // write syscalls (batches) that carried them
	}
}

// NewTransport validates cfg, listens on cfg.Addr and starts accepting
// peers. Close releases everything it starts.
func NewTransport(cfg TransportConfig) (*Transport, error) {
	if cfg.Name == "" || len(cfg.Name) > maxNameLen {
		return nil, fmt.Errorf("cluster: TransportConfig.Name must be 1 to %d bytes, got %d", maxNameLen, len(cfg.Name))
	}
	if len(cfg.Key) < MinKeySize {
		return nil, fmt.Errorf("cluster: TransportConfig.Key must be at least %d bytes, got %d", MinKeySize, len(cfg.Key))
	}
	if cfg.MaxFrame < 0 || cfg.ConnsPerPeer < 0 {
		return nil, errors.New("cluster: TransportConfig.MaxFrame and ConnsPerPeer must not be negative")
	}
	cfg.Key = append([]byte(nil), cfg.Key...)
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.MaxFrame == 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.ConnsPerPeer == 0 {
		cfg.ConnsPerPeer = DefaultConnsPerPeer
	}
	t := &Transport{
		cfg:        cfg,
		handler:    cfg.Handler,
		log:        cfg.Logger,
		handshakes: make(chan struct{}, maxHandshakes),
	}
	if t.handler == nil {
		t.handler = noHandler
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	lc := net.ListenConfig{KeepAliveConfig: keepAlive}
	ln, err := lc.Listen(context.Background(), "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("cluster: listen: %w", err)
	}
	t.ln = ln
	t.addr = ln.Addr().String()
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.mu.conns = make(map[*conn]struct{})
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// keepAlive makes the kernel notice a peer that vanished without a reset
// within about 20 s, so that its connection breaks and Calls waiting on it
// fail instead of waiting for their ctx.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 5 * time.Second, Count: 3}

func noHandler(context.Context, string, uint8, []byte) ([]byte, error) {
	return nil, errors.New("node serves no requests")
}

// Addr returns the address the Transport listens on, with the port it
// picked if TransportConfig.Addr had port 0.
func (t *Transport) Addr() string { return t.addr }

// Call sends req to the node listening on addr, for its Handler with
// method, and waits for the answer. It dials addr first if no connection to
// it is up (at most ConnsPerPeer at once; a failed dial makes the next
// Calls fail at once for a short backoff).
//
// It returns the response, which the caller owns, or an error: ctx.Err()
// if ctx ended first (a late answer is dropped); *RemoteError if the
// handler failed; an error wrapping ErrUnavailable if the peer could not be
// reached or the connection broke; ErrClosed; ErrTooLarge. Call does not
// keep req after it returns.
func (t *Transport) Call(ctx context.Context, addr string, method uint8, req []byte) ([]byte, error) {
	if len(req) > t.cfg.MaxFrame {
		return nil, fmt.Errorf("%w: %d bytes", ErrTooLarge, len(req))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p := t.peer(addr)
	// A connection that closed before the request went into its queue
	// never saw it: trying another one is safe. Once per slot at most, so
	// a peer that keeps breaking connections costs a bounded number of
	// tries.
	for try := 0; ; try++ {
		c, err := p.pick(ctx, t)
		if err != nil {
			if t.ctx.Err() != nil {
				return nil, ErrClosed
			}
			return nil, err
		}
		resp, retry, err := c.call(ctx, method, req)
		if retry && try < len(p.slots) {
			continue
		}
		if err != nil && t.ctx.Err() != nil && errors.Is(err, ErrUnavailable) {
			return nil, ErrClosed
		}
		return resp, err
	}
}

// Close stops listening, closes every connection and waits for the
// Transport's goroutines. Calls waiting when it begins, and all later ones,
// fail with ErrClosed. Running handlers see their ctx end, and Close waits
// for them to return, so it must not be called from a Handler. It always
// returns nil; calling it again waits the same way.
func (t *Transport) Close() error {
	t.closeOnce.Do(func() {
		t.mu.Lock()
		t.mu.closed = true
		conns := make([]*conn, 0, len(t.mu.conns))
		for c := range t.mu.conns {
			conns = append(conns, c)
		}
		t.mu.Unlock()
		t.cancel()
		t.ln.Close()
		for _, c := range conns {
			c.close(ErrClosed)
		}
	})
	t.wg.Wait()
	return nil
}

// goOwned starts f as a goroutine that Close waits for, unless Close has
// begun. Goroutines that are already owned may use wg.Add directly instead:
// while they run, Wait cannot have returned.
func (t *Transport) goOwned(f func()) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return false
	}
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		f()
	}()
	return true
}

// track records c as open so that Close closes it. It returns false, and
// c must be closed by the caller, once Close has begun.
func (t *Transport) track(c *conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.mu.closed {
		return false
	}
	t.mu.conns[c] = struct{}{}
	return true
}

func (t *Transport) untrack(c *conn) {
	t.mu.Lock()
	delete(t.mu.conns, c)
	t.mu.Unlock()
}

// acceptLoop accepts peers until the listener closes. Each accepted
// connection gets its own goroutine for the handshake and then its reader.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	var backoff time.Duration
	for {
		nc, err := t.ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or a similar passing failure:
			// wait and retry rather than spin.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.log.Warn("cluster: accept failed", slog.Any("err", err), slog.Duration("retry_in", backoff))
			select {
			case <-time.After(backoff):
			case <-t.ctx.Done():
				return
			}
			continue
		}
		backoff = 0
		select {
		case t.handshakes <- struct{}{}:
		default:
			t.log.Warn("cluster: too many handshakes in progress, closing connection",
				slog.String("remote", nc.RemoteAddr().String()))
			nc.Close()
			continue
		}
		t.wg.Add(1) // owned: acceptLoop itself is counted
		go func() {
			defer t.wg.Done()
			t.serveAccepted(nc)
		}()
	}
}

// serveAccepted runs the server side of the handshake on nc and then reads
// its requests until it closes.
func (t *Transport) serveAccepted(nc net.Conn) {
	c := newConn(t, nc, nil, nc.RemoteAddr().String())
	if !t.track(c) {
		<-t.handshakes
		nc.Close()
		return
	}
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	name, err := t.serverHandshake(nc, c.r)
	<-t.handshakes
	if err == nil {
		err = nc.SetDeadline(time.Time{})
	}
	if err != nil {
		if t.ctx.Err() == nil {
			t.log.Warn("cluster: peer handshake failed",
				slog.String("remote", c.addr), slog.Any("err", err))
		}
		c.close(fmt.Errorf("%w: handshake: %w", ErrUnavailable, err))
		return
	}
	c.peerName = name
	t.wg.Add(1) // owned: this goroutine is counted
	go c.writeLoop()
	c.readLoop()
}

// dial connects to addr and runs the client side of the handshake, all
// within handshakeTimeout or until Close begins. The returned connection is
// tracked; its reader and writer are not started yet.
func (t *Transport) dial(addr string, s *slot) (*conn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, handshakeTimeout)
	defer cancel()
	d := net.Dialer{KeepAliveConfig: keepAlive}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := newConn(t, nc, s, addr)
	if !t.track(c) {
		nc.Close()
		return nil, ErrClosed
	}
	deadline, _ := ctx.Deadline()
	nc.SetDeadline(deadline)
	// Close's cancel must also end a handshake that is blocked in I/O.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	name, err := t.clientHandshake(nc, c.r)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = nc.SetDeadline(time.Time{})
	}
	if err != nil {
		if t.ctx.Err() == nil {
			t.log.Warn("cluster: handshake with peer failed",
				slog.String("remote", addr), slog.Any("err", err))
		}
		c.close(ErrClosed) // no calls wait on it yet
		return nil, err
	}
	c.peerName = name
	return c, nil
}

// newBufReader returns the reader a connection reads through, from its
// handshake on.
func newBufReader(nc net.Conn) *bufio.Reader { return bufio.NewReaderSize(nc, 32<<10) }
