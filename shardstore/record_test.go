package shardstore

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func encodeChannel(r channelRecord) []byte {
	b := make([]byte, r.encodedLen())
	r.encodeTo(b)
	return b
}

func TestChannelRecordRoundTrip(t *testing.T) {
	for _, r := range []channelRecord{
		{},
		{version: 7},
		{version: 7, pending: 7},
		{version: 9, pending: 7, hasData: true, data: []byte{}},
		{version: 9, pending: 9, hasData: true, data: []byte("hello")},
		{version: 1<<64 - 1, pending: 1<<64 - 1, hasData: true, data: []byte(strings.Repeat("z", MaxDataSize))},
		{gen: 1},
		{gen: 3, version: 9, pending: 9, hasData: true, data: []byte("later")},
		{gen: 1<<32 - 1, version: 2, pending: 1},
		{dead: true, unregAt: 1, version: 0},
		{dead: true, unregAt: 1_800_000_000, version: 12, gen: 7},
	} {
		b := encodeChannel(r)
		if enc := b[0]; enc == channelEncV1 != (r.gen == 0 && !r.dead) {
			t.Errorf("%+v encoded as encoding %d", r, enc)
		}
		got, err := decodeChannel(b)
		if err != nil {
			t.Errorf("decode(encode(%+v)): %v", r, err)
			continue
		}
		if got.version != r.version || got.pending != r.pending || got.hasData != r.hasData ||
			got.gen != r.gen || got.dead != r.dead || got.unregAt != r.unregAt ||
			!bytes.Equal(got.data, r.data) || (got.data == nil) != (r.data == nil) {
			t.Errorf("decode(encode(%+v)) = %+v", r, got)
		}
	}
}

func TestDecodeChannelRejectsGarbage(t *testing.T) {
	valid := encodeChannel(channelRecord{version: 9, pending: 9, hasData: true, data: []byte("d")})
	mutate := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(valid)) }
	mutate2 := func(r channelRecord, f func(b []byte)) []byte {
		b := encodeChannel(r)
		if _, err := decodeChannel(b); err != nil {
			t.Fatalf("%+v does not decode before the mutation: %v", r, err)
		}
		f(b)
		return b
	}
	for name, b := range map[string][]byte{
		"nil":                             nil,
		"short":                           valid[:channelHeaderLen-1],
		"encoding 0":                      mutate(func(b []byte) []byte { b[0] = 0; return b }),
		"encoding 2 too short":            mutate(func(b []byte) []byte { b[0] = 2; return b }),
		"encoding 3":                      mutate(func(b []byte) []byte { b[0] = 3; return b }),
		"unknown flag":                    mutate(func(b []byte) []byte { b[1] |= 0x80; return b }),
		"tombstone flag in 1":             mutate(func(b []byte) []byte { b[1] |= flagDead; return b }),
		"unknown flag in 2":               mutate2(channelRecord{gen: 1}, func(b []byte) { b[1] |= 0x04 }),
		"tombstone pending":               mutate2(channelRecord{dead: true, unregAt: 5, version: 3}, func(b []byte) { b[17] = 1 }),
		"tombstone with data":             mutate2(channelRecord{dead: true, unregAt: 5, version: 3}, func(b []byte) { b[1] |= flagHasData }),
		"tombstone at time 0":             mutate2(channelRecord{dead: true, unregAt: 5}, func(b []byte) { b[29] = 0 }),
		"tombstone before 1970":           mutate2(channelRecord{dead: true, unregAt: 5}, func(b []byte) { b[22] = 0x80 }),
		"live with a time":                mutate2(channelRecord{gen: 1}, func(b []byte) { b[29] = 1 }),
		"live generation 0 in encoding 2": mutate2(channelRecord{gen: 1}, func(b []byte) { b[21] = 0 }),
		"data without flag":               mutate(func(b []byte) []byte { b[1] = 0; return b }),
		"pending above highest":           encodeChannel(channelRecord{version: 1, pending: 2}),
		"data but not pending":            encodeChannel(channelRecord{version: 1, hasData: true, data: []byte("x")}),
		"oversize data": encodeChannel(channelRecord{version: 1, pending: 1, hasData: true,
			data: make([]byte, MaxDataSize+1)}),
	} {
		if _, err := decodeChannel(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodeChannel(%x...) err %v, want ErrCorrupt", name, b[:min(len(b), 20)], err)
		}
	}
}

func TestDecodeMeta(t *testing.T) {
	if m, err := decodeMeta([]byte{metaEncV1, 'k'}); err != nil || string(m) != "k" {
		t.Errorf("decodeMeta = %q, %v", m, err)
	}
	for name, b := range map[string][]byte{
		"nil":        nil,
		"empty blob": {metaEncV1},
		"encoding 2": {2, 'k'},
		"oversize":   append([]byte{metaEncV1}, make([]byte, MaxMetaSize+1)...),
	} {
		if _, err := decodeMeta(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodeMeta err %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzDecodeChannel: decoding never panics, and whatever decodes encodes
// back to the same bytes.
func FuzzDecodeChannel(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{channelEncV1})
	f.Add(encodeChannel(channelRecord{}))
	f.Add(encodeChannel(channelRecord{version: 5, pending: 5}))
	f.Add(encodeChannel(channelRecord{version: 5, pending: 5, hasData: true, data: []byte("data")}))
	f.Add(encodeChannel(channelRecord{version: 5, pending: 3, hasData: true, data: []byte{}}))
	f.Add(encodeChannel(channelRecord{version: 1, pending: 2}))
	f.Add(encodeChannel(channelRecord{gen: 2, version: 5, pending: 5, hasData: true, data: []byte("data")}))
	f.Add(encodeChannel(channelRecord{dead: true, unregAt: 1_800_000_000, version: 5, gen: 1}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeChannel(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if again := encodeChannel(r); !bytes.Equal(again, b) {
			t.Fatalf("decode then encode: %x, want %x", again, b)
		}
	})
}
