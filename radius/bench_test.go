package radius

import (
	"context"
	"testing"
	"time"

	"github.com/radotp/radotp/verifier"
)

// BenchmarkHandleAccessRequest measures steps 1-7 for one Access-Request with
// Message-Authenticator and a Proxy-State, a verifier that accepts at once,
// and a clock that moves past the reply cache TTL between requests so that
// every iteration is a new request, not a resend.
func BenchmarkHandleAccessRequest(b *testing.B) {
	accept := VerifierFunc(func(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
		return verifier.Decision{Outcome: verifier.Accept}, nil
	})
	s := &Server{Verifier: accept, Logger: discardLogger()}
	s.SetClients(testClients(b))
	now := time.Unix(1_700_000_000, 0)
	s.Now = func() time.Time { return now }
	req := accessRequest(b, strictSecret, 1, "alice", alicePassword,
		attr{typ: 31, val: []byte("02-00-00-00-00-01")}, attr{typ: 33, val: []byte("proxy")})
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		now = now.Add(time.Minute)
		if reply, drop := s.handle(ctx, req, strictSrc); reply == nil {
			b.Fatalf("dropped: %s", drop)
		}
	}
}

// BenchmarkReplyCache measures the reply cache with a steady state of
// expiring entries.
func BenchmarkReplyCache(b *testing.B) {
	b.Run("NewFinishResend", func(b *testing.B) {
		c := newReplyCache(time.Second, DefaultReplyCacheSize)
		now := time.Unix(0, 0)
		reply := make([]byte, 38)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			now = now.Add(100 * time.Microsecond) // about 10000 live entries
			k := key(i)
			e, _, st := c.begin(k, now)
			if st != cacheNew {
				b.Fatalf("begin: %v", st)
			}
			c.finish(e, reply)
			if _, r, st := c.begin(k, now); st != cacheAnswered || r == nil {
				b.Fatalf("resend: %v", st)
			}
			i++
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		c := newReplyCache(time.Second, DefaultReplyCacheSize)
		reply := make([]byte, 38)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := int(time.Now().UnixNano()) & 0xffffff
			for pb.Next() {
				e, _, st := c.begin(key(i), time.Now())
				if st == cacheNew {
					c.finish(e, reply)
				}
				i++
			}
		})
	})
}
