package firstfactor

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
	"layeh.com/radius/rfc2869"

	"github.com/radotp/radotp/verifier"
)

// The upstream here is a UDP server in the test that checks what radotp
// sends (Message-Authenticator, hidden password) and answers as told, so
// that broken replies can be tested. cmd/radotp tests the client against a
// real second radotp.

const upstreamSecret = "upstream-secret-0123456789"

type fakeUpstream struct {
	t    *testing.T
	conn net.PacketConn
	// answer returns the reply for a request, nil for none.
	answer func(n int, req *radius.Packet, raw []byte) []byte
	// before, if set, returns a datagram sent before the answer.
	before func(raw []byte) []byte

	mu       sync.Mutex
	requests [][]byte
}

func startUpstream(t *testing.T, answer func(n int, req *radius.Packet, raw []byte) []byte) *fakeUpstream {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &fakeUpstream{t: t, conn: c, answer: answer}
	done := make(chan struct{})
	t.Cleanup(func() { c.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			raw := append([]byte(nil), buf[:n]...)
			u.mu.Lock()
			u.requests = append(u.requests, raw)
			count := len(u.requests)
			u.mu.Unlock()
			if why := checkRequest(raw); why != "" {
				t.Errorf("upstream got a bad request: %s", why)
				continue
			}
			p, err := radius.Parse(raw, []byte(upstreamSecret))
			if err != nil {
				t.Errorf("upstream: %v", err)
				continue
			}
			u.mu.Lock()
			before := u.before
			u.mu.Unlock()
			if before != nil {
				c.WriteTo(before(raw), from)
			}
			if reply := answer(count, p, raw); reply != nil {
				c.WriteTo(reply, from)
			}
		}
	}()
	return u
}

func (u *fakeUpstream) addr() string { return u.conn.LocalAddr().String() }

func (u *fakeUpstream) got() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([][]byte(nil), u.requests...)
}

// checkRequest checks an Access-Request the way a strict server does: a
// Message-Authenticator first, and right.
func checkRequest(b []byte) string {
	if len(b) < 38 || b[0] != byte(radius.CodeAccessRequest) {
		return "not an Access-Request"
	}
	if b[20] != byte(rfc2869.MessageAuthenticator_Type) || b[21] != 18 {
		return "Message-Authenticator is not the first attribute"
	}
	c := append([]byte(nil), b...)
	clear(c[22:38])
	mac := hmac.New(md5.New, []byte(upstreamSecret))
	mac.Write(c)
	if !hmac.Equal(mac.Sum(nil), b[22:38]) {
		return "wrong Message-Authenticator"
	}
	return ""
}

// replyOpts break a reply in chosen ways.
type replyOpts struct {
	secret    string // for the authenticators; default upstreamSecret
	noMA      bool   // leave out the Message-Authenticator
	badMA     bool   // a wrong Message-Authenticator
	id        int    // add to the identifier
	extraAttr []byte // raw attributes appended
}

// reply encodes a reply to req as a RADIUS server does: the
// Message-Authenticator over the reply with the request's authenticator,
// then the Response Authenticator.
func reply(code radius.Code, req []byte, o replyOpts) []byte {
	secret := []byte(upstreamSecret)
	if o.secret != "" {
		secret = []byte(o.secret)
	}
	b := make([]byte, 20, 64)
	b[0], b[1] = byte(code), req[1]+byte(o.id)
	copy(b[4:20], req[4:20])
	if !o.noMA {
		b = append(b, byte(rfc2869.MessageAuthenticator_Type), 18)
		b = append(b, make([]byte, 16)...)
	}
	b = append(b, o.extraAttr...)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if !o.noMA {
		mac := hmac.New(md5.New, secret)
		mac.Write(b)
		mac.Sum(b[22:22])
		if o.badMA {
			b[22] ^= 1
		}
	}
	h := md5.New()
	h.Write(b)
	h.Write(secret)
	h.Sum(b[4:4])
	return b
}

// byPassword accepts the password "right-pw" and rejects others.
func byPassword(_ int, p *radius.Packet, raw []byte) []byte {
	if rfc2865.UserPassword_GetString(p) == "right-pw" {
		return reply(radius.CodeAccessAccept, raw, replyOpts{})
	}
	return reply(radius.CodeAccessReject, raw, replyOpts{})
}

