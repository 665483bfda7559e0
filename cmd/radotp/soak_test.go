package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"
)

// Soak (issue 6): mixed load against the real binary — valid logins, wrong
// codes, replays, unknown users, Status-Server; 10 % loss with NAS-style
// retransmissions; junk from a source that is no client and malformed
// packets from the client — asserting invariants, not speed:
//
//   - one logical reply per request: a retransmission gets the bytes of the
//     first reply, never another code, and the server counts one answer per
//     request;
//   - a retransmission of an accepted request is never rejected;
//   - never an Accept for a wrong, replayed or unknown user's code;
//   - junk and malformed packets get no reply, and each is counted as
//     dropped for its reason;
//   - flat resources after warm-up: RSS, goroutines, the reply cache no
//     larger than the requests of one TTL; nothing in flight or queued at
//     the end.
//
// `make test` runs a short soak (about 25 s in all); `make soak` runs it for
// RADOTP_SOAK (10m) with NAS-like retransmission delays of 1-3 s.

type soakSettings struct {
	load, warm, every  time.Duration // load in all, warm-up within it, sampling interval
	ttl                time.Duration // radius.reply_cache_ttl
	minDelay, maxDelay time.Duration // a NAS's retransmission delay after a loss
	timeout            time.Duration // a NAS's wait for a reply before it retransmits
	loginEvery         time.Duration // a user logs in at most this often
	pace               time.Duration // a worker's pause between requests, at most
	users, workers     int
}

func soakConfig(t *testing.T) soakSettings {
	c := soakSettings{
		load: 14 * time.Second, warm: 5 * time.Second, every: time.Second,
		ttl: 5 * time.Second, minDelay: 200 * time.Millisecond, maxDelay: 600 * time.Millisecond,
		timeout: 2 * time.Second, loginEvery: 4 * time.Second, pace: 20 * time.Millisecond,
		users: 64, workers: 16,
	}
	if v := os.Getenv("RADOTP_SOAK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			t.Fatalf("RADOTP_SOAK=%q: want a duration of at least 30s, e.g. 10m", v)
		}
		c.load, c.warm, c.every = d, min(time.Minute, d/4), min(10*time.Second, d/20)
		c.ttl, c.minDelay, c.maxDelay, c.timeout = 30*time.Second, time.Second, 3*time.Second, 3*time.Second
		c.loginEvery = 10 * time.Second
		c.users, c.workers = 128, 32 // NAS delays of seconds: more sockets for the same load
	}
	// Up to two retransmissions after a lost reply must come while the
	// reply cache still holds the request.
	if 2*c.maxDelay+c.timeout >= c.ttl {
		t.Fatalf("retransmission delays %v..%v do not fit into the reply cache TTL %v", c.minDelay, c.maxDelay, c.ttl)
	}
	return c
}

// sendLog records when requests that enter the reply cache were sent.
type sendLog struct {
	mu sync.Mutex
	ts []time.Time // ascending: taken under mu
}

func (l *sendLog) add() {
	l.mu.Lock()
	l.ts = append(l.ts, time.Now())
	l.mu.Unlock()
}

// since counts the sends at or after from.
func (l *sendLog) since(from time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ts) - sort.Search(len(l.ts), func(i int) bool { return !l.ts[i].Before(from) })
}

func (l *sendLog) last() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ts) == 0 {
		return time.Time{}
	}
	return l.ts[len(l.ts)-1]
}

// soakStats are the client's counts.
type soakStats struct {
	sent, fresh, freshAccepted, freshRejected  atomic.Int64
	wrong, replays, unknown, status            atomic.Int64
	accepts, rejects                           atomic.Int64 // replies to new requests, as the server should count them
	reqLost, replyLost, cachedRetx, timeoutRtx atomic.Int64
	junk, junkReplies, bad, badReplies         atomic.Int64
	badByReason                                sync.Map // drop reason → *atomic.Int64

	mu         sync.Mutex
	violations map[string][]string // by format: up to 5 examples each
	nViolated  map[string]int
}

func (st *soakStats) violate(format string, args ...any) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.violations == nil {
		st.violations, st.nViolated = make(map[string][]string), make(map[string]int)
	}
	st.nViolated[format]++
	if len(st.violations[format]) < 5 {
		st.violations[format] = append(st.violations[format], fmt.Sprintf(format, args...))
	}
}

