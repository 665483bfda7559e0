package verifier

import (
	"encoding/base32"
	"fmt"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// RFC 6238 appendix B: the seeds are the ASCII strings below, 8 digits.
func TestRFC6238Vectors(t *testing.T) {
	seeds := map[string][]byte{
		"SHA1":   []byte("12345678901234567890"),
		"SHA256": []byte("12345678901234567890123456789012"),
		"SHA512": []byte("1234567890123456789012345678901234567890123456789012345678901234"),
	}
	vectors := []struct {
		unix int64
		alg  string
		code string
	}{
		{59, "SHA1", "94287082"}, {59, "SHA256", "46119246"}, {59, "SHA512", "90693936"},
		{1111111109, "SHA1", "07081804"}, {1111111109, "SHA256", "68084774"}, {1111111109, "SHA512", "25091201"},
		{1111111111, "SHA1", "14050471"}, {1111111111, "SHA256", "67062674"}, {1111111111, "SHA512", "99943326"},
		{1234567890, "SHA1", "89005924"}, {1234567890, "SHA256", "91819424"}, {1234567890, "SHA512", "93441116"},
		{2000000000, "SHA1", "69279037"}, {2000000000, "SHA256", "90698825"}, {2000000000, "SHA512", "38618901"},
		{20000000000, "SHA1", "65353130"}, {20000000000, "SHA256", "77737706"}, {20000000000, "SHA512", "47863826"},
	}
	for _, v := range vectors {
		t.Run(fmt.Sprintf("%s/%d", v.alg, v.unix), func(t *testing.T) {
			m := codeMatcher{mac: newMAC(v.alg, seeds[v.alg]), digits: 8, code: []byte(v.code)}
			step := stepAt(time.Unix(v.unix, 0), 30)
			if !m.matches(step) {
				hotp(m.mac, uint64(step), 8, m.buf[:8])
				t.Fatalf("got %s, want %s", m.buf[:8], v.code)
			}
			if m.matches(step+1) || m.matches(step-1) {
				t.Fatal("code also matches a neighbouring step")
			}
		})
	}
}

// RFC 4226 appendix D: HOTP, SHA1, 6 digits, counters 0..9.
func TestRFC4226Vectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	mac := newMAC("SHA1", []byte("12345678901234567890"))
	for c, w := range want {
		var out [6]byte
		hotp(mac, uint64(c), 6, out[:])
		if string(out[:]) != w {
			t.Errorf("counter %d: got %s want %s", c, out[:], w)
		}
	}
}

// Our HOTP agrees with pquerna/otp (what enrollment uses to make URIs) for
// every algorithm and both lengths.
func TestAgreesWithPquernaOTP(t *testing.T) {
	key := []byte("an independent 20b k")
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(key)
	algs := map[string]otp.Algorithm{"SHA1": otp.AlgorithmSHA1, "SHA256": otp.AlgorithmSHA256, "SHA512": otp.AlgorithmSHA512}
	for name, alg := range algs {
		for _, digits := range []int{6, 8} {
			for _, unix := range []int64{0, 29, 30, 1700000000, 1700000029} {
				at := time.Unix(unix, 0)
				want, err := totp.GenerateCodeCustom(b32, at, totp.ValidateOpts{Period: 30, Digits: otp.Digits(digits), Algorithm: alg})
				if err != nil {
					t.Fatal(err)
				}
				m := codeMatcher{mac: newMAC(name, key), digits: digits, code: []byte(want)}
				if !m.matches(stepAt(at, 30)) {
					t.Errorf("%s/%d/%d: pquerna says %s, we disagree", name, digits, unix, want)
				}
			}
		}
	}
}

func TestIsDigits(t *testing.T) {
	for s, want := range map[string]bool{
		"123456": true, "00000000": true, "": false, "12345a": false, "123 456": false,
		" 123456": false, "１２３４５６": false, "-12345": false, "12345\x00": false,
	} {
		if got := isDigits([]byte(s)); got != want {
			t.Errorf("isDigits(%q) = %v", s, got)
		}
	}
}

func TestSplitCode(t *testing.T) {
	for _, tc := range []struct {
		name, in, sep string
		digits        int
		pw, code      string
		ok            bool
	}{
		{"Trailing6", "hunter2123456", "", 6, "hunter2", "123456", true},
		{"Trailing8", "hunter212345678", "", 8, "hunter2", "12345678", true},
		{"OnlyCode", "123456", "", 6, "", "123456", true},
		{"TooShort", "12345", "", 6, "", "", false},
		{"Separator", "hunter2,123456", ",", 6, "hunter2", "123456", true},
		{"SeparatorInPassword", "a,b,c,123456", ",", 6, "a,b,c", "123456", true},
		{"MultiByteSeparator", "pw::123456", "::", 6, "pw", "123456", true},
		{"SeparatorMissing", "hunter2123456", ",", 6, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pw, code, ok := splitCode([]byte(tc.in), tc.sep, tc.digits)
			if ok != tc.ok || string(pw) != tc.pw || string(code) != tc.code {
				t.Fatalf("splitCode(%q,%q,%d) = %q,%q,%v", tc.in, tc.sep, tc.digits, pw, code, ok)
			}
		})
	}
}
