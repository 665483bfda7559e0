package radius

import (
	"bytes"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func key(i int) cacheKey {
	var auth [16]byte
	auth[0] = byte(i >> 16)
	return newCacheKey(netip.AddrPortFrom(netip.MustParseAddr("10.0.0.1"), uint16(i>>8)), byte(i), auth)
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
	var live []cacheEntry
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
		checkList(t, c)
	}
}

// checkList checks that the list is linked both ways, in expiry order, and
// holds exactly the map's entries.
func checkList(t *testing.T, c *replyCache) {
	t.Helper()
	n := 0
	var last int64
	prev := int32(-1)
	for i := c.head; i >= 0; i = c.slot(i).next {
		s := c.slot(i)
		if s.prev != prev {
			t.Fatal("broken back link")
		}
		if s.expires < last {
			t.Fatal("list not in expiry order")
		}
		if j, ok := c.m[c.hash(s.key)]; !ok || j != i {
			t.Fatalf("slot %d not in the map (%d, %v)", i, j, ok)
		}
		last, prev = s.expires, i
		n++
	}
	if c.tail != prev {
		t.Fatal("tail is not the last entry")
	}
	if m := len(c.m); n != m {
		t.Fatalf("list has %d entries, map %d", n, m)
	}
}

// Forgotten entries give their slots back: the cache never makes more
// slots than max, however many requests come and go.
func TestReplyCacheReuse(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := newReplyCache(time.Hour, 100)
	kept := 0
	for i := range 10000 {
		e, _, st := c.begin(key(i), t0)
		if kept == 100 {
			if st != cacheFull {
				t.Fatalf("begin with 100 of 100 live: %v", st)
			}
			break
		}
		if st != cacheNew {
			t.Fatalf("begin %d with %d live of 100: %v", i, kept, st)
		}
		if i%10 == 0 {
			kept++
		} else {
			c.forget(e) // a dropped request
		}
		if c.slots > 100 {
			t.Fatalf("%d slots made for at most 100 live entries", c.slots)
		}
		checkList(t, c)
	}
	if kept != 100 {
		t.Fatalf("%d kept", kept)
	}
}

// After a busy spell, an idle cache gives its memory back.
func TestReplyCacheIdle(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := newReplyCache(time.Minute, 100000)
	for i := range 3 * chunkSize {
		c.begin(key(i), t0)
	}
	if len(c.chunks) != 3 {
		t.Fatalf("%d chunks for %d entries", len(c.chunks), 3*chunkSize)
	}
	if n := c.len(t0.Add(time.Hour)); n != 0 || c.chunks != nil || c.slots != 0 {
		t.Fatalf("idle cache: %d live, %d chunks, %d slots", n, len(c.chunks), c.slots)
	}
	if _, _, st := c.begin(key(1), t0.Add(time.Hour)); st != cacheNew {
		t.Fatalf("begin after the memory went back: %v", st)
	}
	checkList(t, c)
}

// Long replies are kept apart from the slot; both kinds come back whole, as
// copies.
func TestReplyCacheLongReply(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := newReplyCache(time.Minute, 10)
	short, long := bytes.Repeat([]byte{1}, inlineReply), bytes.Repeat([]byte{2}, 3000)
	e1, _, _ := c.begin(key(1), t0)
	e2, _, _ := c.begin(key(2), t0)
	c.finish(e1, short)
	c.finish(e2, long)
	_, r1, st1 := c.begin(key(1), t0)
	_, r2, st2 := c.begin(key(2), t0)
	if st1 != cacheAnswered || st2 != cacheAnswered || !bytes.Equal(r1, short) || !bytes.Equal(r2, long) {
		t.Fatalf("replies %v %d bytes, %v %d bytes", st1, len(r1), st2, len(r2))
	}
	r2[0] = 9 // a copy: the cached reply stays as it was
	if _, again, _ := c.begin(key(2), t0); !bytes.Equal(again, long) {
		t.Fatal("the cached reply changed through a returned slice")
	}
	if c.bytes != inlineReply+3000 {
		t.Fatalf("%d bytes counted", c.bytes)
	}
	c.forget(e2)
	if c.bytes != inlineReply || len(c.big) != 0 {
		t.Fatalf("after forget: %d bytes, %d long replies", c.bytes, len(c.big))
	}
}

// The map is keyed by a hash; the slot's whole key decides. A request whose
// hash matches another live request's is never answered with its reply.
func TestReplyCacheHashCollision(t *testing.T) {
	t0 := time.Unix(0, 0)
	c := newReplyCache(time.Minute, 10)
	e1, _, _ := c.begin(key(1), t0)
	c.finish(e1, []byte("reply-1"))
	c.m[c.hash(key(2))] = c.m[c.hash(key(1))] // as if key 2 hashed like key 1
	if _, r, st := c.begin(key(2), t0); st != cacheFull || r != nil {
		t.Fatalf("a colliding key got %v %q; want dropped", st, r)
	}
	if _, r, st := c.begin(key(1), t0); st != cacheAnswered || string(r) != "reply-1" {
		t.Fatalf("key 1 after the collision: %v %q", st, r)
	}
}

// The cache's keys and slots must stay free of pointers, or the garbage
// collector traces every live entry (hundreds of thousands) on each cycle.
func TestReplyCacheNoPointers(t *testing.T) {
	for _, v := range []any{cacheKey{}, cacheSlot{}} {
		if p := pointerPath(reflect.TypeOf(v)); p != "" {
			t.Errorf("%T holds a pointer: %s", v, p)
		}
	}
}

func pointerPath(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Array:
		return pointerPath(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if p := pointerPath(t.Field(i).Type); p != "" {
				return t.Field(i).Name + "." + p
			}
		}
		return ""
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		return ""
	}
	return t.String()
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
