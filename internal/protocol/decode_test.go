package protocol

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestDecode(t *testing.T) {
	tests := []struct {
		in   string
		want Message
	}{
		{`{}`, Message{Type: TypePing}},
		{` { } `, Message{Type: TypePing}},
		{`{"messageType":"ping"}`, Message{Type: TypePing, RawType: "ping"}},
		{`{"foo":1}`, Message{Type: TypeUnknown}},
		{`{"messageType":"hello","uaid":"abc","channelIDs":["a",2,"b"]}`,
			Message{Type: TypeHello, RawType: "hello", UAID: "abc", ChannelIDs: []string{"a", "b"}}},
		{`{"messageType":"hello","uaid":5,"channelIDs":"x"}`, Message{Type: TypeHello, RawType: "hello"}},
		{`{"messageType":"hello","uaids":["u1","u2"]}`, Message{Type: TypeHello, RawType: "hello", UAIDs: []string{"u1", "u2"}, HasUAIDs: true}},
		{`{"messageType":"register","channelID":"c"}`, Message{Type: TypeRegister, RawType: "register", ChannelID: "c"}},
		{`{"messageType":"unregister","channelID":"c"}`, Message{Type: TypeUnregister, RawType: "unregister", ChannelID: "c"}},
		{`{"messageType":"ack","updates":[{"channelID":"c","version":7},{"channelID":"d","version":-1},{"channelID":3,"version":1},{"channelID":"e","version":1.5}]}`,
			Message{Type: TypeAck, RawType: "ack", Updates: []AckUpdate{{"c", 7, true}, {"d", 0, false}, {"", 1, false}, {"e", 0, false}}}},
		{`{"messageType":"ack","uaids":["u"]}`, Message{Type: TypeAck, RawType: "ack", UAIDs: []string{"u"}, HasUAIDs: true}},
		{`{"messageType":"bogus"}`, Message{Type: TypeUnknown, RawType: "bogus"}},
		{`{"messageType":7}`, Message{Type: TypeUnknown}},
	}
	for _, tt := range tests {
		got, err := Decode([]byte(tt.in))
		if err != nil {
			t.Errorf("Decode(%s): %v", tt.in, err)
			continue
		}
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(tt.want)
		if string(gj) != string(wj) {
			t.Errorf("Decode(%s)\n got %s\nwant %s", tt.in, gj, wj)
		}
	}
}

