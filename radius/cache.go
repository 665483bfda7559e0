package radius

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// cacheKey identifies a request the way RFC 5080 section 2.2.2 asks: a
// retransmission has the same source, Identifier and Request Authenticator.
// It holds no pointers (netip.Addr does), so the cache's map is invisible to
// the garbage collector.
type cacheKey struct {
	addr [16]byte // source address, IPv4 as ::ffff:a.b.c.d
	port uint16
	id   byte
	auth [16]byte
}

func newCacheKey(src netip.AddrPort, id byte, auth [16]byte) cacheKey {
	return cacheKey{addr: src.Addr().As16(), port: src.Port(), id: id, auth: auth}
}

// cacheEntry is a handle on a request begun in the cache; seq tells it from
// a later request with the same key.
type cacheEntry struct {
	key cacheKey
	seq uint64
}

// inlineReply is the reply length kept in the slot itself: an Access-Accept
// or Access-Reject with a Message-Authenticator is 38 bytes. Longer replies
// (a challenge, echoed Proxy-States) are kept apart.
const inlineReply = 40

// cacheSlot is one request: in flight while n is 0, then answered. It holds
// no pointers either: hundreds of thousands of them are live at a high
// request rate, and the collector would otherwise trace them all on every
// cycle (a cycle runs every few password checks, each of which allocates
// argon2id's 19 MiB).
type cacheSlot struct {
	key     cacheKey
	seq     uint64 // 0: forgotten (a hole until it reaches the head)
	expires int64  // unix nanoseconds
	n       uint16 // reply length; 0 while in flight
	inline  [inlineReply]byte
}

// cacheState is what replyCache.begin found.
type cacheState int

const (
	cacheNew      cacheState = iota // a new entry was made: process the request
	cacheInFlight                   // the request is being processed
	cacheAnswered                   // the request was answered: resend the reply
	cacheFull                       // no room without evicting a live entry
)

// replyCache remembers requests for ttl after they arrived. All entries have
// the same ttl and are added in arrival order, so the oldest is always the
// next to expire: the slots form a ring in arrival order, and expiry pops
// from its head, which makes every operation O(1) (amortized: a full ring is
// rebuilt with twice the live entries' room).
type replyCache struct {
	ttl      time.Duration
	max      int // entries
	maxBytes int // bytes of cached replies (a reply echoes Proxy-States: up to 4 KB)
	bytes    int

	mu    sync.Mutex
	seed  maphash.Seed      // random: collisions cannot be aimed at
	m     map[uint64]uint32 // live entries: hash of the key -> slot index
	ring  []cacheSlot
	head  int // oldest slot
	count int // slots in use, holes included
	seq   uint64
	big   map[uint64][]byte // replies longer than inlineReply, by seq
}

// replyCacheBytes bounds the memory of cached replies, whatever their size:
// a client sending Proxy-States makes each reply up to 4 KB.
const replyCacheBytes = 64 << 20

func newReplyCache(ttl time.Duration, max int) *replyCache {
	return &replyCache{ttl: ttl, max: max, maxBytes: replyCacheBytes, seed: maphash.MakeSeed(),
		m: make(map[uint64]uint32), big: make(map[uint64][]byte)}
}

// hash keys the map with 8 bytes instead of the key's 36: half the cache's
// memory. The slot keeps the whole key, which decides.
func (c *replyCache) hash(k cacheKey) uint64 { return maphash.Comparable(c.seed, k) }

