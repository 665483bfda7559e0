package radius

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// cacheKey identifies a request the way RFC 5080 section 2.2.2 asks: a
// retransmission has the same source, Identifier and Request Authenticator.
// It holds no pointers (netip.Addr does), so that the cache is invisible to
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
// no pointers either (the list links are slot numbers): hundreds of
// thousands are live at a high request rate, and the collector would
// otherwise trace them all on every cycle, which runs every few password
// checks (each allocates argon2id's 19 MiB).
type cacheSlot struct {
	key        cacheKey
	seq        uint64
	expires    int64 // nanoseconds since replyCache.base
	prev, next int32 // arrival-order list, or next free slot; -1: none
	n          uint16
	inline     [inlineReply]byte
}

// Slots live in chunks that are never moved, so that the cache never stops
// to copy itself as it grows.
const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
)

// cacheState is what replyCache.begin found.
type cacheState int

const (
	cacheNew      cacheState = iota // a new entry was made: process the request
	cacheInFlight                   // the request is being processed
	cacheAnswered                   // the request was answered: resend the reply
	cacheFull                       // no room without evicting a live entry
)

// replyCache remembers requests for ttl after they arrived. All entries have
// the same ttl and are added in arrival order, so the oldest entry is always
// the next to expire: entries sit in a list in arrival order, and expiry
// pops from its head, which makes every operation O(1).
type replyCache struct {
	ttl      time.Duration
	max      int // entries
	maxBytes int // bytes of cached replies (a reply echoes Proxy-States: up to 4 KB)
	bytes    int

	mu         sync.Mutex
	seed       maphash.Seed      // random: collisions cannot be aimed at
	m          map[uint64]int32  // live entries: hash of the key -> slot
	chunks     [][]cacheSlot     // slot i is chunks[i>>chunkBits][i&(chunkSize-1)]
	slots      int32             // slots made so far
	free       int32             // first free slot; -1: none
	head, tail int32             // oldest and newest live entry; -1: none
	seq        uint64            // of the last entry made
	big        map[uint64][]byte // replies longer than inlineReply, by seq
	base       time.Time         // the first now seen: expiry is measured from it
}

// replyCacheBytes bounds the memory of cached replies, whatever their size:
// a client sending Proxy-States makes each reply up to 4 KB.
const replyCacheBytes = 64 << 20

func newReplyCache(ttl time.Duration, max int) *replyCache {
	return &replyCache{ttl: ttl, max: max, maxBytes: replyCacheBytes, seed: maphash.MakeSeed(),
		m: make(map[uint64]int32), big: make(map[uint64][]byte), free: -1, head: -1, tail: -1}
}

// hash keys the map with 8 bytes instead of the key's 36: half the cache's
// memory. The slot keeps the whole key, which decides.
func (c *replyCache) hash(k cacheKey) uint64 { return maphash.Comparable(c.seed, k) }

func (c *replyCache) slot(i int32) *cacheSlot {
	return &c.chunks[i>>chunkBits][i&(chunkSize-1)]
}

// begin looks k up at time now. For a new key it adds an in-flight entry and
// returns it with cacheNew; for an answered key it returns the reply (a copy
// the caller may keep). Expired entries are removed first. When max live
// entries exist, nothing is evicted: begin reports cacheFull.
func (c *replyCache) begin(k cacheKey, now time.Time) (cacheEntry, []byte, cacheState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base.IsZero() {
		c.base = now
	}
	c.expire(now)
	h := c.hash(k)
	if i, ok := c.m[h]; ok {
		s := c.slot(i)
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
	i := c.alloc()
	c.seq++
	*c.slot(i) = cacheSlot{key: k, seq: c.seq, expires: c.since(now) + int64(c.ttl), prev: c.tail, next: -1}
	if c.tail >= 0 {
		c.slot(c.tail).next = i
	} else {
		c.head = i
	}
	c.tail = i
	c.m[h] = i
	return cacheEntry{key: k, seq: c.seq}, nil, cacheNew
}

// alloc returns a free slot, making one (and a chunk) if needed. There are
// never more slots than max. c.mu is held.
func (c *replyCache) alloc() int32 {
	if i := c.free; i >= 0 {
		c.free = c.slot(i).next
		return i
	}
	i := c.slots
	if int(i)>>chunkBits == len(c.chunks) {
		c.chunks = append(c.chunks, make([]cacheSlot, chunkSize))
	}
	c.slots++
	return i
}

// reply returns a copy of the answered slot's reply. c.mu is held.
func (c *replyCache) reply(s *cacheSlot) []byte {
	if int(s.n) <= inlineReply {
		return append([]byte(nil), s.inline[:s.n]...)
	}
	return append([]byte(nil), c.big[s.seq]...)
}

// lookup returns e's slot number, or -1 if e expired or was forgotten.
// c.mu is held.
func (c *replyCache) lookup(e cacheEntry) int32 {
	i, ok := c.m[c.hash(e.key)]
	if !ok || e.seq == 0 || c.slot(i).seq != e.seq {
		return -1
	}
	return i
}

// finish stores the reply of e; retransmissions get it until e expires.
// reply is copied.
func (c *replyCache) finish(e cacheEntry, reply []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.lookup(e)
	if i < 0 || len(reply) == 0 || len(reply) > 0xffff {
		return // expired meanwhile, or not cacheable
	}
	s := c.slot(i)
	if s.n != 0 {
		return
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
	if i := c.lookup(e); i >= 0 {
		c.remove(i)
	}
}

// remove takes live slot i out of the map and the list and frees it.
// c.mu is held.
func (c *replyCache) remove(i int32) {
	s := c.slot(i)
	delete(c.m, c.hash(s.key))
	if int(s.n) > inlineReply {
		delete(c.big, s.seq)
	}
	c.bytes -= int(s.n)
	if s.prev >= 0 {
		c.slot(s.prev).next = s.next
	} else {
		c.head = s.next
	}
	if s.next >= 0 {
		c.slot(s.next).prev = s.prev
	} else {
		c.tail = s.prev
	}
	*s = cacheSlot{next: c.free, prev: -1}
	c.free = i
}

// since returns the nanoseconds from c.base to now. With time.Now (which
// carries a monotonic reading) a step of the wall clock changes nothing: a
// step back would otherwise keep every entry for as long as the step, and
// fill the cache; a step forward would expire them all at once.
func (c *replyCache) since(now time.Time) int64 { return int64(now.Sub(c.base)) }

// expire removes the entries whose time is up (the oldest are at the head).
// c.mu is held.
func (c *replyCache) expire(now time.Time) {
	if c.head < 0 {
		return
	}
	t := c.since(now)
	for c.head >= 0 && t >= c.slot(c.head).expires {
		c.remove(c.head)
	}
}

// len returns the live entries at now, dropping the expired ones first, so
// that an idle server's gauge (and memory) goes down without new traffic.
func (c *replyCache) len(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if len(c.m) == 0 && len(c.chunks) > 1 {
		// Idle after a busy spell: give the memory back (a Go map never
		// shrinks; a new one starts small).
		c.chunks, c.slots, c.free = nil, 0, -1
		c.m, c.big = make(map[uint64]int32), make(map[uint64][]byte)
	}
	return len(c.m)
}
