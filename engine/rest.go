package engine

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/valyala/fasthttp"

	"github.com/pushd/pushd/internal/protocol"
)

// The REST form of the client protocol (PROTOCOL.md 4): register,
// unregister, poll and ack over plain HTTP, for clients that cannot keep a
// WebSocket open and for relays. A poll that returns versions puts their
// UAIDs in flight exactly like a WebSocket UPDATE; such a flight has no
// connection (flight.to is nil) and ends with POST /v1/ack or the ack
// timeout.

// maxPollWait bounds the wait of a long poll.
const maxPollWait = 60 * time.Second

// remotePollInterval is how often a long poll asks owners on other nodes
// for versions.
const remotePollInterval = time.Second

// maxPollUAIDs bounds the UAIDs of one poll.
const maxPollUAIDs = 10000

// serveREST routes /v1/.
func (n *Node) serveREST(ctx *fasthttp.RequestCtx, path []byte) {
	switch {
	case string(path) == "/v1/register" && ctx.IsPost():
		n.restRegister(ctx)
	case bytes.HasPrefix(path, []byte("/v1/register/")) && ctx.IsDelete():
		n.restUnregister(ctx, path[len("/v1/register/"):])
	case string(path) == "/v1/updates" && ctx.IsGet():
		n.restPoll(ctx)
	case string(path) == "/v1/ack" && ctx.IsPost():
		n.restAck(ctx)
	case string(path) == "/v1/register" || string(path) == "/v1/ack":
		ctx.Response.Header.Set("Allow", "POST")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	case string(path) == "/v1/updates":
		ctx.Response.Header.Set("Allow", "GET")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	case bytes.HasPrefix(path, []byte("/v1/register/")):
		ctx.Response.Header.Set("Allow", "DELETE")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
	default:
		httpError(ctx, fasthttp.StatusNotFound, errnoMalformed, "no such resource")
	}
}

// restRegister is POST /v1/register {"uaid","channelID"}: like the
// WebSocket register, for the given UAID (an empty or invalid one is
// replaced by a new UUID4, as in hello).
func (n *Node) restRegister(ctx *fasthttp.RequestCtx) {
	var req struct {
		UAID      string          `json:"uaid"`
		ChannelID string          `json:"channelID"`
		Kick      json.RawMessage `json:"kick"`
	}
	if json.Unmarshal(ctx.PostBody(), &req) != nil {
		httpError(ctx, fasthttp.StatusBadRequest, errnoMalformed, "body must be a JSON object")
		return
	}
	u, ok := protocol.ParseUUID(req.UAID)
	if !ok {
		u = uuid.New()
	}
	chid, ok := protocol.ParseUUID(req.ChannelID)
	if !ok {
		httpError(ctx, fasthttp.StatusBadRequest, errnoMalformed, "invalid channelID")
		return
	}
	if t, ok, err := kickTarget(req.Kick, nil, nil); err != nil || ok {
		if err == nil {
			err = n.setKick(u, t)
		}
		if err != nil {
			httpError(ctx, fasthttp.StatusBadRequest, errnoMalformed, "invalid kick target")
			return
		}
	}
	endpoint, status, err := n.register(u, chid)
	if err != nil {
		httpError(ctx, status, errnoServer, err.Error())
		return
	}
	n.metrics.registers.Inc()
	b := append([]byte(`{"uaid":`), protocol.AppendString(nil, u.String())...)
	b = append(b, `,"channelID":`...)
	b = protocol.AppendString(b, chid.String())
	b = append(b, `,"pushEndpoint":`...)
	b = protocol.AppendString(b, endpoint)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(b, '}'))
}