// begin looks k up at time now. For a new key it adds an in-flight entry and
// returns it with cacheNew; for an answered key it returns the reply (a copy
// the caller may keep). Expired entries are removed first. When max live
// entries exist, nothing is evicted: begin reports cacheFull.
func (c *replyCache) begin(k cacheKey, now time.Time) (cacheEntry, []byte, cacheState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	h := c.hash(k)
	if i, ok := c.m[h]; ok {
		s := &c.ring[i]
		if s.key != k {
			// Another live request with the same 64-bit hash: with a
			// million live entries, once in ~10^13 requests. Dropped as
			// overload; never answered with the other request's reply.
			return cacheEntry{}, nil, cacheFull
		}
		e := cacheEntry{key: k, seq: s.seq}
		if s.n == 0 {
			return e, nil, cacheInFlight
		}
		return e, c.reply(s), cacheAnswered
	}
	if len(c.m) >= c.max || c.bytes >= c.maxBytes {
		return cacheEntry{}, nil, cacheFull
	}
	if c.count == len(c.ring) && !c.grow() {
		return cacheEntry{}, nil, cacheFull
	}
	i := (c.head + c.count) % len(c.ring)
	c.count++
	c.seq++
	c.ring[i] = cacheSlot{key: k, seq: c.seq, expires: now.Add(c.ttl).UnixNano()}
	c.m[h] = uint32(i)
	return cacheEntry{key: k, seq: c.seq}, nil, cacheNew
}

// grow rebuilds the full ring with room for twice the live entries (at
// least 64 slots; at most max plus an eighth for the holes that forgotten
// entries leave), keeping arrival order from index 0 and dropping the holes.
// c.mu is held.
func (c *replyCache) grow() bool {
	live := len(c.m)
	n := min(max(64, 2*live), c.max+c.max/8+1)
	if n <= live {
		return false
	}
	ring := make([]cacheSlot, n)
	j := 0
	for k := range c.count {
		s := &c.ring[(c.head+k)%len(c.ring)]
		if s.seq == 0 {
			continue
		}
		ring[j] = *s
		c.m[c.hash(s.key)] = uint32(j)
		j++
	}
	c.ring, c.head, c.count = ring, 0, j
	return true
}

// reply returns a copy of the answered slot's reply. c.mu is held.
func (c *replyCache) reply(s *cacheSlot) []byte {
	if int(s.n) <= inlineReply {
		return append([]byte(nil), s.inline[:s.n]...)
	}
	return append([]byte(nil), c.big[s.seq]...)
}

// lookup returns e's slot, or nil if e expired or was forgotten. c.mu is held.
func (c *replyCache) lookup(e cacheEntry) *cacheSlot {
	i, ok := c.m[c.hash(e.key)]
	if !ok || e.seq == 0 || c.ring[i].seq != e.seq {
		return nil
	}
	return &c.ring[i]
}

// finish stores the reply of e; retransmissions get it until e expires.
// reply is copied.
func (c *replyCache) finish(e cacheEntry, reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.lookup(e)
	if s == nil || s.n != 0 || len(reply) == 0 || len(reply) > 0xffff {
		return // expired meanwhile, or not cacheable
	}
	s.n = uint16(len(reply))
	if len(reply) <= inlineReply {
		copy(s.inline[:], reply)
	} else {
		c.big[s.seq] = append([]byte(nil), reply...)
	}
	c.bytes += len(reply)
}

// forget removes e, so that a retransmission is processed as new.
func (c *replyCache) forget(e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.lookup(e); s != nil {
		c.remove(s)
	}
}

// remove takes a live slot out of the map and leaves a hole in the ring.
// c.mu is held.
func (c *replyCache) remove(s *cacheSlot) {
	delete(c.m, c.hash(s.key))
	if int(s.n) > inlineReply {
		delete(c.big, s.seq)
	}
	c.bytes -= int(s.n)
	s.seq, s.n = 0, 0
}

// expire removes the entries whose time is up and the holes before them
// (the oldest are at the head). c.mu is held.
func (c *replyCache) expire(now time.Time) {
	t := now.UnixNano()
	for c.count > 0 {
		s := &c.ring[c.head]
		if s.seq != 0 {
			if t < s.expires {
				return
			}
			c.remove(s)
		}
		c.head = (c.head + 1) % len(c.ring)
		c.count--
	}
	c.head = 0
}

// len returns the live entries at now, dropping the expired ones first, so
// that an idle server's gauge (and memory) goes down without new traffic.
func (c *replyCache) len(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if c.count == 0 && len(c.ring) > 1024 {
		c.ring = nil // give an idle server's memory back
	}
	return len(c.m)
}
