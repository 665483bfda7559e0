package radius

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/radotp/radotp/verifier"
)

// TestSanity feeds one packet per case through the synchronous path and
// checks the drop reason the Observer saw, or the reply code.
func TestSanity(t *testing.T) {
	auth := authFor(7, 0)
	alice := func(secret []byte, extra ...attr) []attr {
		return append([]attr{{typ: 1, val: []byte("alice")}, userPassword(t, alicePassword, secret, auth)}, extra...)
	}
	// req builds an Access-Request from alice with extra attributes.
	req := func(secret []byte, ma bool, extra ...attr) []byte {
		return packet{code: 1, id: 7, auth: auth, attrs: alice(secret, extra...), ma: ma}.encode(secret)
	}
	withLength := func(b []byte, n int) []byte {
		binary.BigEndian.PutUint16(b[2:4], uint16(n))
		return b
	}
	pad := func(b []byte, n int) []byte { return append(b, make([]byte, n-len(b))...) }
	withCode := func(code byte) []byte {
		return packet{code: code, id: 7, auth: auth, attrs: alice(strictSecret), ma: true}.encode(strictSecret)
	}
	passwordOfLen := func(n int) []byte {
		return packet{code: 1, id: 7, auth: auth, ma: true, attrs: []attr{
			{typ: 1, val: []byte("alice")}, {typ: 2, val: bytes.Repeat([]byte{0x42}, n)},
		}}.encode(strictSecret)
	}
	badMA := func(secret []byte) []byte {
		b := req(secret, true)
		b[len(b)-1] ^= 1
		return b
	}
	vsa := attr{typ: 26, val: []byte{0, 0, 0x01, 0x37, 1, 6, 'x', 'y', 'z', 'w'}} // Vendor-Specific, Microsoft

	cases := []struct {
		name string
		src  netip.AddrPort
		pkt  []byte
		drop string // the expected drop reason, or "" if served
		code byte   // the expected reply code, if served
	}{
		{"Truncated/0", strictSrc, []byte{}, DropMalformed, 0},
		{"Truncated/1", strictSrc, []byte{1}, DropMalformed, 0},
		{"Truncated/19", strictSrc, req(strictSecret, true)[:19], DropMalformed, 0},
		{"Length/BelowHeader", strictSrc, withLength(req(strictSecret, true), 19), DropMalformed, 0},
		{"Length/BeyondDatagram", strictSrc, func() []byte { b := req(strictSecret, true); return withLength(b, len(b)+1) }(), DropMalformed, 0},
		{"Length/4097", strictSrc, withLength(pad(req(strictSecret, true), 4097), 4097), DropMalformed, 0},
		{"Length/5000ByteDatagram", strictSrc, withLength(pad(req(strictSecret, true), 5000), 5000), DropMalformed, 0},
		{"Length/5000ByteDatagramPadded", strictSrc, pad(req(strictSecret, true), 5000), "", codeAccessAccept},
		{"Length/ExtraBytesIgnored", strictSrc, append(req(strictSecret, true), 0xde, 0xad, 0xbe, 0xef), "", codeAccessAccept},
		{"Attribute/Length0", strictSrc, req(strictSecret, true, attr{raw: []byte{99, 0}}), DropMalformed, 0},
		{"Attribute/Length1", strictSrc, req(strictSecret, true, attr{raw: []byte{99, 1}}), DropMalformed, 0},
		{"Attribute/Overflow", strictSrc, func() []byte {
			b := req(strictSecret, false, attr{raw: []byte{99, 40, 1, 2}})
			return b
		}(), DropMalformed, 0},
		{"Attribute/HeaderCut", strictSrc, func() []byte {
			b := append(req(strictSecret, false), 99)
			return withLength(b, len(b))
		}(), DropMalformed, 0},
		{"MessageAuthenticator/MissingRequired", strictSrc, req(strictSecret, false), DropMissingMessageAuthenticator, 0},
		{"MessageAuthenticator/MissingNotRequired", laxSrc, req(laxSecret, false), "", codeAccessAccept},
		// limit_proxy_state (Blast-RADIUS): excused from Message-Authenticator,
		// but a Proxy-State without it is dropped; signed, it is served.
		{"MessageAuthenticator/ProxyStateWithoutMA", laxSrc, req(laxSecret, false, attr{typ: 33, val: []byte("p")}), DropMissingMessageAuthenticator, 0},
		{"MessageAuthenticator/ProxyStateWithMA", laxSrc, req(laxSecret, true, attr{typ: 33, val: []byte("p")}), "", codeAccessAccept},
		{"MessageAuthenticator/Bad", strictSrc, badMA(strictSecret), DropBadMessageAuthenticator, 0},
		{"MessageAuthenticator/BadNotRequired", laxSrc, badMA(laxSecret), DropBadMessageAuthenticator, 0},
		{"MessageAuthenticator/OtherSecret", strictSrc, req(laxSecret, true), DropBadMessageAuthenticator, 0},
		{"MessageAuthenticator/Length15", strictSrc, req(strictSecret, false, attr{typ: 80, val: make([]byte, 15)}), DropMalformed, 0},
		{"MessageAuthenticator/Length17", strictSrc, req(strictSecret, false, attr{typ: 80, val: make([]byte, 17)}), DropMalformed, 0},
		{"MessageAuthenticator/Twice", strictSrc, req(strictSecret, true, attr{typ: 80, val: make([]byte, 16)}), DropMalformed, 0},
		{"Duplicate/UserPassword", strictSrc, req(strictSecret, true, userPassword(t, "x", strictSecret, auth)), DropMalformed, 0},
		{"Duplicate/UserName", strictSrc, req(strictSecret, true, attr{typ: 1, val: []byte("bob")}), DropMalformed, 0},
		{"Duplicate/State", strictSrc, req(strictSecret, true, attr{typ: 24, val: []byte("a")}, attr{typ: 24, val: []byte("b")}), DropMalformed, 0},
		{"UserPassword/0", strictSrc, passwordOfLen(0), DropMalformed, 0},
		{"UserPassword/15", strictSrc, passwordOfLen(15), DropMalformed, 0},
		{"UserPassword/17", strictSrc, passwordOfLen(17), DropMalformed, 0},
		{"UserPassword/144", strictSrc, passwordOfLen(144), DropMalformed, 0},
		{"UserPassword/128", strictSrc, passwordOfLen(128), "", codeAccessReject},
		{"UnknownClient", unknownSrc, req(strictSecret, true), DropUnknownClient, 0},
		{"UserPasswordAndCHAPPassword", strictSrc, req(strictSecret, true, attr{typ: 3, val: make([]byte, 17)}), DropMalformed, 0},
		{"Attributes/300", strictSrc, req(strictSecret, true, func() []attr {
			as := make([]attr, 300)
			for i := range as {
				as[i] = attr{typ: 99, val: []byte{byte(i)}}
			}
			return as
		}()...), "", codeAccessAccept},
		{"UnknownClient/IPv6", netip.MustParseAddrPort("[2001:db8::1]:1812"), req(strictSecret, true), DropUnknownClient, 0},
		{"Code/0", strictSrc, withCode(0), DropMalformed, 0},
		{"Code/2", strictSrc, withCode(2), DropMalformed, 0},
		{"Code/4", strictSrc, withCode(4), DropMalformed, 0},
		{"Code/255", strictSrc, withCode(255), DropMalformed, 0},
		{"Attributes/UnknownAndVendorSpecificIgnored", strictSrc, req(strictSecret, true,
			attr{typ: 200, val: []byte("whatever")}, attr{typ: 255}, vsa, attr{typ: 31, val: []byte("00-11-22")}), "", codeAccessAccept},
		{"Attributes/MAFirst", strictSrc, func() []byte {
			p := packet{code: 1, id: 7, auth: auth, ma: false}
			p.attrs = append([]attr{{typ: 80, val: make([]byte, 16)}}, alice(strictSecret)...)
			b := p.encode(strictSecret)
			// Sign by hand with the MA at offset 22.
			m := messageAuthenticatorForTest(b, strictSecret, 22)
			copy(b[22:], m)
			return b
		}(), "", codeAccessAccept},
		{"IPv4MappedSource", netip.MustParseAddrPort("[::ffff:10.1.2.3]:40000"), req(strictSecret, true), "", codeAccessAccept},
		{"WrongPassword", strictSrc, packet{code: 1, id: 7, auth: auth, ma: true, attrs: []attr{
			{typ: 1, val: []byte("alice")}, userPassword(t, "wrong", strictSecret, auth)}}.encode(strictSecret), "", codeAccessReject},
		{"NoUserName", strictSrc, packet{code: 1, id: 7, auth: auth, ma: true, attrs: []attr{
			userPassword(t, alicePassword, strictSecret, auth)}}.encode(strictSecret), "", codeAccessReject},
		{"CHAP", strictSrc, packet{code: 1, id: 7, auth: auth, ma: true, attrs: []attr{
			{typ: 1, val: []byte("alice")}, {typ: 3, val: make([]byte, 17)}}}.encode(strictSecret), "", codeAccessReject},
		{"StatusServer", strictSrc, packet{code: 12, id: 7, auth: auth, ma: true}.encode(strictSecret), "", codeAccessAccept},
		{"StatusServer/WithoutMA", laxSrc, packet{code: 12, id: 7, auth: auth}.encode(laxSecret), DropMissingMessageAuthenticator, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := &testVerifier{}
			s, rec := newTestServer(t, v)
			in := bytes.Clone(tc.pkt)
			reply, drop := s.handle(context.Background(), in, tc.src)
			drops, answers, _ := rec.snapshot()
			if tc.drop != "" {
				if reply != nil || drop != tc.drop {
					t.Fatalf("got reply %v, drop %q; want drop %q", reply != nil, drop, tc.drop)
				}
				if !slices.Equal(drops, []string{tc.drop}) || len(answers) != 0 {
					t.Fatalf("observer saw drops %q answers %q; want drop %q", drops, answers, tc.drop)
				}
				if v.calls.Load() != 0 {
					t.Errorf("verifier called for a dropped packet")
				}
				return
			}
			if reply == nil {
				t.Fatalf("dropped (%s); want code %d", drop, tc.code)
			}
			if len(drops) != 0 || len(answers) != 1 {
				t.Fatalf("observer saw drops %q answers %q; want one answer", drops, answers)
			}
			checkReply(t, reply, tc.pkt, secretFor(tc.src))
			if reply[0] != tc.code {
				t.Fatalf("reply code %d; want %d", reply[0], tc.code)
			}
			if !bytes.Equal(in, tc.pkt) {
				t.Errorf("handle changed its input")
			}
		})
	}
}

