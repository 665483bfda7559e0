package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"layeh.com/radius"

	"github.com/radotp/radotp/verifier"
)

// The test clients. Each has its own secret, so a reply signed with the wrong
// one fails the checks.
var (
	strictSecret = []byte("strict-secret")
	laxSecret    = []byte("lax-secret")
	localSecret  = []byte("local-secret")

	strictSrc  = netip.MustParseAddrPort("10.1.2.3:40000")  // client "strict": MA required
	laxSrc     = netip.MustParseAddrPort("10.9.0.1:40000")  // client "lax": MA optional
	unknownSrc = netip.MustParseAddrPort("192.0.2.1:40000") // no client
)

func testClients(t testing.TB) *Clients {
	t.Helper()
	cs, err := NewClients([]Client{
		{
			Client:                      verifier.Client{Name: "strict", Mode: verifier.ModeAppend},
			Prefixes:                    []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
			Secret:                      strictSecret,
			RequireMessageAuthenticator: true,
		},
		{
			Client:   verifier.Client{Name: "lax", Mode: verifier.ModeOTP},
			Prefixes: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")},
			Secret:   laxSecret,
		},
		{
			Client:                      verifier.Client{Name: "local", Mode: verifier.ModeAppend},
			Prefixes:                    []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")},
			Secret:                      localSecret,
			RequireMessageAuthenticator: true,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func secretFor(src netip.AddrPort) []byte {
	a := src.Addr().Unmap()
	switch {
	case netip.MustParsePrefix("10.9.0.0/16").Contains(a):
		return laxSecret
	case netip.MustParsePrefix("10.0.0.0/8").Contains(a):
		return strictSecret
	}
	return localSecret
}

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu      sync.Mutex
	drops   []string
	answers []string
	resent  int
}

func (r *recorder) Dropped(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.drops = append(r.drops, reason)
}

func (r *recorder) Answered(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answers = append(r.answers, kind)
}

func (r *recorder) Resent() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resent++
}

func (r *recorder) snapshot() (drops, answers []string, resent int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.drops), slices.Clone(r.answers), r.resent
}

func (r *recorder) count(reason string) int {
	drops, _, _ := r.snapshot()
	n := 0
	for _, d := range drops {
		if d == reason {
			n++
		}
	}
	return n
}

// testVerifier accepts alice with the right password, challenges carol,
// rejects everyone else, and counts its calls.
type testVerifier struct {
	calls atomic.Int64
}

const alicePassword = "correct horse"

func (v *testVerifier) Verify(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
	v.calls.Add(1)
	switch {
	case a.User == "alice" && string(a.Password) == alicePassword:
		return verifier.Decision{Outcome: verifier.Accept}, nil
	case a.User == "carol":
		return verifier.Decision{Outcome: verifier.Challenge, Prompt: "Enter your code", State: []byte("state-1")}, nil
	case a.User == "mallory":
		return verifier.Decision{Outcome: verifier.Reject, Reason: verifier.ReasonLockedOut}, nil
	}
	return verifier.Decision{Outcome: verifier.Reject, Reason: verifier.ReasonBadPassword}, nil
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newTestServer(t testing.TB, v Verifier) (*Server, *recorder) {
	t.Helper()
	rec := &recorder{}
	s := &Server{Verifier: v, Observer: rec, Logger: discardLogger()}
	s.SetClients(testClients(t))
	return s, rec
}

// attr is one attribute of a test packet; raw, if set, is written as is
// instead of typ and val.
type attr struct {
	typ byte
	val []byte
	raw []byte
}

// packet describes a test request.
type packet struct {
	code  byte
	id    byte
	auth  [16]byte
	attrs []attr
	ma    bool // append a correct Message-Authenticator
}

// encode writes p, signed with secret when p.ma is set. The code here is
// independent of the package's own.
func (p packet) encode(secret []byte) []byte {
	b := []byte{p.code, p.id, 0, 0}
	b = append(b, p.auth[:]...)
	for _, a := range p.attrs {
		if a.raw != nil {
			b = append(b, a.raw...)
			continue
		}
		b = append(b, a.typ, byte(2+len(a.val)))
		b = append(b, a.val...)
	}
	maOff := 0
	if p.ma {
		b = append(b, 80, 18)
		maOff = len(b)
		b = append(b, make([]byte, 16)...)
	}
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)))
	if p.ma {
		h := hmac.New(md5.New, secret)
		h.Write(b)
		copy(b[maOff:], h.Sum(nil))
	}
	return b
}

func authFor(id byte, salt byte) [16]byte {
	var a [16]byte
	for i := range a {
		a[i] = id*31 + salt*7 + byte(i)*13 + 1
	}
	return a
}

func userPassword(t testing.TB, pw string, secret []byte, auth [16]byte) attr {
	t.Helper()
	v, err := radius.NewUserPassword([]byte(pw), secret, auth[:])
	if err != nil {
		t.Fatal(err)
	}
	return attr{typ: 2, val: v}
}

