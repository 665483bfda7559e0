package radius

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/radotp/radotp/verifier"
)

// blockingVerifier accepts everyone, but only once release is closed (or ctx
// is done: then it returns ctx.Err()).
type blockingVerifier struct {
	entered chan struct{}
	release chan struct{}
	calls   atomic.Int64
}

func newBlockingVerifier() *blockingVerifier {
	return &blockingVerifier{entered: make(chan struct{}, 100), release: make(chan struct{})}
}

func (v *blockingVerifier) Verify(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
	v.calls.Add(1)
	v.entered <- struct{}{}
	select {
	case <-v.release:
		return verifier.Decision{Outcome: verifier.Accept}, nil
	case <-ctx.Done():
		return verifier.Decision{}, ctx.Err()
	}
}

func (v *blockingVerifier) waitEntered(t *testing.T) {
	t.Helper()
	select {
	case <-v.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("verifier not called")
	}
}

func TestServeAccessRequest(t *testing.T) {
	v := &testVerifier{}
	s, rec := newTestServer(t, v)
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)

	req := accessRequest(t, localSecret, 1, "alice", alicePassword)
	c.send(req)
	reply := c.recv(5 * time.Second)
	if reply == nil {
		t.Fatal("no reply")
	}
	checkReply(t, reply, req, localSecret)
	if reply[0] != codeAccessAccept {
		t.Fatalf("code %d; want Access-Accept", reply[0])
	}
	req = accessRequest(t, localSecret, 2, "alice", "wrong")
	c.send(req)
	if reply = c.recv(5 * time.Second); reply == nil || reply[0] != codeAccessReject {
		t.Fatalf("reply %v; want Access-Reject", reply)
	}
	checkReply(t, reply, req, localSecret)
	eventually(t, "two answers", func() bool { _, a, _ := rec.snapshot(); return len(a) == 2 })
	if _, answers, _ := rec.snapshot(); answers[0] != AnswerAccessAccept || answers[1] != AnswerAccessReject {
		t.Fatalf("answers %q", answers)
	}
}

func TestRetransmit(t *testing.T) {
	v := &testVerifier{}
	s, rec := newTestServer(t, v)
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)

	req := accessRequest(t, localSecret, 9, "alice", alicePassword)
	c.send(req)
	first := c.recv(5 * time.Second)
	c.send(req)
	second := c.recv(5 * time.Second)
	if first == nil || !bytes.Equal(first, second) {
		t.Fatalf("retransmission answered differently:\n% x\n% x", first, second)
	}
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("verifier called %d times; want 1", n)
	}
	eventually(t, "Resent", func() bool { _, _, r := rec.snapshot(); return r == 1 })
	if _, answers, _ := rec.snapshot(); len(answers) != 1 {
		t.Fatalf("answers %q; want one (the resend counts as Resent only)", answers)
	}

	// Same content, new Identifier: a new request, verified again.
	again := bytes.Clone(req)
	again[1]++
	again = resign(t, again, localSecret)
	c.send(again)
	if reply := c.recv(5 * time.Second); reply == nil {
		t.Fatal("no reply to the new Identifier")
	}
	if n := v.calls.Load(); n != 2 {
		t.Fatalf("verifier called %d times; want 2", n)
	}

	// Same packet from another port: another request too.
	c2 := newUDPClient(t, addr)
	c2.send(req)
	if reply := c2.recv(5 * time.Second); reply == nil {
		t.Fatal("no reply from the second port")
	}
	if n := v.calls.Load(); n != 3 {
		t.Fatalf("verifier called %d times; want 3", n)
	}
}

// resign recomputes the Message-Authenticator of a test request whose last
// attribute is the Message-Authenticator.
func resign(t *testing.T, b, secret []byte) []byte {
	t.Helper()
	off := len(b) - 16
	if b[off-2] != 80 {
		t.Fatal("last attribute is not a Message-Authenticator")
	}
	copy(b[off:], messageAuthenticatorForTest(b, secret, off))
	return b
}

