package protocol

import (
	"encoding/json"
	"testing"

	"github.com/google/uuid"
)

func TestEncodeIsJSON(t *testing.T) {
	u := uuid.MustParse("5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60")
	c := uuid.MustParse("00000000-0000-4000-8000-000000000001")
	tests := map[string][]byte{
		"hello":        AppendHello(nil, u, 300),
		"hello multi":  AppendHelloMulti(nil, []uuid.UUID{u, c}, 300),
		"register":     AppendRegister(nil, c, "http://h/update/abc"),
		"unregister":   AppendUnregister(nil, "a\"b"),
		"error":        AppendError(nil, "we\"ird\x01", 401, "invalid channelID"),
		"notification": AppendNotification(nil, []Update{{c, 7, nil}, {u, MaxVersion, []byte("d\"a\n\xff\u2028ta")}}),
		"update":       AppendUpdate(nil, []UAIDUpdates{{u, []Update{{c, 7, nil}, {u, 8, nil}}}, {c, []Update{{c, 1, nil}}}}),
		"ping":         AppendPing(nil),
	}
	for name, b := range tests {
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%s: %s is not JSON: %v", name, b, err)
		}
	}
	want := `{"messageType":"notification","updates":[{"channelID":"00000000-0000-4000-8000-000000000001","version":7}]}`
	if got := string(AppendNotification(nil, []Update{{c, 7, nil}})); got != want {
		t.Errorf("notification\n got %s\nwant %s", got, want)
	}
	want = `{"messageType":"update","updates":{"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60":{"00000000-0000-4000-8000-000000000001":7}}}`
	if got := string(AppendUpdate(nil, []UAIDUpdates{{u, []Update{{c, 7, nil}}}})); got != want {
		t.Errorf("update\n got %s\nwant %s", got, want)
	}
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "\x00\x1f\t\n\r", "é€😀", "\u2028\u2029", "<>&"} {
		var back string
		if err := json.Unmarshal(AppendString(nil, s), &back); err != nil || back != s {
			t.Errorf("AppendString(%q) round-trips to %q (%v)", s, back, err)
		}
	}
}

func BenchmarkDecodeAck(b *testing.B) {
	msg := []byte(`{"messageType":"ack","updates":[{"channelID":"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60","version":12}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendNotification(b *testing.B) {
	ups := []Update{{uuid.New(), 12, nil}}
	dst := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		dst = AppendNotification(dst[:0], ups)
	}
}

func BenchmarkDecodeHello(b *testing.B) {
	msg := []byte(`{"messageType":"hello","uaid":"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60","channelIDs":["5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f61","5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f62"]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(msg); err != nil {
			b.Fatal(err)
		}
	}
}
