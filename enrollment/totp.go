package enrollment

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"image/png"
	"math"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// newMAC returns the HMAC of a token's algorithm, nil for an unknown one.
func newMAC(algorithm string, key []byte) hash.Hash {
	switch algorithm {
	case "SHA1":
		return hmac.New(sha1.New, key)
	case "SHA256":
		return hmac.New(sha256.New, key)
	case "SHA512":
		return hmac.New(sha512.New, key)
	}
	return nil
}

// hotp is the RFC 4226 value of the key at counter, digits long.
func hotp(mac hash.Hash, counter uint64, digits int) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Reset()
	mac.Write(msg[:])
	s := mac.Sum(nil)
	off := s[len(s)-1] & 0x0f
	v := binary.BigEndian.Uint32(s[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%0*d", digits, v%uint32(math.Pow10(digits)))
}

// matchStep returns the highest time step within skew steps of now at
// which code is the key's value, comparing in constant time per step.
func matchStep(secret []byte, algorithm string, digits, period int, code string, now time.Time, skew int) (int64, bool) {
	mac := newMAC(algorithm, secret)
	if mac == nil || period <= 0 || len(code) != digits {
		return 0, false
	}
	cur := now.Unix() / int64(period)
	for off := skew; off >= -skew; off-- {
		step := cur + int64(off)
		if step < 0 {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(hotp(mac, uint64(step), digits)), []byte(code)) == 1 {
			return step, true
		}
	}
	return 0, false
}

// normalizeCode removes the spaces and dashes people type or paste between
// groups of digits, and reports whether the rest is digits long and all digits.
func normalizeCode(s string, digits int) (string, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' || r == '\u00a0' || r == '\t' {
			return -1
		}
		return r
	}, s)
	if len(s) != digits {
		return s, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return s, false
		}
	}
	return s, true
}

var otpAlgorithms = map[string]otp.Algorithm{"SHA1": otp.AlgorithmSHA1, "SHA256": otp.AlgorithmSHA256, "SHA512": otp.AlgorithmSHA512}

// keyURI is the otpauth:// Key URI of a secret, with the label issuer:user.
func keyURI(issuer, user string, secret []byte, algorithm string, digits, period int) (*otp.Key, error) {
	return totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: user, Period: uint(period), Digits: otp.Digits(digits),
		Algorithm: otpAlgorithms[algorithm], Secret: secret,
	})
}

// qrSize is the side of the QR PNG in pixels.
const qrSize = 320

// qrPNG renders the key URI as a QR code PNG.
func qrPNG(k *otp.Key) ([]byte, error) {
	img, err := k.Image(qrSize, qrSize)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// groups writes a base32 key in groups of four for typing.
func groups(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// clock writes an instant for people, in the site's time zone: "14:32 CET",
// with seconds when asked, and the date when it is not today.
func (s *Service) clock(t time.Time, seconds bool) string {
	t = t.In(s.set.Location)
	now := s.now().In(s.set.Location)
	layout := "15:04 MST"
	if seconds {
		layout = "15:04:05 MST"
	}
	if y, m, d := t.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		layout = "Mon 2 Jan 2006, " + layout
	}
	return t.Format(layout)
}

// in writes how long until d has passed: "in 15 minutes", rounded up.
func in(d time.Duration) string {
	unit := func(n int64, one string) string {
		if n == 1 {
			return "in 1 " + one
		}
		return fmt.Sprintf("in %d %ss", n, one)
	}
	ceil := func(d, u time.Duration) int64 { return int64((d + u - 1) / u) }
	switch {
	case d < time.Minute:
		return unit(ceil(d, time.Second), "second")
	case d < 2*time.Hour:
		return unit(ceil(d, time.Minute), "minute")
	case d < 48*time.Hour:
		return unit(ceil(d, time.Hour), "hour")
	}
	return unit(ceil(d, 24*time.Hour), "day")
}