func TestDuplicateInFlight(t *testing.T) {
	v := newBlockingVerifier()
	s, rec := newTestServer(t, v)
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)

	req := accessRequest(t, localSecret, 1, "alice", "pw")
	c.send(req)
	v.waitEntered(t)
	c.send(req)
	eventually(t, "duplicate_in_flight", func() bool { return rec.count(DropDuplicateInFlight) == 1 })
	close(v.release)
	reply := c.recv(5 * time.Second)
	if reply == nil {
		t.Fatal("no reply")
	}
	checkReply(t, reply, req, localSecret)
	if extra := c.recv(100 * time.Millisecond); extra != nil {
		t.Fatal("the dropped duplicate got a reply")
	}
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("verifier called %d times", n)
	}
}

func TestStatusServer(t *testing.T) {
	v := &testVerifier{}
	s, rec := newTestServer(t, v)
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)

	req := packet{code: 12, id: 3, auth: authFor(3, 3), ma: true, attrs: []attr{{typ: 33, val: []byte("px")}}}.encode(localSecret)
	c.send(req)
	reply := c.recv(5 * time.Second)
	if reply == nil {
		t.Fatal("no reply to Status-Server")
	}
	attrs := checkReply(t, reply, req, localSecret)
	if reply[0] != codeAccessAccept || len(attrs) != 2 || attrs[1].typ != 33 {
		t.Fatalf("code %d, attributes %v; want Access-Accept with Message-Authenticator and Proxy-State", reply[0], attrs)
	}
	eventually(t, "status_server answer", func() bool {
		_, a, _ := rec.snapshot()
		return len(a) == 1 && a[0] == AnswerStatusServer
	})

	noMA := packet{code: 12, id: 4, auth: authFor(4, 3)}.encode(localSecret)
	c.send(noMA)
	if reply := c.recv(200 * time.Millisecond); reply != nil {
		t.Fatal("Status-Server without Message-Authenticator answered")
	}
	eventually(t, "missing_message_authenticator", func() bool { return rec.count(DropMissingMessageAuthenticator) == 1 })
	if v.calls.Load() != 0 {
		t.Fatal("verifier called for Status-Server")
	}
}

func TestVerifierErrorRetried(t *testing.T) {
	var calls atomic.Int64
	s, rec := newTestServer(t, VerifierFunc(func(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
		if calls.Add(1) == 1 {
			return verifier.Decision{Outcome: verifier.Accept}, errors.New("database is locked")
		}
		return verifier.Decision{Outcome: verifier.Accept}, nil
	}))
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)

	req := accessRequest(t, localSecret, 5, "alice", "pw")
	c.send(req)
	if reply := c.recv(300 * time.Millisecond); reply != nil {
		t.Fatal("a verifier error was answered")
	}
	eventually(t, "storage_error", func() bool { return rec.count(DropStorageError) == 1 })
	c.send(req) // the NAS retransmits
	reply := c.recv(5 * time.Second)
	if reply == nil {
		t.Fatal("retransmission after an error not answered")
	}
	checkReply(t, reply, req, localSecret)
	if reply[0] != codeAccessAccept || calls.Load() != 2 {
		t.Fatalf("code %d after %d calls", reply[0], calls.Load())
	}
	if _, _, r := rec.snapshot(); r != 0 {
		t.Fatal("the retransmission was served from the cache")
	}
}

func TestVerifierTimeout(t *testing.T) {
	v := newBlockingVerifier()
	s, rec := newTestServer(t, v)
	s.RequestTimeout = 50 * time.Millisecond
	reply, drop := s.handle(context.Background(), accessRequest(t, strictSecret, 1, "alice", "pw"), strictSrc)
	if reply != nil || drop != DropStorageError || rec.count(DropStorageError) != 1 {
		t.Fatalf("reply %v drop %q; want storage_error", reply != nil, drop)
	}
}

