package engine

import (
	"bytes"
	"testing"

	"github.com/google/uuid"

	"github.com/pushd/pushd/internal/protocol"
	"github.com/pushd/pushd/shardstore"
)

func samplePacket() []protocol.UAIDUpdates {
	return []protocol.UAIDUpdates{
		{UAID: uuid.New(), Updates: []protocol.Update{
			{ChannelID: uuid.New(), Version: 7},
			{ChannelID: uuid.New(), Version: 1 << 52, Data: []byte("hello")},
			{ChannelID: uuid.New(), Version: 3, Data: []byte{}},
		}},
		{UAID: uuid.New(), Updates: []protocol.Update{{ChannelID: uuid.New(), Version: 9}}},
	}
}

// TestWireRoundTrip writes every kind of field and reads it back.
func TestWireRoundTrip(t *testing.T) {
	packet := samplePacket()
	kvs := []shardstore.KV{{Key: []byte("k1"), Value: []byte("v1")}, {Key: []byte("k2"), Value: nil}}
	us := []uuid.UUID{uuid.New(), uuid.New()}
	var b wbuf
	b.byte1(9)
	b.boolean(true)
	b.u32(1 << 31)
	b.u64(1<<63 + 5)
	b.uuid(us[0])
	b.str("channel")
	b.optBytes(nil)
	b.optBytes([]byte{})
	b.uuids(us)
	b.packet(packet)
	writeKVs(&b, kvs)

	r := rbuf{b: b}
	if r.byte1() != 9 || !r.boolean() || r.u32() != 1<<31 || r.u64() != 1<<63+5 || r.uuid() != us[0] || r.str() != "channel" {
		t.Fatal("scalar fields differ")
	}
	if r.optBytes() != nil {
		t.Error("nil data came back non-nil")
	}
	if v := r.optBytes(); v == nil || len(v) != 0 {
		t.Errorf("empty data came back as %v", v)
	}
	if got := r.uuids(); len(got) != 2 || got[0] != us[0] || got[1] != us[1] {
		t.Errorf("uuids: %v", got)
	}
	got := r.packet()
	if len(got) != len(packet) {
		t.Fatalf("packet: %d UAIDs", len(got))
	}
	for i := range packet {
		if got[i].UAID != packet[i].UAID || len(got[i].Updates) != len(packet[i].Updates) {
			t.Fatalf("packet UAID %d differs", i)
		}
		for j, up := range packet[i].Updates {
			g := got[i].Updates[j]
			if g.ChannelID != up.ChannelID || g.Version != up.Version || !bytes.Equal(g.Data, up.Data) || (g.Data == nil) != (up.Data == nil) {
				t.Errorf("update %d/%d: %+v, want %+v", i, j, g, up)
			}
		}
	}
	gk := readKVs(&r)
	if len(gk) != 2 || string(gk[0].Key) != "k1" || string(gk[0].Value) != "v1" || string(gk[1].Key) != "k2" {
		t.Errorf("kvs: %+v", gk)
	}
	if err := r.err(); err != nil {
		t.Fatal(err)
	}
}

// TestWireRejectsBadPayloads: truncated payloads, trailing bytes and
// lengths beyond the payload are errors, never panics or big allocations.
func TestWireRejectsBadPayloads(t *testing.T) {
	var b wbuf
	b.packet(samplePacket())
	for cut := 0; cut < len(b); cut++ {
		r := rbuf{b: b[:cut]}
		r.packet()
		if r.err() == nil {
			t.Fatalf("packet cut at %d of %d read without error", cut, len(b))
		}
	}
	r := rbuf{b: append(append([]byte{}, b...), 0)}
	r.packet()
	if r.err() == nil {
		t.Error("trailing byte not reported")
	}
	// A count of 2^60 UAIDs in a 10-byte payload.
	huge := binaryUvarint(1 << 60)
	r = rbuf{b: huge}
	if got := r.uuids(); len(got) != 0 || r.err() == nil {
		t.Errorf("huge count: %d items, err %v", len(got), r.err())
	}
}

func binaryUvarint(v uint64) []byte {
	var b wbuf
	b.uvarint(int(v))
	return b
}

// FuzzWire reads arbitrary bytes as every payload shape: no panic, and no
// more items than the bytes could hold.
func FuzzWire(f *testing.F) {
	var b wbuf
	b.packet(samplePacket())
	f.Add([]byte(b))
	var k wbuf
	writeKVs(&k, []shardstore.KV{{Key: []byte("key"), Value: []byte("value")}})
	f.Add([]byte(k))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := rbuf{b: in}
		if p := r.packet(); len(p) > len(in)/17 {
			t.Fatalf("%d UAIDs from %d bytes", len(p), len(in))
		}
		r = rbuf{b: in}
		if kvs := readKVs(&r); len(kvs) > len(in)/2 {
			t.Fatalf("%d records from %d bytes", len(kvs), len(in))
		}
		r = rbuf{b: in}
		_, _, _ = r.str(), r.optBytes(), r.uuids()
		_ = r.err()
	})
}
