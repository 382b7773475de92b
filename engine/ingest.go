package engine

import (
	"bytes"
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/pprofhandler"

	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/shardstore"
)

// MaxData is the most bytes of data a PUT may carry with its version.
const MaxData = 4096

// maxPutBody bounds a PUT body: data up to MaxData, url-encoded, and a
// version.
const maxPutBody = 3*MaxData + 64

// Error numbers of the JSON error body (written down in docs/protocol.md).
const (
	errnoMalformed   = 101
	errnoBadEndpoint = 102
	errnoUnregister  = 103
	errnoTooLarge    = 104
	errnoBadVersion  = 105
	errnoRateLimit   = 106
	errnoBusy        = 201
	errnoServer      = 999
)

// serveHTTP routes the HTTP listener: ingest, health and metrics.
func (n *Node) serveHTTP(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch {
	case bytes.HasPrefix(path, []byte("/update/")):
		n.serveUpdate(ctx, path[len("/update/"):])
	case bytes.HasPrefix(path, []byte("/v1/")):
		n.serveREST(ctx, path)
	case string(path) == "/health":
		if !n.ready.Load() {
			httpError(ctx, fasthttp.StatusServiceUnavailable, errnoServer, "not serving")
			return
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"status":"ok"}`)
	case n.cfg.Pprof && bytes.HasPrefix(path, []byte("/debug/pprof/")):
		pprofhandler.PprofHandler(ctx)
	case string(path) == "/cluster":
		n.serveCluster(ctx)
	case string(path) == "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4; charset=utf-8")
		_, _ = n.metrics.reg.WriteTo(ctx)
	default:
		httpError(ctx, fasthttp.StatusNotFound, errnoMalformed, "no such resource")
	}
}

// serveUpdate is PUT /update/<token> (PROTOCOL.md 3).
func (n *Node) serveUpdate(ctx *fasthttp.RequestCtx, tok []byte) {
	if ctx.IsOptions() {
		h := &ctx.Response.Header
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "PUT")
		h.Set("Access-Control-Allow-Headers", "Content-Type")
		h.Set("Access-Control-Max-Age", "86400")
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	if !ctx.IsPut() {
		ctx.Response.Header.Set("Allow", "PUT, OPTIONS")
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		n.metrics.puts.With("405").Inc()
		return
	}
	start := time.Now()
	status := n.put(ctx, tok)
	n.metrics.puts.With(strconv.Itoa(status)).Inc()
	n.metrics.putLatency.ObserveDuration(time.Since(start))
}

func (n *Node) put(ctx *fasthttp.RequestCtx, tok []byte) int {
	ctx.Response.Header.Set("Access-Control-Allow-Origin", "*")
	now := time.Now()
	if ok, wait := n.sourceLimit.allow(xxhash.Sum64(ctx.RemoteIP()), now); !ok {
		return tooMany(ctx, wait, "too many requests from this address")
	}
	u, chid, err := n.keys.Open(string(tok))
	if err != nil {
		return httpError(ctx, fasthttp.StatusNotFound, errnoBadEndpoint, "invalid endpoint")
	}
	if ok, wait := n.endpointLimit.allow(xxhash.Sum64(append(u[:], chid[:]...)), now); !ok {
		return tooMany(ctx, wait, "too many requests to this endpoint")
	}
	body := ctx.PostBody()
	if len(body) > maxPutBody {
		return httpError(ctx, fasthttp.StatusRequestEntityTooLarge, errnoTooLarge, "body too large")
	}
	form := fasthttp.AcquireArgs()
	defer fasthttp.ReleaseArgs(form)
	form.ParseBytes(body)
	p := shardstore.Put{Now: uint64(time.Now().Unix())}
	v := form.Peek("version")
	if !form.Has("version") {
		v = ctx.QueryArgs().Peek("version")
		if !ctx.QueryArgs().Has("version") {
			p.Auto = true
		}
	}
	if !p.Auto {
		ver, ok := protocol.ParseVersion(string(bytes.TrimSpace(v)))
		if !ok {
			return httpError(ctx, fasthttp.StatusBadRequest, errnoBadVersion, "version must be an integer from 0 to 2^53-1")
		}
		p.Version = ver
	}
	if form.Has("data") {
		data := form.Peek("data")
		if len(data) > MaxData {
			return httpError(ctx, fasthttp.StatusRequestEntityTooLarge, errnoTooLarge, "data larger than 4096 bytes")
		}
		if !utf8.Valid(data) {
			return httpError(ctx, fasthttp.StatusBadRequest, errnoMalformed, "data must be UTF-8")
		}
		p.Data = append([]byte{}, data...)
	}
	st, err := n.Put(u, chid, p)
	if err != nil {
		n.log.Error("put", "uaid", u, "err", err)
		ctx.Response.Header.Set("Retry-After", "1")
		return httpError(ctx, fasthttp.StatusServiceUnavailable, errnoServer, "store unavailable")
	}
	switch st {
	case PutDelivered:
		return httpOK(ctx, fasthttp.StatusOK)
	case PutStored:
		return httpOK(ctx, fasthttp.StatusAccepted)
	case PutNotFound:
		return httpError(ctx, fasthttp.StatusNotFound, errnoUnregister, "endpoint not registered")
	default: // PutBusy
		ctx.Response.Header.Set("Retry-After", "1")
		return httpError(ctx, fasthttp.StatusServiceUnavailable, errnoBusy, "an update for this user agent is in flight")
	}
}

// httpRequestError answers requests fasthttp could not read, in the
// JSON error shape.
func httpRequestError(ctx *fasthttp.RequestCtx, err error) {
	var small *fasthttp.ErrSmallBuffer
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		httpError(ctx, fasthttp.StatusRequestEntityTooLarge, errnoTooLarge, "body too large")
	case errors.As(err, &small):
		httpError(ctx, fasthttp.StatusRequestHeaderFieldsTooLarge, errnoMalformed, "request headers too large")
	default:
		httpError(ctx, fasthttp.StatusBadRequest, errnoMalformed, "malformed request")
	}
	ctx.SetConnectionClose()
}

// tooMany answers 429 with the seconds until the limit lets a request by.
func tooMany(ctx *fasthttp.RequestCtx, wait time.Duration, msg string) int {
	secs := int64(math.Ceil(wait.Seconds()))
	ctx.Response.Header.Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	return httpError(ctx, fasthttp.StatusTooManyRequests, errnoRateLimit, msg)
}

func httpOK(ctx *fasthttp.RequestCtx, status int) int {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBodyString("{}")
	return status
}

// httpError writes the JSON error body of PROTOCOL.md 3.
func httpError(ctx *fasthttp.RequestCtx, status, errno int, msg string) int {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	b := make([]byte, 0, 128)
	b = append(b, `{"code":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"errno":`...)
	b = strconv.AppendInt(b, int64(errno), 10)
	b = append(b, `,"error":`...)
	b = protocol.AppendString(b, fasthttp.StatusMessage(status))
	b = append(b, `,"message":`...)
	b = protocol.AppendString(b, msg)
	b = append(b, '}')
	ctx.SetBody(b)
	return status
}
