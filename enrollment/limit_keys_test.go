package enrollment

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestIPKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"fe80::1%eth0":         "fe80::/64",
	} {
		if got := ipKey(netip.MustParseAddr(in)); got != want {
			t.Errorf("ipKey(%s) = %s, want %s", in, got, want)
		}
	}
}

// A table full of live buckets refuses new keys; it never forgets the
// buckets of those already limited.
func TestLimiterFullFailsClosed(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	l := newLimiter(Rate{Every: time.Minute, Burst: 2}, func() time.Time { return now })
	for i := range maxLimiterKeys {
		if ok, _ := l.allow(fmt.Sprint("k", i)); !ok {
			t.Fatalf("key %d refused before the table was full", i)
		}
	}
	l.allow("k0") // k0 now has no token left
	if ok, _ := l.allow("newcomer"); ok {
		t.Fatal("a new key was admitted into a full table of live buckets")
	}
	if ok, _ := l.allow("k0"); ok {
		t.Fatal("k0's exhausted bucket was forgotten")
	}
	now = now.Add(2 * time.Minute) // every bucket full again: pruned on demand
	if ok, _ := l.allow("newcomer"); !ok {
		t.Fatal("new key refused after the buckets refilled")
	}
}