// TestQueueFull: with the worker and the queue taken, the read loop stops
// reading; the flood waits in the socket's receive buffer, and what the
// kernel drops from it is counted as overload. No request goes unaccounted:
// each is answered or counted as dropped, and nothing grows.
func TestQueueFull(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the kernel's drop counter (SO_RXQ_OVFL) is Linux only")
	}
	v := newBlockingVerifier()
	go func() { // entered is buffered; the flood must not block on it
		for range v.entered {
		}
	}()
	s, rec := newTestServer(t, v)
	s.Workers, s.QueueSize = 1, 1
	addr, _ := udpServerWith(t, s, func(c *net.UDPConn) {
		if err := c.SetReadBuffer(1); err != nil { // the kernel's minimum: a few datagrams
			t.Fatal(err)
		}
	})
	c := newUDPClient(t, addr)

	before := runtime.NumGoroutine()
	const flood = 200
	for i := range flood {
		c.send(accessRequest(t, localSecret, byte(1+i), "alice", "pw"))
	}
	eventually(t, "the only worker busy", func() bool { return v.calls.Load() == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("%d Verify calls with one blocked worker", n)
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Fatalf("goroutines grew from %d to %d under overload", before, after)
	}

	close(v.release)
	answered := map[byte]bool{}
	for {
		reply := c.recv(300 * time.Millisecond)
		if reply == nil {
			break
		}
		answered[reply[1]] = true
	}
	// The kernel tells the drop count with the next datagram it delivers.
	last := accessRequest(t, localSecret, 255, "alice", "pw")
	c.send(last)
	if reply := c.recv(5 * time.Second); reply == nil || reply[1] != 255 {
		t.Fatalf("a request after the flood not answered: %v", reply)
	}
	dropped := rec.count(DropOverload)
	t.Logf("%d answered, %d dropped by the kernel", len(answered), dropped)
	if k := socketDrops(t, addr.Port); k != dropped {
		t.Fatalf("the kernel dropped %d datagrams (/proc/net/udp), the metrics count %d", k, dropped)
	}
	if len(answered) == 0 || dropped == 0 || len(answered)+dropped != flood {
		t.Fatalf("%d answered + %d counted as overload; want some of each, %d in all", len(answered), dropped, flood)
	}

	// A dropped request was never seen: its retransmission is decided.
	for id := byte(1); id <= flood; id++ {
		if !answered[id] {
			c.send(accessRequest(t, localSecret, id, "alice", "pw"))
			if reply := c.recv(5 * time.Second); reply == nil || reply[1] != id {
				t.Fatalf("retransmission of a dropped request not answered: %v", reply)
			}
			break
		}
	}
	if _, _, r := rec.snapshot(); r != 0 {
		t.Fatal("answered from the cache")
	}
}

// TestCacheExpiresInBackground: a serving server drops expired reply cache
// entries without new requests, so that the first request after a quiet
// spell does not pay for all of them.
func TestCacheExpiresInBackground(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_700_000_000, 0)
	s, _ := newTestServer(t, &testVerifier{})
	s.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s.init() // here, so that reading s.cache below is ordered after it
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)
	for id := range byte(5) {
		c.send(accessRequest(t, localSecret, id, "alice", alicePassword))
		if c.recv(5*time.Second) == nil {
			t.Fatal("no reply")
		}
	}
	live := func() int {
		s.cache.mu.Lock()
		defer s.cache.mu.Unlock()
		return len(s.cache.m)
	}
	if n := live(); n != 5 {
		t.Fatalf("%d entries cached; want 5", n)
	}
	mu.Lock()
	now = now.Add(DefaultReplyCacheTTL)
	mu.Unlock()
	eventually(t, "expired entries dropped without a request", func() bool { return live() == 0 })
}

func TestReplyCacheFullDropsNew(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s, rec := newTestServer(t, &testVerifier{})
	s.ReplyCacheSize = 2
	s.Now = func() time.Time { return now }
	ctx := context.Background()
	reqs := [][]byte{
		accessRequest(t, strictSecret, 1, "alice", alicePassword),
		accessRequest(t, strictSecret, 2, "alice", alicePassword),
		accessRequest(t, strictSecret, 3, "alice", alicePassword),
	}
	r1, _ := s.handle(ctx, reqs[0], strictSrc)
	s.handle(ctx, reqs[1], strictSrc)
	if _, drop := s.handle(ctx, reqs[2], strictSrc); drop != DropOverload {
		t.Fatalf("third request: drop %q; want overload", drop)
	}
	// The cached Accept is still resent, not evicted.
	if again, _ := s.handle(ctx, reqs[0], strictSrc); !bytes.Equal(again, r1) {
		t.Fatal("cached reply lost")
	}
	now = now.Add(DefaultReplyCacheTTL)
	if reply, drop := s.handle(ctx, reqs[2], strictSrc); reply == nil {
		t.Fatalf("after expiry: dropped %s", drop)
	}
	if _, _, r := rec.snapshot(); r != 1 {
		t.Fatalf("resent %d; want 1", r)
	}
}

