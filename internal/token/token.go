package token

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/google/uuid"
)

// KeySize is the size in bytes of a token key.
const KeySize = 32

// ErrInvalid is returned by Open for any token it does not accept: wrong
// length or encoding, unknown version, or not authentic under any key.
// Callers answer it with 404 and must not tell the cases apart.
var ErrInvalid = errors.New("token: invalid")

// ErrNoKeys is returned when a keyring would have no key.
var ErrNoKeys = errors.New("token: no keys")

// ErrBadKey is returned (wrapped, with the key's position) for a key that
// is not KeySize bytes or cannot be decoded. Errors never echo key material.
var ErrBadKey = errors.New("token: bad key")

const (
	version    = 0x01
	nonceSize  = 12
	tagSize    = 16
	pairSize   = 32                                 // uaid || chid
	rawSize    = 1 + nonceSize + pairSize + tagSize // 61
	encodedLen = (rawSize*8 + 5) / 6                // 82, RawURLEncoding
	aesLabel   = "pushd token aes"
	nonceLabel = "pushd token nonce"
)

// enc is strict so that the unused low bits of the last character must be
// zero; otherwise several strings would decode to the same token.
var enc = base64.RawURLEncoding.Strict()

// sealer is one key's derived state. aead is read-only after construction
// (a cipher.AEAD from crypto/cipher is safe for concurrent use); hashers
// hands each caller its own HMAC, since a hash.Hash is not.
type sealer struct {
	aead    cipher.AEAD
	hashers sync.Pool // of *nonceHasher keyed with this key's nonce key
}

// nonceHasher is a reusable HMAC-SHA256 under a nonce key. Reusing it
// (Reset restores the precomputed pad states) halves the SHA-256 work per
// nonce compared with hmac.New, and allocates nothing.
type nonceHasher struct {
	mac hash.Hash
	sum [sha256.Size]byte
}

// Keyring seals and opens tokens. Its keys are fixed by NewKeyring; it is
// safe for concurrent use.
type Keyring struct {
	sealers []*sealer // sealers[0] seals
}

// NewKeyring returns a keyring over keys; keys[0] seals new tokens and all
// of them open. Each key must be KeySize bytes. The keys are not retained.
func NewKeyring(keys [][]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, ErrNoKeys
	}
	k := &Keyring{sealers: make([]*sealer, len(keys))}
	for i, key := range keys {
		if len(key) != KeySize {
			return nil, fmt.Errorf("%w %d: %d bytes, want %d", ErrBadKey, i+1, len(key), KeySize)
		}
		block, err := aes.NewCipher(derive(key, aesLabel))
		if err != nil {
			return nil, fmt.Errorf("token: key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("token: key %d: %w", i+1, err)
		}
		nonceKey := derive(key, nonceLabel)
		s := &sealer{aead: aead}
		s.hashers.New = func() any {
			return &nonceHasher{mac: hmac.New(sha256.New, nonceKey)}
		}
		k.sealers[i] = s
	}
	return k, nil
}

// derive returns HMAC-SHA256(key, label).
func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// nonce returns the synthetic nonce HMAC-SHA256(nonceKey, pair)[:nonceSize].
func (s *sealer) nonce(pair *[pairSize]byte) [nonceSize]byte {
	h := s.hashers.Get().(*nonceHasher)
	h.mac.Reset()
	h.mac.Write(pair[:])
	var n [nonceSize]byte
	copy(n[:], h.mac.Sum(h.sum[:0]))
	s.hashers.Put(h)
	return n
}

// sealScratch and openScratch gather the buffers that are handed to the
// cipher.AEAD interface (and so escape to the heap) into one allocation.
type sealScratch struct {
	pair [pairSize]byte
	raw  [rawSize]byte
}

type openScratch struct {
	raw  [rawSize]byte
	pair [pairSize]byte
}

// Seal returns the token for (uaid, chid) under the keyring's first key.
// The same pair always gives the same token under the same key.
func (k *Keyring) Seal(uaid, chid uuid.UUID) string {
	s := k.sealers[0]
	sc := new(sealScratch)
	copy(sc.pair[:16], uaid[:])
	copy(sc.pair[16:], chid[:])
	n := s.nonce(&sc.pair)
	sc.raw[0] = version
	copy(sc.raw[1:], n[:])
	s.aead.Seal(sc.raw[1+nonceSize:1+nonceSize], sc.raw[1:1+nonceSize], sc.pair[:], sc.raw[:1])
	var out [encodedLen]byte
	enc.Encode(out[:], sc.raw[:])
	return string(out[:])
}

// Open returns the pair a token was sealed for, trying every key of the
// keyring. Any token that Seal did not produce under one of the keys,
// byte for byte, gives ErrInvalid.
func (k *Keyring) Open(tok string) (uaid, chid uuid.UUID, err error) {
	if len(tok) != encodedLen {
		return uuid.UUID{}, uuid.UUID{}, ErrInvalid
	}
	var src [encodedLen]byte
	copy(src[:], tok)
	// The decoder skips '\r' and '\n' even in strict mode; with the length
	// fixed above this check keeps them (and '=', '+', '/') out.
	for _, c := range src {
		if !isURLAlphabet(c) {
			return uuid.UUID{}, uuid.UUID{}, ErrInvalid
		}
	}
	sc := new(openScratch)
	if n, err := enc.Decode(sc.raw[:], src[:]); err != nil || n != rawSize || sc.raw[0] != version {
		return uuid.UUID{}, uuid.UUID{}, ErrInvalid
	}
	nonce := sc.raw[1 : 1+nonceSize]
	for _, s := range k.sealers {
		// Decrypt into a separate buffer: a failed in-place Open would
		// clobber the ciphertext that the next key needs.
		if _, err := s.aead.Open(sc.pair[:0], nonce, sc.raw[1+nonceSize:], sc.raw[:1]); err != nil {
			continue
		}
		want := s.nonce(&sc.pair)
		if subtle.ConstantTimeCompare(want[:], nonce) != 1 {
			continue
		}
		copy(uaid[:], sc.pair[:16])
		copy(chid[:], sc.pair[16:])
		return uaid, chid, nil
	}
	return uuid.UUID{}, uuid.UUID{}, ErrInvalid
}

func isURLAlphabet(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_'
}
