package wsframe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/gobwas/ws"
)

// clientFrame builds a masked client frame by hand (independently of the
// code under test).
func clientFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, 0x80|126, byte(n>>8), byte(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	mask := [4]byte{0x12, 0x34, 0x56, 0x78}
	out = append(out, mask[:]...)
	for i, c := range payload {
		out = append(out, c^mask[i%4])
	}
	return out
}

// limitReader is a Reader with the message limit its connection would pass.
type limitReader struct {
	Reader
	max int
}

// feed drives a Reader the way the event loop does: bytes arrive in chunks
// of the given size, consumed bytes are discarded, the rest kept.
func feed(t *testing.T, r *limitReader, stream []byte, chunk int) (frames []Frame, err error) {
	t.Helper()
	var buf []byte
	for off := 0; off < len(stream) || len(buf) > 0; {
		if off < len(stream) {
			end := min(off+chunk, len(stream))
			buf = append(buf, stream[off:end]...)
			off = end
		}
		for {
			n, f, err := r.Next(buf, r.max)
			if err != nil {
				return frames, err
			}
			if n == 0 {
				break
			}
			if f.Kind != None {
				f.Payload = append([]byte(nil), f.Payload...)
				frames = append(frames, f)
			}
			buf = buf[n:]
		}
		if off >= len(stream) && len(buf) > 0 {
			// Input ended with a partial frame.
			return frames, nil
		}
	}
	return frames, nil
}

func TestReaderChunked(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 300)
	var stream []byte
	stream = append(stream, clientFrame(true, 0x1, []byte(`{"messageType":"hello"}`))...)
	stream = append(stream, clientFrame(true, 0x9, []byte("ping"))...)
	stream = append(stream, clientFrame(false, 0x1, []byte(`{"a":`))...)
	stream = append(stream, clientFrame(true, 0xA, nil)...) // control frame inside a fragmented message
	stream = append(stream, clientFrame(false, 0x0, []byte(`"`))...)
	stream = append(stream, clientFrame(true, 0x0, append(big, '"', '}'))...)
	stream = append(stream, clientFrame(true, 0x8, []byte{0x03, 0xe8, 'b', 'y', 'e'})...)

	want := []Kind{Text, Ping, Pong, Text, Close}
	for _, chunk := range []int{1, 2, 3, 7, 64, len(stream)} {
		var r limitReader
		frames, err := feed(t, &r, stream, chunk)
		if err != nil {
			t.Fatalf("chunk %d: %v", chunk, err)
		}
		if len(frames) != len(want) {
			t.Fatalf("chunk %d: got %d frames, want %d", chunk, len(frames), len(want))
		}
		for i, f := range frames {
			if f.Kind != want[i] {
				t.Fatalf("chunk %d frame %d: kind %d, want %d", chunk, i, f.Kind, want[i])
			}
		}
		if got := string(frames[3].Payload); got != `{"a":"`+string(big)+`"}` {
			t.Fatalf("chunk %d: reassembled %q", chunk, got)
		}
		if frames[4].Code != ws.StatusNormalClosure {
			t.Fatalf("chunk %d: close code %d", chunk, frames[4].Code)
		}
		if r.frag != nil {
			t.Fatalf("chunk %d: reader keeps a buffer after the message", chunk)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	unmasked := []byte{0x81, 0x02, 'h', 'i'}
	tests := []struct {
		name  string
		input []byte
		code  ws.StatusCode
	}{
		{"binary", clientFrame(true, 0x2, []byte("x")), ws.StatusUnsupportedData},
		{"unmasked", unmasked, ws.StatusProtocolError},
		{"rsv bits", func() []byte { f := clientFrame(true, 0x1, []byte("{}")); f[0] |= 0x40; return f }(), ws.StatusProtocolError},
		{"reserved opcode", clientFrame(true, 0x3, nil), ws.StatusProtocolError},
		{"continuation first", clientFrame(true, 0x0, []byte("x")), ws.StatusProtocolError},
		{"fragmented control", clientFrame(false, 0x9, nil), ws.StatusProtocolError},
		{"long control", clientFrame(true, 0x9, bytes.Repeat([]byte("x"), 126)), ws.StatusProtocolError},
		{"invalid utf8", clientFrame(true, 0x1, []byte{0xff, 0xfe}), ws.StatusInvalidFramePayloadData},
		{"too big", clientFrame(true, 0x1, bytes.Repeat([]byte("x"), DefaultMaxMessage+1)), ws.StatusMessageTooBig},
		{"too big in fragments", append(clientFrame(false, 0x1, bytes.Repeat([]byte("x"), DefaultMaxMessage)), clientFrame(true, 0x0, []byte("x"))...), ws.StatusMessageTooBig},
		{"text inside fragmented", append(clientFrame(false, 0x1, []byte("x")), clientFrame(true, 0x1, []byte("x"))...), ws.StatusProtocolError},
		{"close with 1 byte", clientFrame(true, 0x8, []byte{3}), ws.StatusProtocolError},
		{"close with reserved code", clientFrame(true, 0x8, []byte{0x03, 0xed}), ws.StatusProtocolError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r limitReader
			_, err := feed(t, &r, tt.input, 5)
			var ce *CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a CloseError", err)
			}
			if ce.Code != tt.code {
				t.Fatalf("code = %d, want %d", ce.Code, tt.code)
			}
		})
	}
}

func TestReaderOversizeRejectedFromHeader(t *testing.T) {
	// A header announcing a huge payload is refused before the payload
	// arrives, so a client cannot make the node buffer it.
	var r Reader
	hdr := []byte{0x81, 0x80 | 127, 0, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4}
	_, _, err := r.Next(hdr, 0)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig {
		t.Fatalf("err = %v, want 1009", err)
	}
}

func TestWriterRoundTrip(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		payload := bytes.Repeat([]byte("a"), n)
		frame := AppendText(nil, payload)
		h, err := ws.ReadHeader(bytes.NewReader(frame))
		if err != nil {
			t.Fatalf("len %d: %v", n, err)
		}
		if !h.Fin || h.OpCode != ws.OpText || h.Masked || h.Length != int64(n) {
			t.Fatalf("len %d: header %+v", n, h)
		}
		if !bytes.Equal(frame[ws.HeaderSize(h):], payload) {
			t.Fatalf("len %d: payload differs", n)
		}
	}
	cl := AppendClose(nil, 4001, "superseded")
	h, _ := ws.ReadHeader(bytes.NewReader(cl))
	code, reason := ws.ParseCloseFrameData(cl[ws.HeaderSize(h):])
	if h.OpCode != ws.OpClose || code != 4001 || reason != "superseded" {
		t.Fatalf("close frame: %+v %d %q", h, code, reason)
	}
}

func BenchmarkReaderText(b *testing.B) {
	frame := clientFrame(true, 0x1, []byte(`{"messageType":"ack","updates":[{"channelID":"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60","version":12}]}`))
	buf := make([]byte, len(frame))
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		copy(buf, frame)
		var r Reader
		if n, f, err := r.Next(buf, 0); n != len(frame) || f.Kind != Text || err != nil {
			b.Fatal(n, f.Kind, err)
		}
	}
}

func BenchmarkAppendText(b *testing.B) {
	msg := []byte(`{"messageType":"notification","updates":[{"channelID":"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60","version":12}]}`)
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendText(dst[:0], msg)
	}
}