func newRadius(t *testing.T, o RadiusOptions) *Radius {
	t.Helper()
	if o.Secret == nil {
		o.Secret = []byte(upstreamSecret)
	}
	if o.Timeout == 0 {
		o.Timeout = 200 * time.Millisecond
	}
	o.Logger = testLogger(t)
	r, err := NewRadius(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func check(t *testing.T, r *Radius, user, pw string) (verifier.FirstFactorResult, error) {
	t.Helper()
	return r.Check(context.Background(), user, nil, []byte(pw))
}

func TestRadius(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	up := startUpstream(t, func(n int, p *radius.Packet, raw []byte) []byte {
		mu.Lock()
		seen["user"] = rfc2865.UserName_GetString(p)
		seen["nas"] = rfc2865.NASIdentifier_GetString(p)
		seen["pw"] = rfc2865.UserPassword_GetString(p)
		mu.Unlock()
		return byPassword(n, p, raw)
	})
	r := newRadius(t, RadiusOptions{Servers: []string{up.addr()}})
	expect(t, r, []checkCase{
		{"Accept", "alice", "right-pw", ok},
		{"Reject", "alice", "wrong-pw", bad},
		{"EmptyPassword", "alice", "", bad},
		{"TooLongPassword", "alice", strings.Repeat("x", 129), bad},
		{"EmptyName", "", "right-pw", bad},
	})
	long := strings.Repeat("p", 128) // the longest, hidden in 8 blocks
	if _, err := check(t, r, "ünïcode", long); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["user"] != "ünïcode" || seen["nas"] != "radotp" || seen["pw"] != long {
		t.Errorf("upstream saw user %q, NAS-Identifier %q, password of %d bytes", seen["user"], seen["nas"], len(seen["pw"]))
	}
	if n := len(up.got()); n != 3 {
		t.Errorf("upstream got %d requests; the empty/long password and empty name must not be sent", n)
	}
}

func TestRadiusRetransmit(t *testing.T) {
	up := startUpstream(t, func(n int, p *radius.Packet, raw []byte) []byte {
		if n == 1 {
			return nil // lost
		}
		return byPassword(n, p, raw)
	})
	r := newRadius(t, RadiusOptions{Servers: []string{up.addr()}, Retries: 1})
	expect(t, r, []checkCase{{"AnsweredSecondTime", "alice", "right-pw", ok}})
	got := up.got()
	if len(got) != 2 || !bytes.Equal(got[0], got[1]) {
		t.Fatalf("retransmission is not byte-identical (same ID and authenticator): %d requests", len(got))
	}
}

func TestRadiusBadReplies(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply func(raw []byte) []byte
	}{
		{"WrongSecret", func(raw []byte) []byte { return reply(radius.CodeAccessAccept, raw, replyOpts{secret: "other-secret"}) }},
		{"NoMessageAuthenticator", func(raw []byte) []byte { return reply(radius.CodeAccessAccept, raw, replyOpts{noMA: true}) }},
		{"BadMessageAuthenticator", func(raw []byte) []byte { return reply(radius.CodeAccessAccept, raw, replyOpts{badMA: true}) }},
		{"OtherID", func(raw []byte) []byte { return reply(radius.CodeAccessAccept, raw, replyOpts{id: 1}) }},
		{"NotAReply", func(raw []byte) []byte { return reply(radius.CodeAccessRequest, raw, replyOpts{}) }},
		{"Short", func(raw []byte) []byte { return reply(radius.CodeAccessAccept, raw, replyOpts{})[:19] }},
		{"MalformedAttribute", func(raw []byte) []byte {
			return reply(radius.CodeAccessAccept, raw, replyOpts{extraAttr: []byte{18, 1}})
		}},
		{"TwoMessageAuthenticators", func(raw []byte) []byte {
			return reply(radius.CodeAccessAccept, raw, replyOpts{extraAttr: append([]byte{80, 18}, make([]byte, 16)...)})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := startUpstream(t, func(_ int, _ *radius.Packet, raw []byte) []byte { return tc.reply(raw) })
			r := newRadius(t, RadiusOptions{Servers: []string{up.addr()}, Timeout: 100 * time.Millisecond, Retries: 1})
			res, err := check(t, r, "alice", "right-pw")
			if !errors.Is(err, verifier.ErrFirstFactorUnavailable) {
				t.Fatalf("a forged or broken Accept: %+v, %v; want it ignored (unavailable)", res, err)
			}
			if n := len(up.got()); n != 2 {
				t.Errorf("%d requests; want 2 (the reply was ignored, the request resent)", n)
			}
		})
	}

	t.Run("ForgedAcceptThenReject", func(t *testing.T) {
		// A forged Accept arrives first; the authentic Reject after it wins.
		up := startUpstream(t, func(_ int, _ *radius.Packet, raw []byte) []byte {
			return reply(radius.CodeAccessReject, raw, replyOpts{})
		})
		up.mu.Lock()
		up.before = func(raw []byte) []byte { return reply(radius.CodeAccessAccept, raw, replyOpts{secret: "forger"}) }
		up.mu.Unlock()
		expect(t, newRadius(t, RadiusOptions{Servers: []string{up.addr()}}), []checkCase{{"Reject", "alice", "right-pw", bad}})
	})

	t.Run("MissingMessageAuthenticatorAllowed", func(t *testing.T) {
		up := startUpstream(t, func(_ int, p *radius.Packet, raw []byte) []byte {
			code := radius.CodeAccessReject
			if rfc2865.UserPassword_GetString(p) == "right-pw" {
				code = radius.CodeAccessAccept
			}
			return reply(code, raw, replyOpts{noMA: true})
		})
		r := newRadius(t, RadiusOptions{Servers: []string{up.addr()}, AllowMissingMessageAuthenticator: true})
		expect(t, r, []checkCase{{"Accept", "alice", "right-pw", ok}, {"Reject", "alice", "x", bad}})
	})

	t.Run("Challenge", func(t *testing.T) {
		up := startUpstream(t, func(_ int, _ *radius.Packet, raw []byte) []byte {
			return reply(radius.CodeAccessChallenge, raw, replyOpts{})
		})
		expect(t, newRadius(t, RadiusOptions{Servers: []string{up.addr()}}), []checkCase{{"IsReject", "alice", "right-pw", bad}})
	})
}

// udpBlackhole reads requests and never answers.
func udpBlackhole(t *testing.T) string {
	return startUpstream(t, func(int, *radius.Packet, []byte) []byte { return nil }).addr()
}

// closedUDPPort returns a loopback UDP address where nothing listens.
func closedUDPPort(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := c.LocalAddr().String()
	c.Close()
	return addr
}

func TestRadiusUnavailable(t *testing.T) {
	t.Run("PortUnreachable", func(t *testing.T) {
		r := newRadius(t, RadiusOptions{Servers: []string{closedUDPPort(t)}, Timeout: 5 * time.Second})
		wantUnavailable(t, r, time.Second) // ICMP port unreachable: no need to wait
	})
	t.Run("NoAnswer", func(t *testing.T) {
		r := newRadius(t, RadiusOptions{Servers: []string{udpBlackhole(t)}, Timeout: 100 * time.Millisecond, Retries: 2})
		start := time.Now()
		err := wantUnavailable(t, r, time.Second)
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Errorf("gave up after %v; want 3 tries of 100ms", d)
		}
		if !strings.Contains(err.Error(), "no valid reply after 3 tries") {
			t.Errorf("error: %v", err)
		}
	})
	t.Run("WrongPasswordWhileDown", func(t *testing.T) {
		r := newRadius(t, RadiusOptions{Servers: []string{closedUDPPort(t)}})
		if _, err := check(t, r, "alice", "wrong"); !errors.Is(err, verifier.ErrFirstFactorUnavailable) {
			t.Fatalf("%v: a down upstream is never a wrong password", err)
		}
	})
	t.Run("ContextEnds", func(t *testing.T) {
		r := newRadius(t, RadiusOptions{Servers: []string{udpBlackhole(t)}, Timeout: 10 * time.Second})
		ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := r.Check(ctx, "alice", nil, []byte("right-pw"))
		if !errors.Is(err, verifier.ErrFirstFactorUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v; want ErrFirstFactorUnavailable and DeadlineExceeded", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v after a 150ms context", d)
		}
	})
}

