package radius

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/radotp/radotp/verifier"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpus in testdata/fuzz/FuzzPacket")

// fuzzSources are the sources a fuzz input can come from, chosen by its
// second argument modulo 3.
var fuzzSources = [3]netip.AddrPort{strictSrc, laxSrc, unknownSrc}

type fuzzSeed struct {
	name string
	pkt  []byte
	src  byte   // index into fuzzSources
	want string // the drop reason, or the kind of answer
}

// fuzzSeeds returns the seed corpus: valid requests of every kind and
// several malformed ones. The packets are deterministic.
func fuzzSeeds(t testing.TB) []fuzzSeed {
	alice := func(secret []byte, id byte, pw string, ma bool, extra ...attr) []byte {
		auth := authFor(id, 5)
		p := packet{code: 1, id: id, auth: auth, ma: ma, attrs: []attr{{typ: 1, val: []byte("alice")}, userPassword(t, pw, secret, auth)}}
		p.attrs = append(p.attrs, extra...)
		return p.encode(secret)
	}
	setLen := func(b []byte, n int) []byte {
		binary.BigEndian.PutUint16(b[2:4], uint16(n))
		return b
	}
	return []fuzzSeed{
		{"accept-strict", alice(strictSecret, 1, alicePassword, true, attr{typ: 31, val: []byte("02-00-00-00-00-01")}), 0, AnswerAccessAccept},
		{"accept-lax-no-ma", alice(laxSecret, 2, alicePassword, false), 1, AnswerAccessAccept},
		{"reject-wrong-password", alice(strictSecret, 3, "wrong", true), 0, AnswerAccessReject},
		{"challenge-proxy-state", packet{code: 1, id: 4, auth: authFor(4, 5), ma: true, attrs: []attr{
			{typ: 1, val: []byte("carol")}, userPassword(t, "pw", strictSecret, authFor(4, 5)),
			{typ: 24, val: []byte("prev-state")}, {typ: 33, val: []byte("p1")}, {typ: 33, val: []byte("p2")}}}.encode(strictSecret), 0, AnswerAccessChallenge},
		{"status-server", packet{code: 12, id: 5, auth: authFor(5, 5), ma: true}.encode(strictSecret), 0, AnswerStatusServer},
		{"status-server-no-ma", packet{code: 12, id: 6, auth: authFor(6, 5)}.encode(laxSecret), 1, DropMissingMessageAuthenticator},
		{"chap-lax", packet{code: 1, id: 7, auth: authFor(7, 5), attrs: []attr{
			{typ: 1, val: []byte("alice")}, {typ: 3, val: make([]byte, 17)}}}.encode(laxSecret), 1, AnswerAccessReject},
		{"vendor-specific-lax", alice(laxSecret, 8, alicePassword, false, attr{typ: 26, val: []byte{0, 0, 0x01, 0x37, 1, 4, 'x', 'y'}}, attr{typ: 200}), 1, AnswerAccessAccept},
		{"padded-lax", append(alice(laxSecret, 9, alicePassword, false), 0, 0, 0, 0, 0, 0, 0, 0), 1, AnswerAccessAccept},
		{"truncated-19", alice(strictSecret, 10, alicePassword, true)[:19], 0, DropMalformed},
		{"length-beyond-datagram", func() []byte { b := alice(laxSecret, 11, "pw", false); return setLen(b, len(b)+1) }(), 1, DropMalformed},
		{"attribute-length-1", alice(laxSecret, 12, "pw", false, attr{raw: []byte{99, 1}}), 1, DropMalformed},
		{"ma-wrong-length", alice(laxSecret, 13, "pw", false, attr{typ: 80, val: make([]byte, 15)}), 1, DropMalformed},
		{"ma-bad", func() []byte { b := alice(laxSecret, 14, alicePassword, true); b[len(b)-1] ^= 0xff; return b }(), 1, DropBadMessageAuthenticator},
		{"two-passwords", alice(laxSecret, 15, "pw", false, userPassword(t, "pw2", laxSecret, authFor(15, 5))), 1, DropMalformed},
		{"password-17", packet{code: 1, id: 16, auth: authFor(16, 5), attrs: []attr{{typ: 1, val: []byte("alice")}, {typ: 2, val: make([]byte, 17)}}}.encode(laxSecret), 1, DropMalformed},
		{"code-4", func() []byte { b := alice(laxSecret, 17, "pw", false); b[0] = 4; return b }(), 1, DropMalformed},
		{"unknown-client", alice(strictSecret, 18, alicePassword, true), 2, DropUnknownClient},
	}
}