// restUnregister is DELETE /v1/register/<uaid>/<channelID>: always 204.
func (n *Node) restUnregister(ctx *fasthttp.RequestCtx, rest []byte) {
	us, cs, _ := bytes.Cut(rest, []byte("/"))
	u, ok1 := protocol.ParseUUID(string(us))
	chid, ok2 := protocol.ParseUUID(string(cs))
	if ok1 && ok2 {
		n.unregisterChannel(u, chid)
		n.metrics.unregisters.Inc()
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// restPoll is GET /v1/updates?uaid=..&uaid=..[&wait=30s]: the UPDATE packet
// of the named UAIDs' pending versions that are not already in flight, or
// 204. With wait, it holds the request until a version arrives.
func (n *Node) restPoll(ctx *fasthttp.RequestCtx) {
	args := ctx.QueryArgs()
	raw := args.PeekMulti("uaid")
	if len(raw) == 0 || len(raw) > maxPollUAIDs {
		httpError(ctx, fasthttp.StatusBadRequest, errnoMalformed, "name 1 to 10000 uaids")
		return
	}
	uaids := make([]uuid.UUID, 0, len(raw))
	for _, r := range raw {
		if u, ok := protocol.ParseUUID(string(r)); ok {
			uaids = append(uaids, u)
		}
	}
	var wait time.Duration
	if w := args.Peek("wait"); len(w) > 0 {
		d, err := time.ParseDuration(string(w))
		if err != nil {
			secs, serr := strconv.Atoi(string(w))
			if serr != nil {
				httpError(ctx, fasthttp.StatusBadRequest, errnoMalformed, "wait must be a duration such as 30s")
				return
			}
			d = time.Duration(secs) * time.Second
		}
		wait = min(max(d, 0), maxPollWait)
	}

	// A long poll holds one of the HTTP listener's connections for its
	// whole wait: beyond half of them, polls answer at once so PUTs are
	// never starved.
	if wait > 0 {
		if n.longPolls.Add(1) > int64(n.http.Concurrency/2) {
			wait = 0
		}
		defer n.longPolls.Add(-1)
	}
	var wake chan struct{}
	if wait > 0 {
		// Registered before the first look, so a version stored in between
		// is not missed.
		wake = make(chan struct{}, 1)
		n.waiters.add(uaids, wake)
		defer n.waiters.remove(uaids, wake)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	// Owners on other nodes cannot wake this poll: it asks them again
	// every remotePollInterval.
	var recheck <-chan time.Time
	if wait > 0 && n.anyRemote(uaids) {
		t := time.NewTicker(remotePollInterval)
		defer t.Stop()
		recheck = t.C
	}
	for {
		packet := n.routeCollect(uaids)
		if len(packet) > 0 {
			n.metrics.notifications.Inc()
			ctx.SetContentType("application/json")
			ctx.SetBody(protocol.AppendPacket(nil, packet))
			return
		}
		if wait <= 0 {
			break
		}
		select {
		case <-wake:
			continue
		case <-recheck:
			continue
		case <-deadline.C:
		case <-n.quit:
		}
		break
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// restAck is POST /v1/ack {"uaids":[..]}: the seed's ACK for UAIDs whose
// versions a poll returned. Always 204.
func (n *Node) restAck(ctx *fasthttp.RequestCtx) {
	var req struct {
		UAIDs []string `json:"uaids"`
	}
	if json.Unmarshal(ctx.PostBody(), &req) != nil {
		httpError(ctx, fasthttp.StatusBadRequest, errnoMalformed, `body must be {"uaids":[...]}`)
		return
	}
	n.metrics.acks.Inc()
	uaids := make([]uuid.UUID, 0, len(req.UAIDs))
	for _, s := range req.UAIDs {
		if u, ok := protocol.ParseUUID(s); ok {
			uaids = append(uaids, u)
		}
	}
	n.routeAckFlight(nil, uaids)
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// anyRemote reports whether another node owns one of uaids.
func (n *Node) anyRemote(uaids []uuid.UUID) bool {
	for _, u := range uaids {
		if _, local := n.ownerOf(u); !local {
			return true
		}
	}
	return false
}
