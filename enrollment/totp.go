package enrollment

import (
	"bytes"
	"encoding/base32"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"

	"github.com/radotp/radotp/otpcode"
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// matchStep returns the highest time step within skew steps of now at
// which code is the key's value (otpcode.InWindow).
func matchStep(secret []byte, algorithm string, digits, period int, code string, now time.Time, skew int) (int64, bool) {
	return otpcode.InWindow(algorithm, secret, digits, period, []byte(code), now, skew)
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
