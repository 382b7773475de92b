// Package token turns a (UAID, channelID) pair into the opaque token of a
// push endpoint, <public-base>/update/<token>, and back.
//
// A token is the pair under authenticated encryption with a key the whole
// cluster shares, so any node can resolve an endpoint without a lookup, and
// the token reveals nothing about the UAID to whoever holds the endpoint
// (an app server, a log). It cannot be forged and is not malleable: changing
// any character makes Open fail with ErrInvalid, which the HTTP ingest turns
// into a 404 (PROTOCOL.md section 3).
//
// # Construction
//
// Each configured 32-byte key K yields two derived keys:
//
//	aesKey   = HMAC-SHA256(K, "pushd token aes")
//	nonceKey = HMAC-SHA256(K, "pushd token nonce")
//
// For the pair (uaid, chid):
//
//	plaintext = uaid(16) || chid(16)
//	nonce     = HMAC-SHA256(nonceKey, plaintext)[:12]
//	token     = base64url-nopad(0x01 || nonce || AES-256-GCM(aesKey, nonce, plaintext, ad = 0x01))
//
// 0x01 is the format version; it is authenticated as GCM additional data.
// The token is 61 bytes, 82 characters.
//
// The nonce is synthetic (SIV-style): it is a keyed function of the
// plaintext, so sealing the same pair again gives the same endpoint (a
// re-register is idempotent), and a nonce is only ever reused with the
// identical plaintext. That reveals only whether two tokens name the same
// pair, which equal endpoints reveal anyway; it never exposes the GCM
// keystream or authentication key the way reuse across different
// plaintexts would. Two pairs sharing a UAID get unrelated nonces and so
// tokens with nothing in common beyond the version byte.
//
// Open accepts exactly the canonical string: RawURLEncoding only (no '='
// padding, no '+' or '/', no line breaks, unused trailing bits zero), the
// exact length, the version byte, a tag that authenticates under one of the
// keys, and a nonce equal to the synthetic nonce recomputed from the
// decrypted pair. Every pair therefore has exactly one token per key, and
// anything Open accepts re-seals to the identical string under that key.
//
// # Keys and rotation
//
// A Keyring holds one or more keys: the first seals, all of them open. To
// rotate, deploy [new, old] to every node, then (once every endpoint handed
// out under the old key has been re-registered or is no longer wanted)
// [new]. LoadOrCreate gives a node its keys from configuration
// (-token-keys / PUSHD_TOKEN_KEYS) or from <data-dir>/token.keys, creating
// that file with a fresh key on a node's first start. Nodes of one cluster
// must be configured with the same keys; a generated file is for a single
// node or for copying to the others.
//
// # Concurrency
//
// A Keyring's keys are fixed by NewKeyring; it is safe for concurrent use
// by any number of goroutines (the only mutable state inside is a
// sync.Pool of HMAC states per key). Seal and Open do not block. Open
// rejects a token of the wrong length before doing any work, and otherwise
// makes one small allocation (a scratch buffer that the cipher.AEAD
// interface forces onto the heap); Seal makes two (that buffer and the
// string). Errors never contain key material. The package-level functions
// keep no state; LoadOrCreate does file I/O and belongs at node start.
package token
