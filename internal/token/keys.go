package token

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// ParseKeys parses a comma-separated list of keys, as given to -token-keys
// or PUSHD_TOKEN_KEYS. Spaces around each key are trimmed. A key is 64 hex
// digits or base64url (with or without '=' padding) of KeySize bytes. An
// empty list or an empty element is an error, so a stray comma is caught
// rather than silently dropping a key.
func ParseKeys(s string) ([][]byte, error) {
	if strings.TrimSpace(s) == "" {
		return nil, ErrNoKeys
	}
	var keys [][]byte
	for i, f := range strings.Split(s, ",") {
		k, err := parseKey(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%w %d: %w", ErrBadKey, i+1, err)
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// keyError describes why a key was rejected without quoting any of it.
type keyError string

func (e keyError) Error() string { return string(e) }

// parseKey decodes one key. The reasons it gives never include key bytes
// (hex.InvalidByteError would), since the input is a secret.
func parseKey(s string) ([]byte, error) {
	if s == "" {
		return nil, keyError("empty")
	}
	if len(s) == 2*KeySize {
		// 64 characters of base64 would be 48 bytes, so this length can
		// only be a valid key as hex.
		k, err := hex.DecodeString(s)
		if err != nil {
			return nil, keyError("64 characters but not hex")
		}
		return k, nil
	}
	e := base64.RawURLEncoding
	if strings.HasSuffix(s, "=") {
		e = base64.URLEncoding
	}
	k, err := e.Strict().DecodeString(s)
	if err != nil {
		return nil, keyError("neither hex nor base64url")
	}
	if len(k) != KeySize {
		return nil, keyError(fmt.Sprintf("%d bytes, want %d", len(k), KeySize))
	}
	return k, nil
}

// FormatKey returns k as unpadded base64url, the form ParseKeys and
// token.keys files take.
func FormatKey(k []byte) string {
	return base64.RawURLEncoding.EncodeToString(k)
}

// GenerateKey returns a new random key from crypto/rand.
func GenerateKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("token: generate key: %w", err)
	}
	return k, nil
}
