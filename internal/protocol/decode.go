package protocol

import (
	"encoding/json"
	"errors"
)

// MaxVersion is the largest version a client or app server may use: 2^53-1,
// the largest integer JavaScript clients represent exactly.
const MaxVersion = 1<<53 - 1

// ErrNotObject is returned by Decode when the message is not a JSON object.
var ErrNotObject = errors.New("protocol: message is not a JSON object")

// Type is a client message type.
type Type uint8

const (
	TypeUnknown Type = iota
	TypePing
	TypeHello
	TypeRegister
	TypeUnregister
	TypeAck
)

// Message is a decoded client message. String fields hold what the client
// sent when the JSON field was a string, and "" when it was absent or of
// another type; list fields keep only their string elements.
type Message struct {
	Type Type
	// RawType is the messageType as sent (echoed in error replies).
	RawType string

	UAID       string
	UAIDs      []string // the seed's multi-UAID hello, and a multi-UAID ack
	HasUAIDs   bool     // "uaids" was present as an array
	ChannelIDs []string
	ChannelID  string
	// Updates are the (channelID, version) pairs of a single-UAID ack.
	Updates []AckUpdate

	// Kick, WakeupHostport and MobileNetwork are the raw JSON of those
	// fields (KICK targets, PROTOCOL.md 5), nil when absent. They are
	// copies the caller owns.
	Kick           json.RawMessage
	WakeupHostport json.RawMessage
	MobileNetwork  json.RawMessage
}

// AckUpdate is one element of an ack's "updates" list. OK is false when the
// element was malformed (such elements are ignored).
type AckUpdate struct {
	ChannelID string
	Version   uint64
	OK        bool
}

type rawMessage struct {
	MessageType    json.RawMessage `json:"messageType"`
	UAID           json.RawMessage `json:"uaid"`
	UAIDs          json.RawMessage `json:"uaids"`
	ChannelIDs     json.RawMessage `json:"channelIDs"`
	ChannelID      json.RawMessage `json:"channelID"`
	Updates        json.RawMessage `json:"updates"`
	Kick           json.RawMessage `json:"kick"`
	WakeupHostport json.RawMessage `json:"wakeup_hostport"`
	MobileNetwork  json.RawMessage `json:"mobilenetwork"`
}

// Decode parses one client message. Only input that is not a JSON object
// is an error; fields of the wrong type read as absent.
func Decode(b []byte) (Message, error) {
	var m Message
	b = trimJSONSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return m, ErrNotObject
	}
	if fast, ok := decodeAckFast(b); ok {
		return fast, nil
	}
	var raw rawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return m, ErrNotObject
	}
	m.RawType = str(raw.MessageType)
	switch m.RawType {
	case "hello":
		m.Type = TypeHello
	case "register":
		m.Type = TypeRegister
	case "unregister":
		m.Type = TypeUnregister
	case "ack":
		m.Type = TypeAck
	case "ping":
		m.Type = TypePing
	case "":
		// {} is the deployed ping; an object without a messageType that
		// says something else is not a message we know.
		if raw.MessageType == nil && isEmptyObject(b) {
			m.Type = TypePing
		}
	}
	m.UAID = str(raw.UAID)
	m.UAIDs, m.HasUAIDs = strs(raw.UAIDs)
	m.ChannelIDs, _ = strs(raw.ChannelIDs)
	m.ChannelID = str(raw.ChannelID)
	if m.Type == TypeAck {
		m.Updates = ackUpdates(raw.Updates)
	}
	m.Kick = object(raw.Kick)
	m.WakeupHostport = object(raw.WakeupHostport)
	m.MobileNetwork = object(raw.MobileNetwork)
	return m, nil
}

func isEmptyObject(b []byte) bool {
	b = trimJSONSpace(b[1:])
	return len(b) == 1 && b[0] == '}'
}

// trimJSONSpace trims the four whitespace characters JSON allows (not the
// wider set bytes.TrimSpace knows).
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func str(r json.RawMessage) string {
	if len(r) == 0 || r[0] != '"' {
		return ""
	}
	var s string
	if json.Unmarshal(r, &s) != nil {
		return ""
	}
	return s
}

func strs(r json.RawMessage) ([]string, bool) {
	if len(r) == 0 || r[0] != '[' {
		return nil, false
	}
	var elems []json.RawMessage
	if json.Unmarshal(r, &elems) != nil {
		return nil, false
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		if len(e) > 0 && e[0] == '"' {
			out = append(out, str(e))
		}
	}
	return out, true
}

// object returns a copy of r when it is a JSON object.
func object(r json.RawMessage) json.RawMessage {
	if len(r) == 0 || r[0] != '{' {
		return nil
	}
	return append(json.RawMessage(nil), r...)
}

func ackUpdates(r json.RawMessage) []AckUpdate {
	if len(r) == 0 || r[0] != '[' {
		return nil
	}
	var elems []struct {
		ChannelID json.RawMessage `json:"channelID"`
		Version   json.RawMessage `json:"version"`
	}
	if json.Unmarshal(r, &elems) != nil {
		return nil
	}
	out := make([]AckUpdate, len(elems))
	for i, e := range elems {
		v, ok := ParseVersion(string(e.Version))
		out[i] = AckUpdate{ChannelID: str(e.ChannelID), Version: v, OK: ok && len(e.ChannelID) > 0 && e.ChannelID[0] == '"'}
	}
	return out
}

// ParseVersion parses a decimal version number in [0, MaxVersion]: digits
// only (leading zeros allowed), no sign, no exponent, no fraction.
func ParseVersion(s string) (uint64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	for len(s) > 1 && s[0] == '0' {
		s = s[1:]
	}
	if len(s) > 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > MaxVersion {
		return 0, false
	}
	return v, true
}
