package enrollment

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// maxLimiterKeys bounds the memory of one limiter. When it is reached,
// buckets that are full again are forgotten; if that is not enough, new keys
// are refused until some are (failing closed: clearing every bucket would
// hand a flood of fresh keys a reset of every limit).
const maxLimiterKeys = 10000

// ipKey is the limiter key of a client address: IPv4 as it is, IPv6 by its
// /64, which one host usually holds whole (keying by the full address would
// give it 2^64 fresh buckets).
func ipKey(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// limiter is a token bucket per key (a client address, a user name, a link).
type limiter struct {
	rate Rate
	now  func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(r Rate, now func() time.Time) *limiter {
	return &limiter{rate: r, now: now, buckets: make(map[string]*bucket)}
}

// allow takes one token from key's bucket. If there is none it reports false
// and how long until there is one.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= maxLimiterKeys {
			l.prune(now)
			if len(l.buckets) >= maxLimiterKeys {
				return false, l.rate.Every
			}
		}
		b = &bucket{tokens: float64(l.rate.Burst), last: now}
		l.buckets[key] = b
	}
	b.refill(now, l.rate)
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) * float64(l.rate.Every)))
	return false, wait
}

func (b *bucket) refill(now time.Time, r Rate) {
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(float64(r.Burst), b.tokens+float64(el)/float64(r.Every))
		b.last = now
	}
}

func (l *limiter) prune(now time.Time) {
	for k, b := range l.buckets {
		b.refill(now, l.rate)
		if b.tokens >= float64(l.rate.Burst) {
			delete(l.buckets, k)
		}
	}
}
