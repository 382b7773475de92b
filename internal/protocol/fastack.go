package protocol

import (
	"bytes"
	"unicode/utf8"
)

// decodeAckFast decodes the ack form deployed clients send, byte for byte:
//
//	{"messageType":"ack","updates":[{"channelID":"<id>","version":<n>},...]}
//
// without reflection (acks are the most frequent client message). ok is
// false for anything else, including the same content with other spacing
// or key order, which then goes through encoding/json.
func decodeAckFast(b []byte) (m Message, ok bool) {
	const head = `{"messageType":"ack","updates":[`
	if !bytes.HasPrefix(b, []byte(head)) {
		return m, false
	}
	b = b[len(head):]
	m.Type, m.RawType = TypeAck, "ack"
	for {
		const chPrefix = `{"channelID":"`
		if !bytes.HasPrefix(b, []byte(chPrefix)) {
			return m, false
		}
		b = b[len(chPrefix):]
		end := bytes.IndexByte(b, '"')
		if end < 0 {
			return m, false
		}
		id := b[:end]
		for _, c := range id {
			if c == '\\' || c < 0x20 {
				return m, false // escapes: leave to encoding/json
			}
		}
		if !utf8.Valid(id) {
			return m, false
		}
		b = b[end+1:]
		const verPrefix = `,"version":`
		if !bytes.HasPrefix(b, []byte(verPrefix)) {
			return m, false
		}
		b = b[len(verPrefix):]
		i := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == 0 || i >= len(b) || b[i] != '}' {
			return m, false
		}
		v, vok := ParseVersion(string(b[:i]))
		m.Updates = append(m.Updates, AckUpdate{ChannelID: string(id), Version: v, OK: vok})
		b = b[i+1:]
		switch {
		case len(b) == 2 && b[0] == ']' && b[1] == '}':
			return m, true
		case len(b) > 0 && b[0] == ',':
			b = b[1:]
		default:
			return m, false
		}
	}
}
