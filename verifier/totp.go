package verifier

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"hash"
)

// hotp computes the RFC 4226 value of key at counter, truncated to digits
// decimal digits and written, zero-padded, into out[:digits].
func hotp(mac hash.Hash, counter uint64, digits int, out []byte) {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Reset()
	mac.Write(msg[:])
	var sum [sha512.Size]byte
	s := mac.Sum(sum[:0])
	off := s[len(s)-1] & 0x0f
	v := binary.BigEndian.Uint32(s[off:off+4]) & 0x7fffffff
	for i := digits - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
}

// newMAC returns the HMAC for a token's algorithm; unknown names fall back to
// nothing (nil) so that a corrupt row can never match.
func newMAC(algorithm string, key []byte) hash.Hash {
	switch algorithm {
	case "SHA1", "":
		return hmac.New(sha1.New, key)
	case "SHA256":
		return hmac.New(sha256.New, key)
	case "SHA512":
		return hmac.New(sha512.New, key)
	}
	return nil
}

// codeMatcher checks one code against one token at chosen time steps.
type codeMatcher struct {
	mac    hash.Hash
	digits int
	code   []byte
	buf    [10]byte
}

// matches reports, in constant time for the code, whether the code is the
// token's value at step.
func (m *codeMatcher) matches(step int64) bool {
	if m.mac == nil || step < 0 || len(m.code) != m.digits {
		return false
	}
	hotp(m.mac, uint64(step), m.digits, m.buf[:m.digits])
	return subtle.ConstantTimeCompare(m.buf[:m.digits], m.code) == 1
}

// isDigits reports whether b is non-empty and all ASCII '0'..'9'. Nothing is
// normalised: "123 456", full-width digits or letters are simply not a code.
func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