// report lists the violations, grouped by kind with a few examples each.
func (st *soakStats) report() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var b strings.Builder
	for f, ex := range st.violations {
		fmt.Fprintf(&b, "%d× %s\n", st.nViolated[f], f)
		for _, e := range ex {
			fmt.Fprintf(&b, "\t%s\n", e)
		}
	}
	return b.String()
}

func (st *soakStats) badSent(reason string) {
	v, _ := st.badByReason.LoadOrStore(reason, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
	st.bad.Add(1)
}

type soakSample struct {
	at                                  time.Duration
	rss, heap, goroutines, cache, bound float64
	inFlight, queued                    float64
}

func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak: not with -short")
	}
	c := soakConfig(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d; load %v (warm-up %v), reply cache TTL %v, retransmit after %v..%v",
		seed, c.load, c.warm, c.ttl, c.minDelay, c.maxDelay)

	dir := t.TempDir()
	cfg := writeOTPConfig(t, dir, "127.0.0.1:0", fmt.Sprintf("reply_cache_ttl = %q", c.ttl))
	users := addOTPUsers(t, cfg, "soak", c.users)
	s := startServer(t, cfg)

	// The junk sender binds to 127.0.0.2: on loopback, but no client.
	junk, err := dialNAS("127.0.0.2:0", s.radius)
	if err != nil {
		missing(t, "a socket on 127.0.0.2 ("+err.Error()+")")
	}
	defer junk.conn.Close()

	var (
		st    soakStats
		sends sendLog
		stop  = make(chan struct{})
		wg    sync.WaitGroup // senders
		rd    sync.WaitGroup // readers of the junk and malformed sockets
	)
	stopLoad := sync.OnceFunc(func() { close(stop) })
	t.Cleanup(func() { stopLoad(); wg.Wait() }) // also when the test fails early
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return false
		}
	}
	delay := func(r *rand.Rand) time.Duration {
		return c.minDelay + time.Duration(r.Int64N(int64(c.maxDelay-c.minDelay)))
	}
	start := time.Now()

	per := c.users / c.workers
	for w := range c.workers {
		n := mustNAS(t, "127.0.0.1:0", s.radius)
		mine := users[w*per : (w+1)*per]
		r := rand.New(rand.NewPCG(seed, uint64(w+1)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := make([]int64, len(mine))     // highest step sent per user
			next := make([]time.Time, len(mine)) // a user's next login, at the earliest
			for i := range next {
				next[i] = start.Add(time.Duration(r.Int64N(int64(c.loginEvery))))
			}
			var acc []usedCode
			for !stopped() {
				time.Sleep(time.Duration(r.Int64N(int64(c.pace))))
				cur := currentStep()
				now := time.Now()
				var (
					kind  string
					req   []byte
					fresh usedCode
					fi    = -1
				)
				x := r.IntN(100)
				if x < 40 { // a valid login, if a user is due and has an unused step
					for _, i := range r.Perm(len(mine)) {
						if now.After(next[i]) && max(last[i]+1, cur-1) <= cur+1 {
							fi = i
							break
						}
					}
				}
				switch {
				case fi >= 0:
					step := max(last[fi]+1, cur-1)
					last[fi], next[fi] = step, now.Add(c.loginEvery)
					fresh = usedCode{mine[fi], step, mine[fi].code(step)}
					kind, req = "fresh", n.accessRequest(fresh.user.name, fresh.code)
					st.fresh.Add(1)
				case x >= 40 && x < 60 && len(acc) > 0:
					u := acc[r.IntN(len(acc))]
					kind, req = "replay", n.accessRequest(u.user.name, u.code)
					st.replays.Add(1)
				case x >= 60 && x < 65:
					kind, req = "unknown", n.accessRequest(fmt.Sprintf("nobody%d", r.IntN(1000)), mine[0].code(cur))
					st.unknown.Add(1)
				case x >= 65 && x < 72:
					kind, req = "status", n.statusServer()
					st.status.Add(1)
				default:
					u := mine[r.IntN(len(mine))]
					kind, req = "wrong", n.accessRequest(u.name, notCode(u.code(cur)))
					st.wrong.Add(1)
				}

				// 10 % loss: half the requests are lost on the way (the NAS
				// sends again after its delay), half the replies (the NAS
				// retransmits the identical request, once or twice).
				lost := r.IntN(10) == 0
				replyLost := lost && r.IntN(2) == 0
				if lost && !replyLost {
					st.reqLost.Add(1)
					time.Sleep(delay(r))
				}
				sends.add()
				st.sent.Add(1)
				reply, retx, err := n.exchange(req, c.timeout, 3)
				st.timeoutRtx.Add(int64(retx))
				if err != nil {
					st.violate("%s request: no reply after 3 sends: %v", kind, err)
					continue
				}
				switch {
				case kind == "status":
					if !isAccept(reply) {
						st.violate("Status-Server: %s", replyName(reply))
					}
				case isAccept(reply):
					st.accepts.Add(1)
					if kind != "fresh" {
						st.violate("Access-Accept for a %s code", kind)
					}
				case isReject(reply):
					st.rejects.Add(1)
				default:
					st.violate("%s request: %s", kind, replyName(reply))
				}
				if kind == "fresh" {
					if isAccept(reply) {
						st.freshAccepted.Add(1)
						acc = append(acc, fresh)
					} else {
						st.freshRejected.Add(1) // e.g. the step ended on the way
					}
				}
				if replyLost {
					st.replyLost.Add(1)
					for range 1 + r.IntN(2) {
						time.Sleep(delay(r))
						st.cachedRetx.Add(1)
						again, retx, err := n.exchange(req, c.timeout, 1)
						st.timeoutRtx.Add(int64(retx))
						switch {
						case err != nil:
							st.violate("retransmit of an answered %s request: no reply (%v)", kind, err)
						case isAccept(reply) && !isAccept(again):
							st.violate("retransmit of an accepted %s request got %s", kind, replyName(again))
						case !bytes.Equal(again, reply):
							st.violate("retransmit of a %s request: %s, not the bytes of the first reply (%s)", kind, replyName(again), replyName(reply))
						}
					}
				}
			}
		}()
	}

	// Junk from 127.0.0.2: signed requests with the right secret and a
	// user's current code, Status-Server, random bytes. None may be answered.
	readAll := func(conn *net.UDPConn, replies *atomic.Int64) {
		defer rd.Done()
		buf := make([]byte, 4097)
		for {
			if _, _, err := conn.ReadFromUDP(buf); err != nil {
				return // closed at the end
			}
			replies.Add(1)
		}
	}
	rd.Add(1)
	go readAll(junk.conn, &st.junkReplies)
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(seed, 1000))
		for !stopped() {
			time.Sleep(time.Duration(5+r.IntN(30)) * time.Millisecond)
			var b []byte
			switch r.IntN(3) {
			case 0:
				u := users[r.IntN(len(users))]
				b = junk.accessRequest(u.name, u.code(currentStep()))
			case 1:
				b = junk.statusServer()
			default:
				b = make([]byte, r.IntN(200))
				for i := range b {
					b[i] = byte(r.Uint32())
				}
			}
			if junk.send(b) == nil {
				st.junk.Add(1)
			}
		}
	}()

	// Malformed packets from the client's address; none may be answered.
	bad := mustNAS(t, "127.0.0.1:0", s.radius)
	rd.Add(1)
	go readAll(bad.conn, &st.badReplies)
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(seed, 2000))
		for !stopped() {
			time.Sleep(time.Duration(10+r.IntN(30)) * time.Millisecond)
			u := users[r.IntN(len(users))]
			b, why := malformedPacket(bad, r, u.name, u.code(currentStep()))
			if bad.send(b) == nil {
				st.badSent(why)
			}
		}
	}()

	// Samples of /metrics while the load runs.
	var (
		samples []soakSample
		warm    soakSample // the first sample after the warm-up
	)
	sampleNow := func() soakSample {
		t.Helper()
		before := time.Now()
		m, err := scrape(s.stats)
		if err != nil {
			t.Fatalf("scrape: %v\n%s", err, s.logs())
		}
		x := soakSample{
			at: before.Sub(start).Round(100 * time.Millisecond), rss: m["process_resident_memory_bytes"],
			heap: m["go_memstats_heap_inuse_bytes"], goroutines: m["go_goroutines"],
			cache: m["radotp_radius_reply_cache_entries"], inFlight: m["radotp_radius_in_flight"],
			queued: m["radotp_radius_queue_depth"],
			// An entry lives TTL from its request's arrival, and expired
			// entries go when a new request comes.
			bound: float64(sends.since(before.Add(-c.ttl - time.Second))),
		}
		if x.rss == 0 || x.goroutines == 0 {
			t.Fatalf("/metrics lacks process_resident_memory_bytes or go_goroutines")
		}
		return x
	}
	for time.Since(start) < c.load {
		select {
		case err := <-s.done:
			t.Fatalf("radotp exited during the soak: %v\n%s", err, s.logs())
		case <-time.After(c.every):
		}
		x := sampleNow()
		samples = append(samples, x)
		t.Logf("%6v: rss %5.1f MiB, heap %5.1f MiB, goroutines %3.0f, reply cache %5.0f (bound %5.0f), in flight %v, queued %v; %d requests",
			x.at, x.rss/(1<<20), x.heap/(1<<20), x.goroutines, x.cache, x.bound, x.inFlight, x.queued, st.sent.Load())
		if x.cache > x.bound {
			st.violate("at %v: %v reply cache entries, more than the %v requests sent within the TTL", x.at, x.cache, x.bound)
		}
		if warm.at == 0 && x.at >= c.warm {
			warm = x
		}
	}
	end := samples[len(samples)-1]
	stopLoad()
	wg.Wait()

	// The end: nothing in flight or queued, and after one TTL without
	// requests the cache holds only the one request that expires the rest.
	waitFor(t, "in flight and queue depth back to 0", func() bool {
		m, err := scrape(s.stats)
		return err == nil && m["radotp_radius_in_flight"] == 0 && m["radotp_radius_queue_depth"] == 0
	})
	time.Sleep(time.Until(sends.last().Add(c.ttl + 500*time.Millisecond)))
	probe := mustNAS(t, "127.0.0.1:0", s.radius)
	if r, _, err := probe.exchange(probe.statusServer(), c.timeout, 3); err != nil || !isAccept(r) {
		t.Fatalf("Status-Server after the load: %s (%v)", replyName(r), err)
	}
	st.status.Add(1)
	time.Sleep(200 * time.Millisecond) // late replies to junk would be counted by now
	junk.conn.Close()
	bad.conn.Close()
	rd.Wait()
	m, err := scrape(s.stats)
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("requests %d (fresh %d: %d accepted, %d rejected; wrong %d, replays %d, unknown users %d, Status-Server %d); lost: %d requests, %d replies (%d retransmits after a reply, %d after a timeout); junk %d, malformed %d",
		st.sent.Load(), st.fresh.Load(), st.freshAccepted.Load(), st.freshRejected.Load(), st.wrong.Load(), st.replays.Load(),
		st.unknown.Load(), st.status.Load(), st.reqLost.Load(), st.replyLost.Load(), st.cachedRetx.Load(), st.timeoutRtx.Load(),
		st.junk.Load(), st.bad.Load())
	if warm.at == 0 {
		t.Fatal("no sample after the warm-up")
	}
	t.Logf("after warm-up (%v): rss %.1f MiB, goroutines %.0f; at the end (%v): rss %.1f MiB, goroutines %.0f; reply cache at the end %v (after a TTL of quiet and one request: %v)",
		warm.at, warm.rss/(1<<20), warm.goroutines, end.at, end.rss/(1<<20), end.goroutines, end.cache, m["radotp_radius_reply_cache_entries"])
	var drops []string
	for k, v := range m {
		if strings.HasPrefix(k, "radotp_radius_dropped_total{") && v != 0 {
			drops = append(drops, fmt.Sprintf("%s %v", strings.TrimPrefix(k, "radotp_radius_dropped_total"), v))
		}
	}
	sort.Strings(drops)
	t.Logf("server: dropped %s; retransmits answered %v", strings.Join(drops, ", "), m["radotp_radius_retransmits_answered_total"])

	// The invariants.
	if r := st.report(); r != "" {
		t.Errorf("violations:\n%s", r)
	}
	if st.freshAccepted.Load() == 0 || st.rejects.Load() == 0 || st.cachedRetx.Load() == 0 || st.reqLost.Load() == 0 || st.junk.Load() == 0 || st.bad.Load() == 0 {
		t.Errorf("the load lacked a part: accepts %d, rejects %d, retransmits %d, lost requests %d, junk %d, malformed %d",
			st.freshAccepted.Load(), st.rejects.Load(), st.cachedRetx.Load(), st.reqLost.Load(), st.junk.Load(), st.bad.Load())
	}
	if n := st.junkReplies.Load(); n != 0 {
		t.Errorf("%d replies to junk from 127.0.0.2, which is no client", n)
	}
	if n := st.badReplies.Load(); n != 0 {
		t.Errorf("%d replies to malformed packets", n)
	}
	// One logical reply per request: the server answered each new request
	// once, and every other reply came from the reply cache.
	for _, k := range []struct {
		sample string
		want   int64
	}{
		{`radotp_radius_requests_total{code="access_accept"}`, st.accepts.Load()},
		{`radotp_radius_requests_total{code="access_reject"}`, st.rejects.Load()},
		{`radotp_radius_requests_total{code="status_server"}`, st.status.Load()},
	} {
		if got := int64(m[k.sample]); got != k.want {
			t.Errorf("%s = %d; the client got %d such replies to new requests", k.sample, got, k.want)
		}
	}
	if got, min, max := int64(m["radotp_radius_retransmits_answered_total"]), st.cachedRetx.Load(), st.cachedRetx.Load()+st.timeoutRtx.Load(); got < min || got > max {
		t.Errorf("retransmits answered from the cache = %d, want %d..%d", got, min, max)
	}
	// Each junk and malformed datagram dropped for its reason (loopback
	// may lose a few datagrams, never invent any).
	near := func(what string, got float64, sent int64) {
		if int64(got) > sent || int64(got) < sent-max(2, sent/100) {
			t.Errorf("%s = %v, but %d such datagrams were sent", what, got, sent)
		}
	}
	near(`dropped{reason="unknown_client"}`, m[`radotp_radius_dropped_total{reason="unknown_client"}`], st.junk.Load())
	st.badByReason.Range(func(k, v any) bool {
		near(`dropped{reason="`+k.(string)+`"}`, m[`radotp_radius_dropped_total{reason="`+k.(string)+`"}`], v.(*atomic.Int64).Load())
		return true
	})
	// Flat resources after warm-up.
	if growth := end.rss - warm.rss; growth > 64<<20 {
		t.Errorf("RSS grew by %.1f MiB after warm-up (%.1f → %.1f MiB)", growth/(1<<20), warm.rss/(1<<20), end.rss/(1<<20))
	}
	if end.goroutines > warm.goroutines+50 {
		t.Errorf("goroutines grew from %.0f after warm-up to %.0f", warm.goroutines, end.goroutines)
	}
	if got := m["radotp_radius_reply_cache_entries"]; got != 1 {
		t.Errorf("reply cache after a TTL without requests and one Status-Server: %v entries, want 1", got)
	}
	s.stop(t)
	if strings.Contains(s.logs(), "panic") {
		t.Errorf("radotp logged a panic:\n%s", s.logs())
	}
}