func messageAuthenticatorForTest(pkt, secret []byte, off int) []byte {
	c := bytes.Clone(pkt)
	clear(c[off : off+16])
	h := hmac.New(md5.New, secret)
	h.Write(c)
	return h.Sum(nil)
}

// TestCHAPNotVerified checks that a request without User-Password is
// rejected without asking the verifier.
func TestCHAPNotVerified(t *testing.T) {
	v := &testVerifier{}
	s, _ := newTestServer(t, v)
	auth := authFor(1, 1)
	req := packet{code: 1, id: 1, auth: auth, ma: true, attrs: []attr{
		{typ: 1, val: []byte("alice")}, {typ: 3, val: make([]byte, 17)}, {typ: 60, val: make([]byte, 16)}}}.encode(strictSecret)
	reply, _ := s.handle(context.Background(), req, strictSrc)
	if reply == nil || reply[0] != codeAccessReject {
		t.Fatalf("reply %v; want Access-Reject", reply)
	}
	if n := v.calls.Load(); n != 0 {
		t.Fatalf("verifier called %d times", n)
	}
}

// TestReplyFormat checks replies independently of the package's encoder.
func TestReplyFormat(t *testing.T) {
	v := &testVerifier{}
	s, _ := newTestServer(t, v)
	ctx := context.Background()

	t.Run("ProxyStateEchoedInOrder", func(t *testing.T) {
		states := []attr{{typ: 33, val: []byte("first")}, {typ: 33, val: []byte("second")}, {typ: 33}, {typ: 33, val: bytes.Repeat([]byte{'z'}, 253)}}
		req := accessRequest(t, strictSecret, 10, "alice", alicePassword, states[0], attr{typ: 31, val: []byte("x")}, states[1], states[2], states[3])
		reply, drop := s.handle(ctx, req, strictSrc)
		if reply == nil {
			t.Fatalf("dropped: %s", drop)
		}
		attrs := checkReply(t, reply, req, strictSecret)
		if reply[0] != codeAccessAccept {
			t.Fatalf("code %d; want Access-Accept", reply[0])
		}
		var got []attr
		for _, a := range attrs[1:] {
			if a.typ != 33 {
				t.Fatalf("unexpected attribute %d in Accept", a.typ)
			}
			got = append(got, a)
		}
		if len(got) != len(states) {
			t.Fatalf("%d Proxy-States echoed; want %d", len(got), len(states))
		}
		for i := range got {
			if !bytes.Equal(got[i].val, states[i].val) {
				t.Errorf("Proxy-State %d = %q; want %q", i, got[i].val, states[i].val)
			}
		}
	})

	t.Run("AcceptHasOnlyMessageAuthenticator", func(t *testing.T) {
		req := accessRequest(t, strictSecret, 11, "alice", alicePassword)
		reply, _ := s.handle(ctx, req, strictSrc)
		attrs := checkReply(t, reply, req, strictSecret)
		if reply[0] != codeAccessAccept || len(attrs) != 1 {
			t.Fatalf("code %d with %d attributes; want Access-Accept with Message-Authenticator only", reply[0], len(attrs))
		}
	})

	t.Run("RejectsLookAlike", func(t *testing.T) {
		// Three rejects for three reasons (bad password, locked out, no
		// User-Password), same Identifier: only the authenticators differ.
		reqs := [][]byte{
			accessRequest(t, strictSecret, 12, "bob", "nope", attr{typ: 33, val: []byte("ps")}),
			accessRequest(t, strictSecret, 12, "mallory", "pw", attr{typ: 33, val: []byte("ps")}),
			packet{code: 1, id: 12, auth: authFor(12, 99), ma: true, attrs: []attr{
				{typ: 1, val: []byte("alice")}, {typ: 3, val: make([]byte, 17)}, {typ: 33, val: []byte("ps")}}}.encode(strictSecret),
		}
		var shapes [][]byte
		for i, req := range reqs {
			reply, drop := s.handle(ctx, req, strictSrc)
			if reply == nil {
				t.Fatalf("request %d dropped: %s", i, drop)
			}
			checkReply(t, reply, req, strictSecret)
			if reply[0] != codeAccessReject {
				t.Fatalf("request %d: code %d; want Access-Reject", i, reply[0])
			}
			shape := bytes.Clone(reply)
			clear(shape[4:20])  // Response Authenticator
			clear(shape[22:38]) // Message-Authenticator
			shapes = append(shapes, shape)
		}
		for i := 1; i < len(shapes); i++ {
			if !bytes.Equal(shapes[0], shapes[i]) {
				t.Errorf("reject %d differs from reject 0 beyond the authenticators:\n% x\n% x", i, shapes[i], shapes[0])
			}
		}
	})

	t.Run("Challenge", func(t *testing.T) {
		req := accessRequest(t, strictSecret, 13, "carol", "pw", attr{typ: 33, val: []byte("ps1")})
		reply, _ := s.handle(ctx, req, strictSrc)
		attrs := checkReply(t, reply, req, strictSecret)
		if reply[0] != codeAccessChallenge {
			t.Fatalf("code %d; want Access-Challenge", reply[0])
		}
		want := []attr{{typ: 80}, {typ: 24, val: []byte("state-1")}, {typ: 18, val: []byte("Enter your code")},
			{typ: 76, val: []byte{0, 0, 0, 0}}, // Prompt = No-Echo
			{typ: 33, val: []byte("ps1")}}
		if len(attrs) != len(want) {
			t.Fatalf("%d attributes; want %d", len(attrs), len(want))
		}
		for i := 1; i < len(want); i++ {
			if attrs[i].typ != want[i].typ || !bytes.Equal(attrs[i].val, want[i].val) {
				t.Errorf("attribute %d = %d %q; want %d %q", i, attrs[i].typ, attrs[i].val, want[i].typ, want[i].val)
			}
		}
	})

	t.Run("LongPromptSplit", func(t *testing.T) {
		prompt := strings.Repeat("Code bitte eingeben, ä ö ü ß € — ", 30) // > 900 bytes, multi-byte runes
		vs := VerifierFunc(func(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
			return verifier.Decision{Outcome: verifier.Challenge, Prompt: prompt, State: bytes.Repeat([]byte{7}, 253)}, nil
		})
		s, _ := newTestServer(t, vs)
		req := accessRequest(t, strictSecret, 14, "dave", "pw")
		reply, drop := s.handle(ctx, req, strictSrc)
		if reply == nil {
			t.Fatalf("dropped: %s", drop)
		}
		attrs := checkReply(t, reply, req, strictSecret)
		var msg []byte
		n := 0
		for _, a := range attrs {
			if a.typ == 18 {
				n++
				if len(a.val) > 253 {
					t.Errorf("Reply-Message of %d bytes", len(a.val))
				}
				if !utf8.Valid(a.val) {
					t.Errorf("Reply-Message %d splits a rune", n)
				}
				msg = append(msg, a.val...)
			}
		}
		if string(msg) != prompt || n < 4 {
			t.Fatalf("Reply-Messages (%d) join to %q; want %q", n, msg, prompt)
		}
	})

	t.Run("ChallengeWithoutStateRejected", func(t *testing.T) {
		vs := VerifierFunc(func(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
			return verifier.Decision{Outcome: verifier.Challenge, Prompt: "code?"}, nil
		})
		s, _ := newTestServer(t, vs)
		req := accessRequest(t, strictSecret, 15, "erin", "pw")
		reply, _ := s.handle(ctx, req, strictSrc)
		if attrs := checkReply(t, reply, req, strictSecret); reply[0] != codeAccessReject || len(attrs) != 1 {
			t.Fatalf("code %d, %d attributes; want a plain Access-Reject", reply[0], len(attrs))
		}
	})

	t.Run("UnknownOutcomeRejected", func(t *testing.T) {
		vs := VerifierFunc(func(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
			return verifier.Decision{Outcome: verifier.Outcome(42)}, nil
		})
		s, _ := newTestServer(t, vs)
		req := accessRequest(t, strictSecret, 16, "erin", "pw")
		reply, _ := s.handle(ctx, req, strictSrc)
		if checkReply(t, reply, req, strictSecret); reply[0] != codeAccessReject {
			t.Fatalf("code %d; want Access-Reject", reply[0])
		}
	})
}