// corpusFile encodes a seed in the format of go test's fuzz corpus files.
func corpusFile(s fuzzSeed) []byte {
	return fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\nbyte(%q)\n", s.pkt, s.src)
}

// TestFuzzCorpus checks that the committed seed corpus is what fuzzSeeds
// makes; run with -update-corpus to rewrite it.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzPacket")
	if *updateCorpus {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range fuzzSeeds(t) {
		t.Run(s.name, func(t *testing.T) {
			srv, rec := newTestServer(t, &testVerifier{})
			srv.handle(context.Background(), bytes.Clone(s.pkt), fuzzSources[s.src])
			drops, answers, _ := rec.snapshot()
			if got := append(drops, answers...); !slices.Equal(got, []string{s.want}) {
				t.Errorf("seed %s: observer saw %q; want %s", s.name, got, s.want)
			}
		})
		path := filepath.Join(dir, s.name)
		want := corpusFile(s)
		if *updateCorpus {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %s missing or stale (%v); run go test -run TestFuzzCorpus -update-corpus", s.name, err)
		}
	}
}

// FuzzPacket runs arbitrary datagrams through the whole synchronous path
// (steps 1-7) and checks that nothing panics, that only a known client with
// a valid Message-Authenticator (when it has or needs one) gets a reply, that
// every reply is authentic and well formed, and that an Access-Accept
// answers only a Status-Server or a request the verifier accepted.
func FuzzPacket(f *testing.F) {
	clients := testClients(f)
	f.Fuzz(func(t *testing.T, pkt []byte, which byte) {
		srcIdx := int(which) % len(fuzzSources)
		src := fuzzSources[srcIdx]
		var calls int
		var accepted, challenged bool
		v := VerifierFunc(func(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
			calls++
			switch {
			case a.User == "alice" && string(a.Password) == alicePassword:
				accepted = true
				return verifier.Decision{Outcome: verifier.Accept}, nil
			case a.User == "carol":
				challenged = true
				return verifier.Decision{Outcome: verifier.Challenge, Prompt: "code?", State: []byte("st")}, nil
			}
			return verifier.Decision{Outcome: verifier.Reject, Reason: verifier.ReasonBadPassword}, nil
		})
		rec := &recorder{}
		s := &Server{Verifier: v, Observer: rec, Logger: discardLogger()}
		s.SetClients(clients)

		in := bytes.Clone(pkt)
		reply, drop := s.handle(context.Background(), in, src)
		if !bytes.Equal(in, pkt) {
			t.Fatal("handle changed its input")
		}
		drops, answers, resent := rec.snapshot()
		if resent != 0 {
			t.Fatal("a fresh server resent a reply")
		}
		if reply == nil {
			if !slices.Contains(DropReasons, drop) {
				t.Fatalf("dropped with reason %q, not one of DropReasons", drop)
			}
			if !slices.Equal(drops, []string{drop}) || len(answers) != 0 {
				t.Fatalf("observer saw drops %q answers %q for drop %q", drops, answers, drop)
			}
			return
		}
		if drop != "" || len(drops) != 0 || len(answers) != 1 {
			t.Fatalf("reply with drop %q; observer saw drops %q answers %q", drop, drops, answers)
		}
		if srcIdx == 2 {
			t.Fatal("an unknown client got a reply")
		}
		secret := secretFor(src)
		present, valid := requestMA(pkt, secret)
		if present && !valid {
			t.Fatal("a request with a wrong Message-Authenticator got a reply")
		}
		if !present && (srcIdx == 0 || pkt[0] == codeStatusServer) {
			t.Fatal("a request without a required Message-Authenticator got a reply")
		}
		if _, err := replyAttrs(reply, pkt, secret); err != nil {
			t.Fatalf("bad reply: %v", err)
		}
		switch {
		case pkt[0] == codeStatusServer:
			if reply[0] != codeAccessAccept || calls != 0 || answers[0] != AnswerStatusServer {
				t.Fatalf("Status-Server answered with code %d after %d verifier calls", reply[0], calls)
			}
		case reply[0] == codeAccessAccept:
			if !accepted || answers[0] != AnswerAccessAccept {
				t.Fatal("Access-Accept without the verifier accepting")
			}
		case reply[0] == codeAccessChallenge:
			if !challenged {
				t.Fatal("Access-Challenge without the verifier challenging")
			}
		case reply[0] != codeAccessReject:
			t.Fatalf("reply code %d", reply[0])
		}
	})
}