func TestShutdownAnswersInFlight(t *testing.T) {
	v := newBlockingVerifier()
	s, _ := newTestServer(t, v)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(conn) }()
	c := newUDPClient(t, conn.LocalAddr().(*net.UDPAddr))

	req := accessRequest(t, localSecret, 1, "alice", "pw")
	c.send(req)
	v.waitEntered(t)

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with a request in flight", err)
	case err := <-served:
		t.Fatalf("Serve returned %v with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	// New packets are no longer read.
	c.send(accessRequest(t, localSecret, 2, "alice", "pw"))
	time.Sleep(20 * time.Millisecond)

	close(v.release)
	reply := c.recv(5 * time.Second)
	if reply == nil {
		t.Fatal("the in-flight request got no reply")
	}
	checkReply(t, reply, req, localSecret)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if n := v.calls.Load(); n != 1 {
		t.Fatalf("verifier called %d times; a packet sent during Shutdown was read", n)
	}
	if err := s.Serve(conn); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestShutdownGivesUp(t *testing.T) {
	v := newBlockingVerifier() // never released: returns when its ctx is cancelled
	s, rec := newTestServer(t, v)
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(conn) }()
	c := newUDPClient(t, conn.LocalAddr().(*net.UDPAddr))
	c.send(accessRequest(t, localSecret, 1, "alice", "pw"))
	v.waitEntered(t)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v; want deadline exceeded", err)
	}
	select {
	case err := <-served:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	eventually(t, "the cancelled request dropped", func() bool { return rec.count(DropStorageError) == 1 })
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestServeErrors(t *testing.T) {
	conn := func() net.PacketConn {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := (&Server{}).Serve(conn()); err == nil || !strings.HasPrefix(err.Error(), "radius: ") {
		t.Errorf("Serve without Verifier: %v", err)
	}
	if err := (&Server{Verifier: &testVerifier{}}).Serve(conn()); err == nil || !strings.Contains(err.Error(), "SetClients") {
		t.Errorf("Serve without clients: %v", err)
	}
	s := &Server{}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown of a server never started: %v", err)
	}
	if err := s.ListenAndServe("256.0.0.1:0"); err == nil || !strings.HasPrefix(err.Error(), "radius: ") {
		t.Errorf("ListenAndServe on a bad address: %v", err)
	}
}

func TestOversizeDatagram(t *testing.T) {
	s, rec := newTestServer(t, &testVerifier{})
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)

	// 5000 bytes, Length says 5000: malformed.
	big := append(accessRequest(t, localSecret, 1, "alice", alicePassword), make([]byte, 5000)...)[:5000]
	big[2], big[3] = 5000>>8, 5000&0xff
	c.send(big)
	eventually(t, "malformed", func() bool { return rec.count(DropMalformed) == 1 })

	// 5000 bytes, a valid Length: the rest is padding.
	req := accessRequest(t, localSecret, 2, "alice", alicePassword)
	c.send(append(bytes.Clone(req), make([]byte, 5000-len(req))...))
	reply := c.recv(5 * time.Second)
	if reply == nil {
		t.Fatal("padded datagram not answered")
	}
	checkReply(t, reply, req, localSecret)
}

