package radius

import (
	"net/netip"
	"sync"
	"time"
)

// cacheKey identifies a request the way RFC 5080 section 2.2.2 asks: a
// retransmission has the same source, Identifier and Request Authenticator.
type cacheKey struct {
	src  netip.AddrPort
	id   byte
	auth [16]byte
}

// cacheEntry is one request: in flight while reply is nil, then answered.
type cacheEntry struct {
	key        cacheKey
	expires    time.Time
	reply      []byte // nil while in flight; never changed once set
	prev, next *cacheEntry
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
// the same ttl and are inserted in arrival order, so the oldest entry is
// always the next to expire: entries sit in a list in arrival order, and
// expiry pops from its head, which makes every operation O(1).
type replyCache struct {
	ttl      time.Duration
	max      int // entries
	maxBytes int // bytes of cached replies (a reply echoes Proxy-States: up to 4 KB)
	bytes    int

	mu         sync.Mutex
	m          map[cacheKey]*cacheEntry
	head, tail *cacheEntry // head is the oldest
}

// replyCacheBytes bounds the memory of cached replies, whatever their size:
// a client sending Proxy-States makes each reply up to 4 KB.
const replyCacheBytes = 64 << 20

func newReplyCache(ttl time.Duration, max int) *replyCache {
	return &replyCache{ttl: ttl, max: max, maxBytes: replyCacheBytes, m: make(map[cacheKey]*cacheEntry)}
}

// begin looks k up at time now. For a new key it inserts an in-flight entry
// and returns it with cacheNew; for an answered key it returns the reply.
// Expired entries are removed first. When max live entries exist, nothing is
// evicted: begin reports cacheFull.
func (c *replyCache) begin(k cacheKey, now time.Time) (*cacheEntry, []byte, cacheState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	if e, ok := c.m[k]; ok {
		if e.reply == nil {
			return e, nil, cacheInFlight
		}
		return e, e.reply, cacheAnswered
	}
	if len(c.m) >= c.max || c.bytes >= c.maxBytes {
		return nil, nil, cacheFull
	}
	e := &cacheEntry{key: k, expires: now.Add(c.ttl), prev: c.tail}
	if c.tail != nil {
		c.tail.next = e
	} else {
		c.head = e
	}
	c.tail = e
	c.m[k] = e
	return e, nil, cacheNew
}

// finish stores the reply of e; retransmissions get it until e expires.
func (c *replyCache) finish(e *cacheEntry, reply []byte) {
	c.mu.Lock()
	e.reply = reply
	if c.m[e.key] == e { // not expired meanwhile
		c.bytes += len(reply)
	}
	c.mu.Unlock()
}

// forget removes e, so that a retransmission is processed as new.
func (c *replyCache) forget(e *cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[e.key] != e {
		return // expired already, and maybe replaced
	}
	c.remove(e)
}

// remove takes e out of the map and the list. c.mu is held.
func (c *replyCache) remove(e *cacheEntry) {
	delete(c.m, e.key)
	c.unlink(e)
	c.bytes -= len(e.reply)
}

func (c *replyCache) unlink(e *cacheEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		c.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		c.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

// expire removes the entries whose time is up (the oldest are at the head).
// c.mu is held.
func (c *replyCache) expire(now time.Time) {
	for c.head != nil && !now.Before(c.head.expires) {
		c.remove(c.head)
	}
}

// len returns the live entries at now, dropping the expired ones first, so
// that an idle server's gauge (and memory) goes down without new traffic.
func (c *replyCache) len(now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now)
	return len(c.m)
}
