package radius

import (
	"net/netip"
	"testing"
	"time"
)

func key(i int) cacheKey {
	k := cacheKey{src: netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(i>>8)), id: byte(i)}
	k.auth[0] = byte(i >> 16)
	return k
}

func TestReplyCache(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	c := newReplyCache(10*time.Second, 3)

	e1, _, st := c.begin(key(1), t0)
	if st != cacheNew {
		t.Fatalf("first begin: %v", st)
	}
	if _, _, st := c.begin(key(1), t0); st != cacheInFlight {
		t.Fatalf("second begin while in flight: %v", st)
	}
	c.finish(e1, []byte("reply-1"))
	if _, r, st := c.begin(key(1), t0.Add(time.Second)); st != cacheAnswered || string(r) != "reply-1" {
		t.Fatalf("begin after finish: %v %q", st, r)
	}

	e2, _, _ := c.begin(key(2), t0.Add(2*time.Second))
	c.begin(key(3), t0.Add(3*time.Second))
	if _, _, st := c.begin(key(4), t0.Add(4*time.Second)); st != cacheFull {
		t.Fatalf("begin on a full cache: %v", st)
	}
	// Forgetting frees room, and the key is new again.
	c.forget(e2)
	if _, _, st := c.begin(key(2), t0.Add(5*time.Second)); st != cacheNew {
		t.Fatalf("begin after forget: %v", st)
	}
	c.forget(e2) // a second forget of a replaced entry does nothing
	if n := c.len(t0.Add(5 * time.Second)); n != 3 {
		t.Fatalf("len %d after a stale forget; want 3", n)
	}

	// At t0+10s key 1 expires (it arrived at t0), making room for key 4.
	if _, _, st := c.begin(key(4), t0.Add(10*time.Second)); st != cacheNew {
		t.Fatalf("begin after expiry: %v", st)
	}
	if _, _, st := c.begin(key(1), t0.Add(10*time.Second)); st != cacheFull {
		t.Fatalf("expired key 1 should be gone, cache full again: %v", st)
	}
	// Everything expires.
	if _, _, st := c.begin(key(1), t0.Add(time.Hour)); st != cacheNew || c.len(t0.Add(time.Hour)) != 1 {
		t.Fatalf("after all expired: %v, len %d", st, c.len(t0.Add(time.Hour)))
	}
	// With no new request, counting expires too: an idle server's gauge drops.
	if n := c.len(t0.Add(2 * time.Hour)); n != 0 {
		t.Fatalf("len %d long after the last request; want 0", n)
	}
	// finish on an expired entry is harmless.
	c.finish(e1, []byte("late"))
}

// TestReplyCacheOrder checks the list stays consistent under random
// forgets and expiry.
func TestReplyCacheOrder(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := newReplyCache(100*time.Millisecond, 1000)
	var live []*cacheEntry
	for i := range 5000 {
		now := t0.Add(time.Duration(i) * time.Millisecond)
		e, _, st := c.begin(key(i), now)
		if st != cacheNew {
			t.Fatalf("begin %d: %v", i, st)
		}
		live = append(live, e)
		if i%3 == 0 {
			c.forget(live[i/2])
		}
		if n := c.len(now); n > 100 {
			t.Fatalf("%d entries live with a 100 ms TTL and one per ms", n)
		}
	}
	n := 0
	for e := c.head; e != nil; e = e.next {
		if e.next != nil && e.next.prev != e {
			t.Fatal("broken back link")
		}
		if e.next != nil && e.next.expires.Before(e.expires) {
			t.Fatal("list not in expiry order")
		}
		n++
	}
	if m := len(c.m); n != m {
		t.Fatalf("list has %d entries, map %d", n, m)
	}
}

// Replies are bounded in bytes as well as in number: big replies (echoed
// Proxy-States) fill the cache sooner, and expiry gives the bytes back.
func TestReplyCacheBytes(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := newReplyCache(10*time.Second, 1000)
	c.maxBytes = 10000
	for i := range 3 {
		e, _, st := c.begin(key(i), t0)
		if st != cacheNew {
			t.Fatalf("begin %d: %v", i, st)
		}
		c.finish(e, make([]byte, 4000))
	}
	if _, _, st := c.begin(key(3), t0); st != cacheFull {
		t.Fatalf("12000 bytes cached with a budget of 10000: %v; want full", st)
	}
	if _, _, st := c.begin(key(3), t0.Add(10*time.Second)); st != cacheNew || c.bytes != 0 {
		t.Fatalf("after expiry: %v, %d bytes; want new and 0", st, c.bytes)
	}
}
