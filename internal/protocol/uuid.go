package protocol

import "github.com/google/uuid"

// ParseUUID accepts exactly the forms PROTOCOL.md 1 allows: 36 characters
// dashed (8-4-4-4-12) or 32 characters undashed, hex digits in any case.
// Braces, "urn:uuid:" and everything else are rejected (ok == false).
func ParseUUID(s string) (u uuid.UUID, ok bool) {
	switch len(s) {
	case 36:
		if s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
			return u, false
		}
		j := 0
		for i := 0; i < 36; i += 2 {
			if i == 8 || i == 13 || i == 18 || i == 23 {
				i--
				continue
			}
			b, ok := hexByte(s[i], s[i+1])
			if !ok {
				return u, false
			}
			u[j] = b
			j++
		}
		return u, true
	case 32:
		for j := 0; j < 16; j++ {
			b, ok := hexByte(s[2*j], s[2*j+1])
			if !ok {
				return u, false
			}
			u[j] = b
		}
		return u, true
	}
	return u, false
}

func hexByte(a, b byte) (byte, bool) {
	x, ok1 := hexVal(a)
	y, ok2 := hexVal(b)
	return x<<4 | y, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