// accessRequest returns a signed Access-Request from user with pw, plus extra
// attributes.
func accessRequest(t testing.TB, secret []byte, id byte, user, pw string, extra ...attr) []byte {
	t.Helper()
	p := packet{code: 1, id: id, auth: authFor(id, byte(len(user))), ma: true}
	p.attrs = append(p.attrs, attr{typ: 1, val: []byte(user)}, userPassword(t, pw, secret, p.auth))
	p.attrs = append(p.attrs, extra...)
	return p.encode(secret)
}

// checkReply checks reply as an answer to req independently of the package:
// Length, Identifier, Response Authenticator, Message-Authenticator first and
// valid, attributes well formed. It returns the reply's attributes.
func checkReply(t testing.TB, reply, req, secret []byte) []attr {
	t.Helper()
	attrs, err := replyAttrs(reply, req, secret)
	if err != nil {
		t.Fatalf("bad reply: %v\nreply % x", err, reply)
	}
	return attrs
}

type replyError string

func (e replyError) Error() string { return string(e) }

func replyAttrs(reply, req, secret []byte) ([]attr, error) {
	if len(reply) < 38 {
		return nil, replyError("reply shorter than header + Message-Authenticator")
	}
	if int(binary.BigEndian.Uint16(reply[2:4])) != len(reply) {
		return nil, replyError("Length field is not the reply length")
	}
	if reply[1] != req[1] {
		return nil, replyError("Identifier differs from the request's")
	}
	if !radius.IsAuthenticResponse(reply, req, secret) {
		return nil, replyError("wrong Response Authenticator")
	}
	if reply[20] != 80 || reply[21] != 18 {
		return nil, replyError("Message-Authenticator is not the first attribute")
	}
	c := bytes.Clone(reply)
	copy(c[4:20], req[4:20])
	clear(c[22:38])
	h := hmac.New(md5.New, secret)
	h.Write(c)
	if !hmac.Equal(h.Sum(nil), reply[22:38]) {
		return nil, replyError("wrong Message-Authenticator")
	}
	var attrs []attr
	for b := reply[20:]; len(b) > 0; {
		if len(b) < 2 || b[1] < 2 || int(b[1]) > len(b) {
			return nil, replyError("malformed attribute")
		}
		attrs = append(attrs, attr{typ: b[0], val: b[2:b[1]]})
		b = b[b[1]:]
	}
	return attrs, nil
}

// requestMA finds the Message-Authenticator of a request the way a careful
// reader would: it returns whether one is present and whether it is right.
func requestMA(req, secret []byte) (present, valid bool) {
	if len(req) < 20 {
		return false, false
	}
	n := int(binary.BigEndian.Uint16(req[2:4]))
	if n < 20 || n > len(req) {
		return false, false
	}
	req = req[:n]
	off := 0
	for i := 20; i+2 <= n && req[i+1] >= 2 && i+int(req[i+1]) <= n; i += int(req[i+1]) {
		if req[i] == 80 && req[i+1] == 18 {
			if off != 0 {
				return true, false
			}
			off = i + 2
		}
	}
	if off == 0 {
		return false, false
	}
	c := bytes.Clone(req)
	clear(c[off : off+16])
	h := hmac.New(md5.New, secret)
	h.Write(c)
	return true, hmac.Equal(h.Sum(nil), req[off:off+16])
}

// udpServer serves s on 127.0.0.1 and returns its address and a channel
// receiving Serve's result.
func udpServer(t *testing.T, s *Server) (*net.UDPAddr, <-chan error) {
	t.Helper()
	return udpServerWith(t, s, nil)
}

// udpServerWith is udpServer with setup called on the socket before Serve.
func udpServerWith(t *testing.T, s *Server, setup func(*net.UDPConn)) (*net.UDPAddr, <-chan error) {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if setup != nil {
		setup(conn)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(conn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Error("Serve did not return after Shutdown")
		}
	})
	return conn.LocalAddr().(*net.UDPAddr), done
}

// udpClient is a NAS talking to a test server.
type udpClient struct {
	t    *testing.T
	conn *net.UDPConn
	srv  *net.UDPAddr
}

func newUDPClient(t *testing.T, srv *net.UDPAddr) *udpClient {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &udpClient{t: t, conn: conn, srv: srv}
}

func (c *udpClient) send(b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDP(b, c.srv); err != nil {
		c.t.Fatal(err)
	}
}

// recv returns the next reply, or nil if none comes within wait.
func (c *udpClient) recv(wait time.Duration) []byte {
	c.t.Helper()
	buf := make([]byte, 8192)
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	n, _, err := c.conn.ReadFromUDP(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		c.t.Fatal(err)
	}
	return buf[:n]
}

// eventually polls cond until it holds or 5 s passed.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
