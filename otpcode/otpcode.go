// Package otpcode computes and checks one-time codes (HOTP, RFC 4226; TOTP,
// RFC 6238) and builds the otpauth:// Key URI that authenticator apps scan.
// The verifier, the enrollment site and the CLI all use it, so there is one
// implementation of the code arithmetic.
//
// Codes are compared in constant time. Nothing is normalised here: a code is
// exactly digits ASCII digits or it does not match.
package otpcode

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// NewMAC returns the HMAC for a token's algorithm (SHA1, SHA256, SHA512;
// "" is SHA1), or nil for anything else, so that a corrupt row never matches.
func NewMAC(algorithm string, key []byte) hash.Hash {
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

// HOTP writes the RFC 4226 value of the key at counter, truncated to
// len(out) decimal digits and zero-padded, into out.
func HOTP(mac hash.Hash, counter uint64, out []byte) {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Reset()
	mac.Write(msg[:])
	var sum [sha512.Size]byte
	s := mac.Sum(sum[:0])
	off := s[len(s)-1] & 0x0f
	v := binary.BigEndian.Uint32(s[off:off+4]) & 0x7fffffff
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = byte('0' + v%10)
		v /= 10
	}
}

// Step is the RFC 6238 time step of t for a period in seconds (30 if <= 0).
func Step(t time.Time, period int) int64 {
	if period <= 0 {
		period = 30
	}
	return t.Unix() / int64(period)
}

// Matcher checks one code against one key at chosen steps.
type Matcher struct {
	mac    hash.Hash
	digits int
	code   []byte
	buf    [10]byte
}

// NewMatcher returns a Matcher of code for the key.
func NewMatcher(algorithm string, key []byte, digits int, code []byte) *Matcher {
	return &Matcher{mac: NewMAC(algorithm, key), digits: digits, code: code}
}

// At reports, in constant time for the code, whether the code is the key's
// value at step.
func (m *Matcher) At(step int64) bool {
	if m.mac == nil || step < 0 || m.digits < 1 || m.digits > len(m.buf) || len(m.code) != m.digits {
		return false
	}
	HOTP(m.mac, uint64(step), m.buf[:m.digits])
	return subtle.ConstantTimeCompare(m.buf[:m.digits], m.code) == 1
}

// InWindow returns the highest step within skew steps of now's step at which
// code is the key's value. When an older step of the window gives the same
// code, the newer step is the one used.
func InWindow(algorithm string, key []byte, digits, period int, code []byte, now time.Time, skew int) (int64, bool) {
	m := NewMatcher(algorithm, key, digits, code)
	cur := Step(now, period)
	for off := skew; off >= -skew; off-- {
		if m.At(cur + int64(off)) {
			return cur + int64(off), true
		}
	}
	return 0, false
}

// IsDigits reports whether b is non-empty and all ASCII '0'..'9'.
func IsDigits(b []byte) bool {
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

var algorithms = map[string]otp.Algorithm{"SHA1": otp.AlgorithmSHA1, "SHA256": otp.AlgorithmSHA256, "SHA512": otp.AlgorithmSHA512}

// KeyURI is the otpauth:// Key URI of a secret with the label issuer:user,
// and issuer, algorithm, digits and period parameters.
func KeyURI(issuer, user string, secret []byte, algorithm string, digits, period int) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: user, Period: uint(period), Digits: otp.Digits(digits),
		Algorithm: algorithms[algorithm], Secret: secret,
	})
}

// Groups writes a base32 key in groups of four, for typing it in.
func Groups(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// KeySize is the length of a new key for an algorithm: as long as its HMAC
// output (RFC 4226 asks for at least 16 bytes, recommends 20). 0 for an
// unknown algorithm.
func KeySize(algorithm string) int {
	return map[string]int{"SHA1": sha1.Size, "SHA256": sha256.Size, "SHA512": sha512.Size}[algorithm]
}