func TestRadiusFailover(t *testing.T) {
	live := startUpstream(t, byPassword)
	hole := udpBlackhole(t)
	r := newRadius(t, RadiusOptions{Servers: []string{closedUDPPort(t), hole, live.addr()}, Timeout: 150 * time.Millisecond, Retries: 1})
	start := time.Now()
	expect(t, r, []checkCase{{"ViaThird", "alice", "right-pw", ok}})
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("first request took %v; the silent server should have cost 2 × 150ms", d)
	}
	// The two dead servers are tried last now.
	start = time.Now()
	expect(t, r, []checkCase{{"Again", "alice", "wrong", bad}})
	if d := time.Since(start); d > 250*time.Millisecond { // the silent server first would cost 300ms
		t.Errorf("second request took %v: dead servers tried first", d)
	}
	// When every server has failed, all are tried again, in order.
	r2 := newRadius(t, RadiusOptions{Servers: []string{closedUDPPort(t), live.addr()}})
	r2.servers.failed(0)
	r2.servers.failed(1)
	expect(t, r2, []checkCase{{"AllMarkedDown", "alice", "right-pw", ok}})
}

func TestNewRadiusErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    RadiusOptions
		want string
	}{
		{"NoServers", RadiusOptions{Secret: []byte("s")}, "no servers"},
		{"NoPort", RadiusOptions{Servers: []string{"192.0.2.1"}, Secret: []byte("s")}, "missing port"},
		{"NoSecret", RadiusOptions{Servers: []string{"192.0.2.1:1812"}}, "no secret"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewRadius(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewRadius: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestNone(t *testing.T) {
	expect(t, None{}, []checkCase{{"Anything", "anyone", "", ok}})
}