// TestAttempt checks what the verifier is given.
func TestAttempt(t *testing.T) {
	var got verifier.Attempt
	var pwCopy []byte
	s, _ := newTestServer(t, VerifierFunc(func(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
		got = a
		pwCopy = bytes.Clone(a.Password)
		if _, ok := ctx.Deadline(); !ok {
			t.Error("Verify context has no deadline")
		}
		return verifier.Decision{Outcome: verifier.Accept}, nil
	}))
	pw := strings.Repeat("p", 40) + "123456" // 46 bytes: three 16-byte blocks
	req := accessRequest(t, laxSecret, 3, "alice", pw,
		attr{typ: 24, val: []byte("the-state")}, attr{typ: 31, val: []byte("02-00-00-00-00-01")})
	if reply, drop := s.handle(context.Background(), req, laxSrc); reply == nil {
		t.Fatalf("dropped: %s", drop)
	}
	if got.User != "alice" || string(pwCopy) != pw || string(got.State) != "the-state" ||
		got.CallingStation != "02-00-00-00-00-01" || got.Source != laxSrc ||
		got.Client != (verifier.Client{Name: "lax", Mode: verifier.ModeOTP}) {
		t.Fatalf("attempt %+v (password %q)", got, pwCopy)
	}
	if !bytes.Equal(got.Password, make([]byte, len(pw))) {
		t.Errorf("password not wiped after Verify")
	}
}