// The reflection-free ack path must agree with encoding/json on every
// input it accepts.
func TestDecodeAckFastAgrees(t *testing.T) {
	for _, in := range []string{
		`{"messageType":"ack","updates":[{"channelID":"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60","version":12}]}`,
		`{"messageType":"ack","updates":[{"channelID":"a","version":1},{"channelID":"b","version":9007199254740991}]}`,
		`{"messageType":"ack","updates":[{"channelID":"a","version":9007199254740992}]}`,
		`{"messageType":"ack","updates":[{"channelID":"é","version":0}]}`,
		`{"messageType":"ack","updates":[{"channelID":"a\"b","version":1}]}`,
		`{"messageType":"ack","updates":[{"channelID":"a","version":1}]}x`,
		`{"messageType":"ack","updates":[{"channelID":"a","version":1.5}]}`,
		`{"messageType":"ack","updates":[]}`,
	} {
		fast, ok := decodeAckFast([]byte(in))
		var raw rawMessage
		if json.Unmarshal([]byte(in), &raw) != nil {
			if ok {
				t.Errorf("fast path accepted invalid JSON %s", in)
			}
			continue
		}
		if !ok {
			continue
		}
		slow := Message{Type: TypeAck, RawType: "ack", Updates: ackUpdates(raw.Updates)}
		fj, _ := json.Marshal(fast)
		sj, _ := json.Marshal(slow)
		if string(fj) != string(sj) {
			t.Errorf("%s\nfast %s\nslow %s", in, fj, sj)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, in := range []string{``, `[]`, `"hello"`, `7`, `{`, `{"messageType":"hello"`, `{"a":1}x`, `null`} {
		if _, err := Decode([]byte(in)); err != ErrNotObject {
			t.Errorf("Decode(%q) = %v, want ErrNotObject", in, err)
		}
	}
}

func TestDecodeKickTargets(t *testing.T) {
	m, err := Decode([]byte(`{"messageType":"hello","wakeup_hostport":{"ip":"10.0.0.5","port":4774},"mobilenetwork":{"mcc":"214","mnc":"07"},"kick":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(m.WakeupHostport) != `{"ip":"10.0.0.5","port":4774}` || string(m.MobileNetwork) != `{"mcc":"214","mnc":"07"}` || m.Kick != nil {
		t.Fatalf("got %s %s %s", m.WakeupHostport, m.MobileNetwork, m.Kick)
	}
}

func TestParseUUID(t *testing.T) {
	want := uuid.MustParse("5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60")
	for _, s := range []string{"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60", "5F8E3A52-8C6B-4D1E-9F0A-1B2C3D4E5F60", "5f8e3a528c6b4d1e9f0a1b2c3d4e5f60"} {
		got, ok := ParseUUID(s)
		if !ok || got != want {
			t.Errorf("ParseUUID(%q) = %v, %v", s, got, ok)
		}
	}
	for _, s := range []string{"", "{5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60}", "urn:uuid:5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60",
		"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f6g", "5f8e3a52+8c6b-4d1e-9f0a-1b2c3d4e5f60", "5f8e3a528c6b4d1e9f0a1b2c3d4e5f6", strings.Repeat("0", 36)} {
		if _, ok := ParseUUID(s); ok {
			t.Errorf("ParseUUID(%q) accepted", s)
		}
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]uint64{"0": 0, "000": 0, "7": 7, "0007": 7, "9007199254740991": MaxVersion, "00000000000000000009007199254740991": MaxVersion} {
		if v, ok := ParseVersion(s); !ok || v != want {
			t.Errorf("ParseVersion(%q) = %d, %v", s, v, ok)
		}
	}
	for _, s := range []string{"", "-1", "+1", "1.0", "1e3", "9007199254740992", "0009007199254740992", "99999999999999999999", "0-1", " 1", "0x10"} {
		if _, ok := ParseVersion(s); ok {
			t.Errorf("ParseVersion(%q) accepted", s)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"messageType":"ping"}`,
		`{"messageType":"hello","uaid":"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60","channelIDs":["5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f61"]}`,
		`{"messageType":"hello","uaids":["5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f60"]}`,
		`{"messageType":"register","channelID":"5f8e3a52-8c6b-4d1e-9f0a-1b2c3d4e5f61","kick":{"type":"udp","ip":"127.0.0.1","port":9}}`,
		`{"messageType":"unregister","channelID":"x"}`,
		`{"messageType":"ack","updates":[{"channelID":"x","version":1}]}`,
		`{"messageType":"ack","uaids":["x"]}`,
		`{"messageType":"ack","updates":[{"channelID":"x","version":1},{"channelID":"y","version":2}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		m, err := Decode(in)
		if err != nil {
			return
		}
		if fast, ok := decodeAckFast(in); ok {
			var raw rawMessage
			if json.Unmarshal(in, &raw) != nil {
				t.Fatalf("fast ack path accepted invalid JSON %q", in)
			}
			slow := Message{Type: TypeAck, RawType: "ack", Updates: ackUpdates(raw.Updates)}
			fj, _ := json.Marshal(fast)
			sj, _ := json.Marshal(slow)
			if string(fj) != string(sj) {
				t.Fatalf("%q: fast %s, slow %s", in, fj, sj)
			}
		}
		if !json.Valid(in) {
			t.Fatalf("accepted invalid JSON %q", in)
		}
		for _, u := range m.Updates {
			if u.OK && u.Version > MaxVersion {
				t.Fatalf("version %d over the maximum", u.Version)
			}
		}
	})
}
