package loadtest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	mrand "math/rand/v2"
	"strconv"

	"github.com/google/uuid"
)

// The SimplePush messages a device sends and the replies it reads. Hot
// paths (notifications, acks) are scanned and built by hand; hello and
// register replies, one or a few per connection, go through
// encoding/json.

// newUUID4 is a random version 4 UUID from the fast (not cryptographic)
// generator: channel IDs of simulated devices need to be unique, not
// secret.
func newUUID4() uuid.UUID {
	var u uuid.UUID
	binary.LittleEndian.PutUint64(u[:8], mrand.Uint64())
	binary.LittleEndian.PutUint64(u[8:], mrand.Uint64())
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func appendUUID(dst []byte, u uuid.UUID) []byte {
	const hexdig = "0123456789abcdef"
	for i, b := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexdig[b>>4], hexdig[b&0x0f])
	}
	return dst
}

// appendHello appends a hello: a fresh one (no UAID) or, reconnecting, one
// naming the UAID and its channels.
func appendHello(dst []byte, uaid *uuid.UUID, chans []channel) []byte {
	dst = append(dst, `{"messageType":"hello","uaid":"`...)
	if uaid != nil {
		dst = appendUUID(dst, *uaid)
	}
	dst = append(dst, `","channelIDs":[`...)
	n := 0
	for i := range chans {
		if chans[i].path == "" {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = appendUUID(dst, chans[i].id)
		dst = append(dst, '"')
		n++
	}
	return append(dst, "]}"...)
}

func appendRegister(dst []byte, chid uuid.UUID) []byte {
	dst = append(dst, `{"messageType":"register","channelID":"`...)
	dst = appendUUID(dst, chid)
	return append(dst, `"}`...)
}

// update is one (channelID, version) of a notification; chid aliases the
// message.
type update struct {
	chid    []byte
	version uint64
}

// appendAck appends the ack of updates.
func appendAck(dst []byte, updates []update) []byte {
	dst = append(dst, `{"messageType":"ack","updates":[`...)
	for i, u := range updates {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"channelID":"`...)
		dst = append(dst, u.chid...)
		dst = append(dst, `","version":`...)
		dst = strconv.AppendUint(dst, u.version, 10)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// reply is a server message as encoding/json reads it.
type reply struct {
	MessageType  string `json:"messageType"`
	Status       int    `json:"status"`
	UAID         string `json:"uaid"`
	ChannelID    string `json:"channelID"`
	PushEndpoint string `json:"pushEndpoint"`
	Updates      []struct {
		ChannelID string `json:"channelID"`
		Version   uint64 `json:"version"`
	} `json:"updates"`
}

func parseReply(msg []byte) (reply, error) {
	var r reply
	err := json.Unmarshal(msg, &r)
	return r, err
}

var (
	notificationPrefix = []byte(`{"messageType":"notification",`)
	chidKey            = []byte(`"channelID":"`)
	versionKey         = []byte(`"version":`)
)

// scanNotification appends the updates of a notification in pushd's own
// field order to dst without decoding JSON. ok is false when msg is not
// such a notification (the caller decodes it in full).
func scanNotification(msg []byte, dst []update) (ups []update, ok bool) {
	if !bytes.HasPrefix(msg, notificationPrefix) {
		return dst, false
	}
	rest := msg[len(notificationPrefix):]
	for {
		i := bytes.Index(rest, chidKey)
		if i < 0 {
			return dst, true
		}
		rest = rest[i+len(chidKey):]
		end := bytes.IndexByte(rest, '"')
		if end < 0 {
			return dst, false
		}
		chid := rest[:end]
		rest = rest[end:]
		j := bytes.Index(rest, versionKey)
		if j < 0 {
			return dst, false
		}
		rest = rest[j+len(versionKey):]
		k := 0
		for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
			k++
		}
		v, err := strconv.ParseUint(string(rest[:k]), 10, 64)
		if err != nil {
			return dst, false
		}
		dst = append(dst, update{chid: chid, version: v})
		rest = rest[k:]
	}
}