// malformedPacket builds a packet from the client that radotp must drop,
// and names the drop reason it must count.
func malformedPacket(n *nas, r *rand.Rand, user, code string) ([]byte, string) {
	// grow appends attributes to a signed request and signs it again.
	grow := func(b []byte, attrs ...byte) []byte {
		b = append(b, attrs...)
		b[2], b[3] = byte(len(b)>>8), byte(len(b))
		signMessageAuthenticator(b, n.secret)
		return b
	}
	switch r.IntN(8) {
	case 0: // shorter than a header (0..19 bytes)
		b := make([]byte, r.IntN(20))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b, "malformed"
	case 1: // Length beyond the datagram
		b := n.accessRequest(user, code)
		l := len(b) + 1 + r.IntN(100)
		b[2], b[3] = byte(l>>8), byte(l)
		return b, "malformed"
	case 2: // wrong Message-Authenticator
		b := n.accessRequest(user, code)
		b[maOffset(b)+r.IntN(16)] ^= 1 << r.IntN(8)
		return b, "bad_message_authenticator"
	case 3: // no Message-Authenticator
		return n.packet(radius.CodeAccessRequest, user, code, false), "missing_message_authenticator"
	case 4: // Accounting-Request: not served
		return n.packet(radius.CodeAccountingRequest, user, code, true), "malformed"
	case 5: // two User-Passwords
		return grow(n.accessRequest(user, code), append([]byte{2, 18}, make([]byte, 16)...)...), "malformed"
	case 6: // an attribute of length 1
		return grow(n.accessRequest(user, code), 26, 1), "malformed"
	default: // User-Password of 17 octets
		b := n.packet(radius.CodeAccessRequest, "", "", true) // NAS-Identifier and Message-Authenticator only
		b = grow(b, append([]byte{1, byte(2 + len(user))}, user...)...)
		return grow(b, append([]byte{2, 19}, make([]byte, 17)...)...), "malformed"
	}
}
