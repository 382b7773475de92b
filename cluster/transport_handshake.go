package cluster

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
)

// Handshake of the transport (see Transport for the whole wire format).
const (
	handshakeVersion = 1
	nonceLen         = 32
	macLen           = sha256.Size
	// maxNameLen is the longest node name: its length travels as a u8.
	maxNameLen = 255
	// helloFixedLen is the size of a hello before the name: magic,
	// version, name length.
	helloFixedLen = 4 + 1 + 1

	labelServer = "pushd-server"
	labelClient = "pushd-client"
)

// handshakeMagic opens both hellos.
var handshakeMagic = [4]byte{'p', 's', 'h', 'd'}

// Handshake faults. Each closes the connection; none says more to the peer.
var (
	errHandshakeMagic   = errors.New("cluster: handshake: not a pushd peer")
	errHandshakeVersion = errors.New("cluster: handshake: unsupported version")
	errHandshakeName    = errors.New("cluster: handshake: empty node name")
	errHandshakeProof   = errors.New("cluster: handshake: proof mismatch (different cluster key?)")
)

// hello is what each side announces: its name and a fresh random nonce.
type hello struct {
	name  string
	nonce [nonceLen]byte
}

// newHello returns a hello for name with a fresh nonce.
func newHello(name string) hello {
	h := hello{name: name}
	rand.Read(h.nonce[:]) // never fails (crypto/rand.Read documents it)
	return h
}

// appendHello appends the encoded hello: magic | u8 version | u8 name length
// | name | nonce.
func appendHello(b []byte, h *hello) []byte {
	b = append(b, handshakeMagic[:]...)
	b = append(b, handshakeVersion, byte(len(h.name)))
	b = append(b, h.name...)
	return append(b, h.nonce[:]...)
}

// readHello reads and checks one hello.
func readHello(r *bufio.Reader) (hello, error) {
	var fixed [helloFixedLen]byte
	if _, err := io.ReadFull(r, fixed[:]); err != nil {
		return hello{}, noEOF(err)
	}
	if [4]byte(fixed[0:4]) != handshakeMagic {
		return hello{}, errHandshakeMagic
	}
	if fixed[4] != handshakeVersion {
		return hello{}, fmt.Errorf("%w: %d", errHandshakeVersion, fixed[4])
	}
	n := int(fixed[5])
	if n == 0 {
		return hello{}, errHandshakeName
	}
	var buf [maxNameLen + nonceLen]byte
	rest := buf[:n+nonceLen]
	if _, err := io.ReadFull(r, rest); err != nil {
		return hello{}, noEOF(err)
	}
	h := hello{name: string(rest[:n])}
	copy(h.nonce[:], rest[n:])
	return h, nil
}

// readProof reads one 32-byte MAC.
func readProof(r *bufio.Reader) ([macLen]byte, error) {
	var mac [macLen]byte
	_, err := io.ReadFull(r, mac[:])
	return mac, noEOF(err)
}

// handshakeMAC is HMAC-SHA256(key, label | first nonce | second nonce |
// u8 len | client name | u8 len | server name). The server proves itself
// with labelServer over (client nonce, server nonce); the client with
// labelClient over (server nonce, client nonce). Distinct labels keep a
// node from being used as an oracle for the other direction's proof.
func handshakeMAC(key []byte, label string, first, second *[nonceLen]byte, clientName, serverName string) [macLen]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(first[:])
	m.Write(second[:])
	m.Write([]byte{byte(len(clientName))})
	m.Write([]byte(clientName))
	m.Write([]byte{byte(len(serverName))})
	m.Write([]byte(serverName))
	var mac [macLen]byte
	m.Sum(mac[:0])
	return mac
}

// clientHandshake runs the dialling side of the handshake on nc, reading
// through r, and returns the server's name. The caller sets the deadline.
func (t *Transport) clientHandshake(nc net.Conn, r *bufio.Reader) (string, error) {
	mine := newHello(t.cfg.Name)
	if _, err := nc.Write(appendHello(make([]byte, 0, helloFixedLen+maxNameLen+nonceLen), &mine)); err != nil {
		return "", err
	}
	theirs, err := readHello(r)
	if err != nil {
		return "", err
	}
	got, err := readProof(r)
	if err != nil {
		return "", err
	}
	want := handshakeMAC(t.cfg.Key, labelServer, &mine.nonce, &theirs.nonce, mine.name, theirs.name)
	if !hmac.Equal(got[:], want[:]) {
		return "", errHandshakeProof
	}
	proof := handshakeMAC(t.cfg.Key, labelClient, &theirs.nonce, &mine.nonce, mine.name, theirs.name)
	if _, err := nc.Write(proof[:]); err != nil {
		return "", err
	}
	return theirs.name, nil
}

// serverHandshake runs the accepting side of the handshake on nc, reading
// through r, and returns the client's name. The caller sets the deadline.
func (t *Transport) serverHandshake(nc net.Conn, r *bufio.Reader) (string, error) {
	theirs, err := readHello(r)
	if err != nil {
		return "", err
	}
	mine := newHello(t.cfg.Name)
	reply := appendHello(make([]byte, 0, helloFixedLen+maxNameLen+nonceLen+macLen), &mine)
	mac := handshakeMAC(t.cfg.Key, labelServer, &theirs.nonce, &mine.nonce, theirs.name, mine.name)
	reply = append(reply, mac[:]...)
	if _, err := nc.Write(reply); err != nil {
		return "", err
	}
	got, err := readProof(r)
	if err != nil {
		return "", err
	}
	want := handshakeMAC(t.cfg.Key, labelClient, &mine.nonce, &theirs.nonce, theirs.name, mine.name)
	if !hmac.Equal(got[:], want[:]) {
		return "", errHandshakeProof
	}
	return theirs.name, nil
}
