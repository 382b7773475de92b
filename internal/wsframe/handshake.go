package wsframe

import (
	"bytes"
	"errors"
	"net/http"

	"github.com/gobwas/ws"
)

// MaxHandshakeSize bounds the opening handshake request. A client that sends
// more without completing its headers is rejected.
const MaxHandshakeSize = 8 << 10

// Subprotocol is the WebSocket sub-protocol that SimplePush clients offer.
const Subprotocol = "push-notification"

// ErrHandshakeTooLarge is returned when a handshake request exceeds
// MaxHandshakeSize without ending.
var ErrHandshakeTooLarge = errors.New("wsframe: handshake request too large")

var headerEnd = []byte("\r\n\r\n")

const badRequest = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n"

var upgrader = ws.Upgrader{
	// Firefox offers "push-notification"; select it when offered, accept
	// clients that offer none.
	Protocol: func(p []byte) bool { return string(p) == Subprotocol },
	OnRequest: func(uri []byte) error {
		// The client listener serves one resource, "/" (query ignored).
		if i := bytes.IndexByte(uri, '?'); i >= 0 {
			uri = uri[:i]
		}
		if string(uri) != "/" {
			return ws.RejectConnectionError(ws.RejectionStatus(http.StatusNotFound))
		}
		return nil
	},
}

// Handshake parses an opening handshake from the start of in.
//
// It returns n == 0 and a nil error while the request is incomplete; the
// caller keeps the bytes and calls again when more arrive. Once the request is
// complete, n is its length and out is in with the HTTP response appended:
// a 101 Switching Protocols when err is nil, or an HTTP error response when
// err is not nil (the caller writes it and closes the connection). Bytes after
// the request (the client's first frames) are not consumed.
//
// in is only read; out may alias in's storage only if the caller passed
// in[:0:0]-style capacity, so callers pass a separate scratch slice.
func Handshake(in, out []byte) (n int, resp []byte, err error) {
	end := bytes.Index(in, headerEnd)
	if end < 0 {
		if len(in) > MaxHandshakeSize {
			resp = append(out, "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n"...)
			return len(in), resp, ErrHandshakeTooLarge
		}
		return 0, out, nil
	}
	n = end + len(headerEnd)
	if n > MaxHandshakeSize {
		resp = append(out, "HTTP/1.1 431 Request Header Fields Too Large\r\nConnection: close\r\n\r\n"...)
		return n, resp, ErrHandshakeTooLarge
	}
	rw := &handshakeRW{r: bytes.NewReader(in[:n]), w: bytes.NewBuffer(out)}
	_, err = upgrader.Upgrade(rw)
	resp = rw.w.Bytes()
	if err != nil && len(resp) == len(out) {
		// Requests the upgrader cannot even parse get no response from it.
		resp = append(resp, badRequest...)
	}
	return n, resp, err
}

// handshakeRW gives ws.Upgrader exactly one complete request to read and a
// buffer to write its response into.
type handshakeRW struct {
	r *bytes.Reader
	w *bytes.Buffer
}

func (h *handshakeRW) Read(p []byte) (int, error)  { return h.r.Read(p) }
func (h *handshakeRW) Write(p []byte) (int, error) { return h.w.Write(p) }
