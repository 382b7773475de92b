package protocol

import (
	"strconv"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Status codes carried in replies (PROTOCOL.md 2).
const (
	StatusOK            = 200
	StatusUnauthorized  = 401
	StatusTooManyChans  = 413
	StatusServerFailure = 500
)

// AppendHello appends the reply to a single-UAID hello.
func AppendHello(dst []byte, uaid uuid.UUID, ping int) []byte {
	dst = append(dst, `{"messageType":"hello","status":200,"uaid":"`...)
	dst = appendUUID(dst, uaid)
	dst = append(dst, `","ping":`...)
	dst = strconv.AppendInt(dst, int64(ping), 10)
	return append(dst, '}')
}

// AppendHelloMulti appends the reply to a multi-UAID hello.
func AppendHelloMulti(dst []byte, uaids []uuid.UUID, ping int) []byte {
	dst = append(dst, `{"messageType":"hello","status":200,"uaids":[`...)
	for i, u := range uaids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = appendUUID(dst, u)
		dst = append(dst, '"')
	}
	dst = append(dst, `],"ping":`...)
	dst = strconv.AppendInt(dst, int64(ping), 10)
	return append(dst, '}')
}

// AppendRegister appends a successful register reply.
func AppendRegister(dst []byte, chid uuid.UUID, endpoint string) []byte {
	dst = append(dst, `{"messageType":"register","channelID":"`...)
	dst = appendUUID(dst, chid)
	dst = append(dst, `","status":200,"pushEndpoint":`...)
	dst = AppendString(dst, endpoint)
	return append(dst, '}')
}

// AppendUnregister appends the (always successful) unregister reply.
func AppendUnregister(dst []byte, chid string) []byte {
	dst = append(dst, `{"messageType":"unregister","channelID":`...)
	dst = AppendString(dst, chid)
	return append(dst, `,"status":200}`...)
}

// AppendError appends an error reply echoing the message type.
func AppendError(dst []byte, messageType string, status int, msg string) []byte {
	dst = append(dst, `{"messageType":`...)
	dst = AppendString(dst, messageType)
	dst = append(dst, `,"status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"error":`...)
	dst = AppendString(dst, msg)
	return append(dst, '}')
}

// AppendPing appends the reply to a ping.
func AppendPing(dst []byte) []byte { return append(dst, "{}"...) }

// Update is one pending version sent to a client.
type Update struct {
	ChannelID uuid.UUID
	Version   uint64
	Data      []byte // nil: no data field
}

// AppendNotification appends the deployed single-UAID notification.
func AppendNotification(dst []byte, updates []Update) []byte {
	dst = append(dst, `{"messageType":"notification","updates":[`...)
	for i, u := range updates {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"channelID":"`...)
		dst = appendUUID(dst, u.ChannelID)
		dst = append(dst, `","version":`...)
		dst = strconv.AppendUint(dst, u.Version, 10)
		if u.Data != nil {
			dst = append(dst, `,"data":`...)
			dst = AppendString(dst, string(u.Data))
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// UAIDUpdates are the pending versions of one UAID in an UPDATE packet.
type UAIDUpdates struct {
	UAID    uuid.UUID
	Updates []Update
}

// AppendUpdate appends the seed's multi-UAID UPDATE packet:
// {"messageType":"update","updates":{"<uaid>":{"<channelID>":7}}}.
func AppendUpdate(dst []byte, packet []UAIDUpdates) []byte {
	dst = append(dst, `{"messageType":"update","updates":`...)
	dst = AppendPacket(dst, packet)
	return append(dst, '}')
}

// AppendPacket appends the bare UPDATE packet object {"<uaid>":{"<chid>":v}}
// (also the body of a REST poll answer).
func AppendPacket(dst []byte, packet []UAIDUpdates) []byte {
	dst = append(dst, '{')
	for i, p := range packet {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = appendUUID(dst, p.UAID)
		dst = append(dst, `":{`...)
		for j, u := range p.Updates {
			if j > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, '"')
			dst = appendUUID(dst, u.ChannelID)
			dst = append(dst, `":`...)
			dst = strconv.AppendUint(dst, u.Version, 10)
		}
		dst = append(dst, '}')
	}
	return append(dst, '}')
}

func appendUUID(dst []byte, u uuid.UUID) []byte {
	var buf [36]byte
	// uuid.UUID.String allocates; encode by hand.
	const hexdig = "0123456789abcdef"
	j := 0
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hexdig[b>>4], hexdig[b&0x0f]
		j += 2
	}
	return append(dst, buf[:]...)
}

// AppendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD.
func AppendString(dst []byte, s string) []byte {
	const hexdig = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20:
				dst = append(dst, '\\', 'u', '0', '0', hexdig[c>>4], hexdig[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexdig[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}
