package token

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestParseKeys(t *testing.T) {
	a, b := testKey(0xa1), testKey(0xfb) // 0xfb... has '-'/'_' in base64url
	for _, tc := range []struct {
		in   string
		want [][]byte
	}{
		{FormatKey(a), [][]byte{a}},
		{base64.URLEncoding.EncodeToString(a), [][]byte{a}},
		{hex.EncodeToString(a), [][]byte{a}},
		{strings.ToUpper(hex.EncodeToString(a)), [][]byte{a}},
		{FormatKey(a) + "," + FormatKey(b), [][]byte{a, b}},
		{"  " + hex.EncodeToString(b) + " ,\t" + base64.URLEncoding.EncodeToString(a) + "\n", [][]byte{b, a}},
	} {
		got, err := ParseKeys(tc.in)
		if err != nil {
			t.Fatalf("ParseKeys(%q): %v", tc.in, err)
		}
		if len(got) != len(tc.want) {
			t.Fatalf("ParseKeys(%q): %d keys, want %d", tc.in, len(got), len(tc.want))
		}
		for i := range got {
			if !bytes.Equal(got[i], tc.want[i]) {
				t.Fatalf("ParseKeys(%q)[%d] = %x, want %x", tc.in, i, got[i], tc.want[i])
			}
		}
	}
}

func TestParseKeysErrors(t *testing.T) {
	a := FormatKey(testKey(0xfb))
	std := base64.StdEncoding.EncodeToString(testKey(0xfb))
	for _, tc := range []struct {
		in   string
		want error
	}{
		{"", ErrNoKeys},
		{"  ", ErrNoKeys},
		{a + ",", ErrBadKey},
		{"," + a, ErrBadKey},
		{a + ",,", ErrBadKey},
		{a[:42], ErrBadKey},                              // 31 bytes
		{a + "AA", ErrBadKey},                            // 33 bytes
		{std, ErrBadKey},                                 // standard alphabet
		{strings.Repeat("g", 64), ErrBadKey},             // 64 chars, not hex
		{hex.EncodeToString(testKey(1))[:62], ErrBadKey}, // 31 bytes of hex
		{base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, 48)), ErrBadKey}, // 64 chars of base64
	} {
		_, err := ParseKeys(tc.in)
		if !errors.Is(err, tc.want) {
			t.Errorf("ParseKeys(%q) = %v, want %v", tc.in, err, tc.want)
		}
	}
}

// A rejected key must not show up in the error, which may be logged.
func TestParseKeysErrorsDoNotEchoKey(t *testing.T) {
	secret := strings.Repeat("s3c!", 16) // 64 chars, neither hex nor base64
	for _, in := range []string{secret, secret[:43], secret[:30] + "zz"} {
		_, err := ParseKeys(in)
		if err == nil {
			t.Fatalf("ParseKeys(%q) accepted", in)
		}
		if strings.Contains(err.Error(), "s3c") || strings.Contains(err.Error(), "'s'") {
			t.Fatalf("error %q quotes the key", err)
		}
	}
}

func TestFormatKeyRoundTrip(t *testing.T) {
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(k) != KeySize {
		t.Fatalf("GenerateKey: %d bytes", len(k))
	}
	s := FormatKey(k)
	if len(s) != 43 || strings.ContainsAny(s, "=+/") {
		t.Fatalf("FormatKey = %q, want 43 chars of unpadded base64url", s)
	}
	got, err := ParseKeys(s)
	if err != nil || !bytes.Equal(got[0], k) {
		t.Fatalf("ParseKeys(FormatKey(k)) = %x, %v; want %x", got, err, k)
	}
	k2, _ := GenerateKey()
	if bytes.Equal(k, k2) {
		t.Fatal("two generated keys are equal")
	}
}