func TestSetClients(t *testing.T) {
	s, rec := newTestServer(t, &testVerifier{})
	ctx := context.Background()
	req := accessRequest(t, strictSecret, 1, "alice", alicePassword)
	if reply, _ := s.handle(ctx, req, strictSrc); reply == nil {
		t.Fatal("not served")
	}
	cs, err := NewClients([]Client{client("other", "192.0.2.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	s.SetClients(cs)
	req = accessRequest(t, strictSecret, 2, "alice", alicePassword)
	if _, drop := s.handle(ctx, req, strictSrc); drop != DropUnknownClient {
		t.Fatalf("after reload: %q", drop)
	}
	s.SetClients(nil)
	if _, drop := s.handle(ctx, req, strictSrc); drop != DropUnknownClient || rec.count(DropUnknownClient) != 2 {
		t.Fatalf("with nil clients: %q", drop)
	}
}

// syncBuffer is an io.Writer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.b.String()), "\n") {
		if l == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		out = append(out, m)
	}
	return out
}

func TestLogs(t *testing.T) {
	var buf syncBuffer
	now := time.Unix(1_700_000_000, 0)
	s, _ := newTestServer(t, &testVerifier{})
	s.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s.Now = func() time.Time { return now }
	ctx := context.Background()

	s.handle(ctx, accessRequest(t, strictSecret, 1, "alice", alicePassword+"123456"), strictSrc)
	s.handle(ctx, accessRequest(t, strictSecret, 2, "alice", alicePassword), strictSrc)
	lines := buf.lines(t)
	if len(lines) != 2 {
		t.Fatalf("%d log lines; want one per decision: %v", len(lines), lines)
	}
	for i, want := range []struct{ outcome, reason string }{{"reject", "bad_password"}, {"accept", ""}} {
		l := lines[i]
		if l["level"] != "INFO" || l["user"] != "alice" || l["client"] != "strict" || l["source"] != strictSrc.String() ||
			l["outcome"] != want.outcome || l["reason"] != want.reason || l["duration"] == nil {
			t.Errorf("decision line %d: %v", i, l)
		}
	}

	// Bad packets: one Warn line per reason per 10 s, then a count.
	for i := range 50 {
		s.handle(ctx, []byte{byte(i)}, strictSrc)
	}
	now = now.Add(11 * time.Second)
	s.handle(ctx, []byte{1}, strictSrc)
	lines = buf.lines(t)[2:]
	if len(lines) != 2 || lines[0]["reason"] != DropMalformed || lines[0]["level"] != "WARN" || lines[1]["suppressed"] != float64(49) {
		t.Fatalf("rate-limited lines: %v", lines)
	}

	out := buf.b.String()
	for _, secret := range []string{alicePassword, string(strictSecret)} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %q:\n%s", secret, out)
		}
	}
}

// A first-factor backend that does not answer is not a storage fault: the
// drop is counted apart so that an admin sees the directory is down.
func TestFirstFactorUnavailableDropped(t *testing.T) {
	v := VerifierFunc(func(context.Context, verifier.Attempt) (verifier.Decision, error) {
		return verifier.Decision{}, fmt.Errorf("ldap: dial: %w", verifier.ErrFirstFactorUnavailable)
	})
	s, rec := newTestServer(t, v)
	reply, drop := s.handle(context.Background(), accessRequest(t, strictSecret, 1, "alice", "pw"), strictSrc)
	if reply != nil || drop != DropFirstFactorUnavailable || rec.count(DropFirstFactorUnavailable) != 1 || rec.count(DropStorageError) != 0 {
		t.Fatalf("reply %v drop %q; want first_factor_unavailable", reply != nil, drop)
	}
}

// A retransmitted first step of a challenge gets the same Challenge (same
// State) from the reply cache, not a new one.
func TestRetransmitChallenge(t *testing.T) {
	var calls atomic.Int32
	v := VerifierFunc(func(context.Context, verifier.Attempt) (verifier.Decision, error) {
		n := calls.Add(1)
		return verifier.Decision{Outcome: verifier.Challenge, Prompt: "Code?", State: []byte(fmt.Sprintf("state-%d", n))}, nil
	})
	s, _ := newTestServer(t, v)
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)
	req := accessRequest(t, localSecret, 21, "alice", "pw")
	c.send(req)
	first := c.recv(5 * time.Second)
	c.send(req)
	second := c.recv(5 * time.Second)
	if first == nil || first[0] != codeAccessChallenge || !bytes.Equal(first, second) || calls.Load() != 1 {
		t.Fatalf("retransmitted challenge: calls %d\n% x\n% x", calls.Load(), first, second)
	}
}

func TestLoadGauges(t *testing.T) {
	v := newBlockingVerifier()
	s, _ := newTestServer(t, v)
	s.Workers, s.QueueSize = 1, 4
	addr, _ := udpServer(t, s)
	c := newUDPClient(t, addr)
	for i := range 3 {
		c.send(accessRequest(t, localSecret, byte(40+i), "alice", "pw"))
	}
	eventually(t, "one deciding, two queued, three cached", func() bool {
		f, q, n := s.Load()
		return f == 1 && q == 2 && n == 3
	})
	close(v.release)
	eventually(t, "all answered", func() bool { f, q, _ := s.Load(); return f == 0 && q == 0 })
}

// socketDrops returns the kernel's drop counter of the UDP socket bound to
// 127.0.0.1:port, from /proc/net/udp.
func socketDrops(t *testing.T, port int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 13 && f[1] == local {
			n, err := strconv.Atoi(f[len(f)-1])
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no socket on %s in /proc/net/udp", local)
	return 0
}
