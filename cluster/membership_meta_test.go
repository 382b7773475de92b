package cluster

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestMembershipMetaRoundTrip(t *testing.T) {
	for _, m := range []Meta{
		{},
		{RPCAddr: "127.0.0.1:7000", WSAddr: "127.0.0.1:8080", HTTPAddr: "[::1]:8081"},
		{WSAddr: "node-07.example:443"},
		{RPCAddr: "127.0.0.1:7000", UAIDTTL: 60 * 24 * time.Hour},
		{UAIDTTL: time.Second},
	} {
		b, err := encodeMeta(m)
		if err != nil {
			t.Fatalf("encode %+v: %v", m, err)
		}
		got, err := decodeMeta(b)
		if err != nil || got != m {
			t.Fatalf("decode(encode(%+v)) = %+v, %v", m, got, err)
		}
		// Later fields appended by newer nodes are ignored.
		if got, err := decodeMeta(append(b, 5, 'x')); err != nil || got != m {
			t.Fatalf("decode with trailing field = %+v, %v", got, err)
		}
	}
}

// A node of the release before UAIDTTL was gossiped writes the three
// addresses only: it does not say.
func TestMembershipMetaWithoutUAIDTTL(t *testing.T) {
	m, err := decodeMeta([]byte{1, 0, 0, 0})
	if err != nil || m.UAIDTTL != -1 {
		t.Fatalf("decode of the three addresses only: %+v, %v; want UAIDTTL -1", m, err)
	}
	if b, err := encodeMeta(Meta{UAIDTTL: -1}); err != nil || !bytes.Equal(b, []byte{1, 0, 0, 0}) {
		t.Fatalf("encode with UAIDTTL -1: %x, %v; want the three addresses only", b, err)
	}
}

func TestMembershipMetaRejects(t *testing.T) {
	long := "h:" + strings.Repeat("9", MaxMetaSize)
	if _, err := encodeMeta(Meta{RPCAddr: long}); !errors.Is(err, ErrBadMeta) {
		t.Errorf("encode oversized: %v", err)
	}
	if _, err := encodeMeta(Meta{WSAddr: "no port"}); !errors.Is(err, ErrBadMeta) {
		t.Errorf("encode non host:port: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"version 0":    {0, 0, 0, 0},
		"version 2":    {2, 0, 0, 0},
		"no fields":    {1},
		"truncated":    {1, 0, 0},
		"short field":  {1, 5, 'a', ':', '1'},
		"huge length":  {1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"bad varint":   {1, 0x80, 0x80},
		"long varint":  {1, 0x80, 0x00, 0, 0},
		"not utf-8":    {1, 4, 0xff, 0xfe, ':', '1', 0, 0},
		"not hostport": {1, 3, 'a', 'b', 'c', 0, 0},
		"oversized":    append([]byte{1, 0, 0, 0}, make([]byte, MaxMetaSize)...),
		"ttl zero":     {1, 0, 0, 0, 0},
		"ttl long":     {1, 0, 0, 0, 0x81, 0x00},
		"ttl huge":     {1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
	} {
		if m, err := decodeMeta(b); !errors.Is(err, ErrBadMeta) {
			t.Errorf("%s: decode = %+v, %v; want ErrBadMeta", name, m, err)
		}
	}
}

func FuzzDecodeMeta(f *testing.F) {
	for _, m := range []Meta{{}, {RPCAddr: "127.0.0.1:7000", WSAddr: "127.0.0.1:8080", HTTPAddr: "[::1]:8081", UAIDTTL: time.Hour}, {UAIDTTL: -1}} {
		b, err := encodeMeta(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			if !errors.Is(err, ErrBadMeta) {
				t.Fatalf("error %v does not wrap ErrBadMeta", err)
			}
			return
		}
		enc, err := encodeMeta(m)
		if err != nil {
			t.Fatalf("decoded %+v does not encode: %v", m, err)
		}
		if !bytes.HasPrefix(b, enc) {
			t.Fatalf("re-encoding %+v gives %x, not a prefix of %x", m, enc, b)
		}
	})
}
