package otpcode

import (
	"encoding/base32"
	"fmt"
	"strings"
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
			m := NewMatcher(v.alg, seeds[v.alg], 8, []byte(v.code))
			step := Step(time.Unix(v.unix, 0), 30)
			if !m.At(step) {
				var got [8]byte
				HOTP(NewMAC(v.alg, seeds[v.alg]), uint64(step), got[:])
				t.Fatalf("got %s, want %s", got[:], v.code)
			}
			if m.At(step+1) || m.At(step-1) {
				t.Fatal("code also matches a neighbouring step")
			}
		})
	}
}

// RFC 4226 appendix D: HOTP, SHA1, 6 digits, counters 0..9.
func TestRFC4226Vectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	mac := NewMAC("SHA1", []byte("12345678901234567890"))
	for c, w := range want {
		var out [6]byte
		HOTP(mac, uint64(c), out[:])
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
				if !NewMatcher(name, key, digits, []byte(want)).At(Step(at, 30)) {
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
		if got := IsDigits([]byte(s)); got != want {
			t.Errorf("isDigits(%q) = %v", s, got)
		}
	}
}

func TestInWindow(t *testing.T) {
	key := []byte("12345678901234567890")
	now := time.Unix(1111111109, 0)
	var c [6]byte
	HOTP(NewMAC("SHA1", key), uint64(Step(now, 30)-1), c[:])
	if step, ok := InWindow("SHA1", key, 6, 30, c[:], now, 1); !ok || step != Step(now, 30)-1 {
		t.Fatalf("previous step: %d %v", step, ok)
	}
	if _, ok := InWindow("SHA1", key, 6, 30, c[:], now, 0); ok {
		t.Fatal("matched outside a window of 0")
	}
	if _, ok := InWindow("MD5", key, 6, 30, c[:], now, 1); ok {
		t.Fatal("matched with an unknown algorithm")
	}
}

func TestKeyURIAndGroups(t *testing.T) {
	k, err := KeyURI("ACME VPN", "alice", []byte("12345678901234567890"), "SHA256", 8, 60)
	if err != nil {
		t.Fatal(err)
	}
	u := k.URL()
	for _, want := range []string{"otpauth://totp/ACME%20VPN:alice?", "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", "issuer=ACME%20VPN", "algorithm=SHA256", "digits=8", "period=60"} {
		if !strings.Contains(u, want) {
			t.Errorf("URI %s lacks %s", u, want)
		}
	}
	if g := Groups("GEZDGNBVGY"); g != "GEZD GNBV GY" {
		t.Errorf("Groups = %q", g)
	}
}
