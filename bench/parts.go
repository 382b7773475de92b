package bench

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"

	"github.com/cockroachdb/pebble/v2"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/google/uuid"
	"github.com/valyala/fasthttp"
)

// BaselinePartsReady is the line the parts baseline prints once it
// listens.
const BaselinePartsReady = "baseline-parts serving"

// RunBaselineParts runs the cycle's floor: the parts a PUT -> delivered ->
// acked cycle cannot do without, put together with nothing else. A device
// connects over WebSocket (gobwas/ws, a goroutine per connection), says
// hello and registers one channel, and gets an endpoint; a PUT to it
// (fasthttp) parses version=N, writes it to Pebble synced (concurrent PUTs
// share the fsync in Pebble's commit pipeline), writes the notification to
// the device's connection and answers 200 {}; the device's ack is written
// to Pebble without a sync. There is no lock, no check of the version, no
// token, no store record layout, no delivery state and no metrics: it is
// what pushd's design pieces cost on their own, not a push server.
//
// The store lives in a fresh directory under dir ("" for the system's
// temporary directory), removed when RunBaselineParts returns.
func RunBaselineParts(ctx context.Context, wsAddr, httpAddr, dir string, out io.Writer) error {
	dataDir, err := os.MkdirTemp(dir, "pushbench-parts-")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer os.RemoveAll(dataDir)
	db, err := pebble.Open(dataDir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		return fmt.Errorf("bench: parts store: %w", err)
	}
	defer db.Close()
	wl, err := net.Listen("tcp", wsAddr)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	hl, err := net.Listen("tcp", httpAddr)
	if err != nil {
		wl.Close()
		return fmt.Errorf("bench: %w", err)
	}
	p := &parts{db: db, base: "http://" + hl.Addr().String() + "/update/"}
	srv := &fasthttp.Server{Handler: p.put, Name: "baseline-parts"}
	fmt.Fprintf(out, "%s ws=%s http=%s\n", BaselinePartsReady, wl.Addr(), hl.Addr())
	go func() {
		<-ctx.Done()
		wl.Close()
		_ = srv.Shutdown()
	}()
	go p.accept(wl)
	return srv.Serve(hl)
}

// parts is the state of the parts baseline.
type parts struct {
	db   *pebble.DB
	base string // endpoint URL prefix

	// mu guards devs, which grows by one device per registration; PUTs
	// read it.
	mu   sync.RWMutex
	devs []*partsDevice
}

// partsDevice is one device's connection; mu serialises writes to it.
type partsDevice struct {
	mu   sync.Mutex
	conn net.Conn
	chid string
}

func (p *parts) accept(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		go p.serve(c)
	}
}

// serve upgrades c and reads its messages: hello and register are
// answered, anything else is taken for an ack.
func (p *parts) serve(c net.Conn) {
	defer c.Close()
	if _, err := ws.Upgrade(c); err != nil {
		return
	}
	d := &partsDevice{conn: c}
	idx := -1
	var key [8]byte
	for {
		msg, err := wsutil.ReadClientText(c)
		if err != nil {
			return
		}
		if idx >= 0 {
			if p.db.Set(key[:], msg, pebble.NoSync) != nil {
				return
			}
			continue
		}
		var m struct {
			MessageType string `json:"messageType"`
			ChannelID   string `json:"channelID"`
		}
		if json.Unmarshal(msg, &m) != nil {
			return
		}
		var reply []byte
		switch m.MessageType {
		case "hello":
			reply, _ = json.Marshal(map[string]any{"messageType": "hello", "status": 200, "uaid": uuid.NewString()})
		case "register":
			d.chid = m.ChannelID
			p.mu.Lock()
			idx = len(p.devs)
			p.devs = append(p.devs, d)
			p.mu.Unlock()
			binary.BigEndian.PutUint64(key[:], uint64(idx))
			reply, _ = json.Marshal(map[string]any{"messageType": "register", "status": 200, "channelID": m.ChannelID,
				"pushEndpoint": p.base + strconv.Itoa(idx)})
		default:
			return
		}
		d.mu.Lock()
		err = wsutil.WriteServerText(c, reply)
		d.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// put answers PUT /update/<device index>.
func (p *parts) put(ctx *fasthttp.RequestCtx) {
	idx, err := strconv.Atoi(string(bytes.TrimPrefix(ctx.Path(), []byte("/update/"))))
	var form fasthttp.Args
	form.ParseBytes(ctx.PostBody())
	v, verr := form.GetUint("version")
	p.mu.RLock()
	var d *partsDevice
	if err == nil && idx >= 0 && idx < len(p.devs) {
		d = p.devs[idx]
	}
	p.mu.RUnlock()
	if d == nil || verr != nil || !ctx.IsPut() {
		ctx.SetStatusCode(fasthttp.StatusBadRequest)
		return
	}
	var rec [16]byte
	binary.BigEndian.PutUint64(rec[:8], uint64(idx)|1<<63)
	binary.BigEndian.PutUint64(rec[8:], uint64(v))
	if err := p.db.Set(rec[:8], rec[8:], pebble.Sync); err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		return
	}
	msg := make([]byte, 0, 128)
	msg = append(msg, `{"messageType":"notification","updates":[{"channelID":"`...)
	msg = append(msg, d.chid...)
	msg = append(msg, `","version":`...)
	msg = strconv.AppendInt(msg, int64(v), 10)
	msg = append(msg, "}]}"...)
	d.mu.Lock()
	err = wsutil.WriteServerText(d.conn, msg)
	d.mu.Unlock()
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBodyString("{}")
}

// quietPebble drops Pebble's informational logs.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
