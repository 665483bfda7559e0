package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that Parse never panics, gives the same answer twice,
// reports one problem per line, and that whatever it accepts is valid.
// The seed corpus is in testdata/fuzz/FuzzParse (the example file and
// broken variants). Run: go test -fuzz FuzzParse -fuzztime 30s ./config/
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile(exampleFile); err == nil {
		f.Add(data) // the current example, should the corpus copy be stale
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.toml", dir)
		c2, err2 := Parse(data, "fuzz.toml", dir)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("two runs differ: %v / %v", err, err2)
		}
		if err != nil {
			if c != nil {
				t.Fatal("a config returned with an error")
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if !strings.HasPrefix(line, "config: fuzz.toml: ") {
					t.Fatalf("error line without the prefix: %q", line)
				}
			}
			return
		}
		checkValid(t, c)
		if len(c.Clients) != len(c2.Clients) {
			t.Fatal("two runs differ")
		}
		_ = c.Warnings()
	})
}

// checkValid checks the promises Parse makes about a config it returns.
func checkValid(t *testing.T, c *Config) {
	t.Helper()
	if !slices.Contains(algorithms, c.TOTP.Algorithm) {
		t.Fatalf("algorithm %q", c.TOTP.Algorithm)
	}
	if c.TOTP.Digits != 6 && c.TOTP.Digits != 8 {
		t.Fatalf("digits %d", c.TOTP.Digits)
	}
	if p := c.TOTP.Period.Duration; p%time.Second != 0 || p < minPeriod || p > maxPeriod {
		t.Fatalf("period %v", p)
	}
	if c.Radius.Workers < 1 || c.Radius.QueueSize < 1 || c.Lockout.MaxFailures < 1 {
		t.Fatalf("radius %+v lockout %+v", c.Radius, c.Lockout)
	}
	names := map[string]bool{}
	for i, cl := range c.Clients {
		if !validName(cl.Name) || names[cl.Name] {
			t.Fatalf("client %d: name %q invalid or repeated", i, cl.Name)
		}
		names[cl.Name] = true
		if !cl.Prefix.IsValid() || cl.Prefix != cl.Prefix.Masked() || cl.Prefix.Addr().Is4In6() {
			t.Fatalf("client %q: prefix %v", cl.Name, cl.Prefix)
		}
		if len(cl.SecretBytes) == 0 || cl.RequireMessageAuthenticator == nil {
			t.Fatalf("client %q: secret or require_message_authenticator missing", cl.Name)
		}
		if !slices.Contains(modes, cl.Mode) || cl.Policy != "" && !slices.Contains(policies, cl.Policy) {
			t.Fatalf("client %q: mode %q policy %q", cl.Name, cl.Mode, cl.Policy)
		}
		if cl.Separator != "" && cl.Mode != ModeAppend {
			t.Fatalf("client %q: separator with mode %q", cl.Name, cl.Mode)
		}
	}
}