// TestMACKey checks the pre-keyed HMAC-MD5 against crypto/hmac for secrets
// shorter than, as long as, and longer than MD5's block (which HMAC hashes
// first), for requests and for the replies encode signs, and that a check
// allocates nothing.
func TestMACKey(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 16, 63, 64, 65, 200} {
		secret := make([]byte, n)
		for i := range secret {
			secret[i] = byte(rnd.IntN(256))
		}
		k := newMACKey(secret)
		for range 20 {
			pkt := make([]byte, headerLen+maAttrLen+rnd.IntN(200))
			for i := range pkt {
				pkt[i] = byte(rnd.IntN(256))
			}
			const off = headerLen + 2
			got := k.messageAuthenticator(pkt, pkt[4:headerLen], off)
			if want := messageAuthenticatorForTest(pkt, secret, off); !bytes.Equal(got[:], want) {
				t.Fatalf("secret of %d bytes: got %x, crypto/hmac %x", n, got, want)
			}
			copy(pkt[off:], got[:])
			if !k.validMessageAuthenticator(pkt, off) {
				t.Fatalf("secret of %d bytes: own Message-Authenticator not valid", n)
			}
			pkt[len(pkt)-1] ^= 1
			if k.validMessageAuthenticator(pkt, off) {
				t.Fatalf("secret of %d bytes: a changed packet still valid", n)
			}
		}
		req := packet{code: 1, id: 9, auth: authFor(9, 9), ma: true}.encode(secret)
		b := (&reply{code: codeAccessAccept}).encode(req, k, nil)
		ma := messageAuthenticatorForTest(append(append(bytes.Clone(b[:4]), req[4:headerLen]...), b[headerLen:]...), secret, headerLen+2)
		if !bytes.Equal(b[headerLen+2:headerLen+maAttrLen], ma) {
			t.Fatalf("secret of %d bytes: reply's Message-Authenticator %x, crypto/hmac %x", n, b[headerLen+2:headerLen+maAttrLen], ma)
		}
		resp := md5.Sum(append(append(append(bytes.Clone(b[:4]), req[4:headerLen]...), b[headerLen:]...), secret...))
		if !bytes.Equal(b[4:headerLen], resp[:]) {
			t.Fatalf("secret of %d bytes: Response Authenticator %x, want %x", n, b[4:headerLen], resp)
		}
	}
	k := newMACKey([]byte("s3cret"))
	pkt := packet{code: 1, id: 9, auth: authFor(9, 9), ma: true, attrs: []attr{{typ: 1, val: []byte("alice")}}}.encode([]byte("s3cret"))
	maOff := len(pkt) - md5.Size // the test encoder puts it last
	if !k.validMessageAuthenticator(pkt, maOff) {
		t.Fatal("a request signed by the test encoder is not valid")
	}
	if n := testing.AllocsPerRun(100, func() { k.validMessageAuthenticator(pkt, maOff) }); n != 0 {
		t.Errorf("checking a Message-Authenticator allocates %.0f times, want 0", n)
	}
}

// TestClientMACKey checks that a Client copied from one made by NewClients
// and given another secret signs with the new secret, not the copied key.
func TestClientMACKey(t *testing.T) {
	cs, err := NewClients([]Client{{Prefixes: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Secret: []byte("one")}})
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := cs.Lookup(netip.MustParseAddr("10.1.2.3"))
	if cl.macKey() != cl.mac {
		t.Error("NewClients's client does not use its prepared key")
	}
	cp := *cl
	cp.Secret = []byte("two")
	if got := cp.macKey().secret; string(got) != "two" {
		t.Errorf("copied client with a new secret signs with %q", got)
	}
	cp.Secret = cl.Secret[:1] // same first byte, shorter
	if got := cp.macKey().secret; string(got) != "o" {
		t.Errorf("copied client with a shorter secret signs with %q", got)
	}
	cp.Secret = []byte("one")
	copy(cl.Secret, "two") // changed in place
	if got := cl.macKey().secret; string(got) != "two" {
		t.Errorf("client whose secret changed in place signs with %q", got)
	}
}
