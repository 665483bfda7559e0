package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"layeh.com/radius"
	"layeh.com/radius/rfc2865"
)

// A small NAS in Go for the crash and soak tests (crash_e2e_test.go,
// soak_test.go): many requests from sockets the test owns, identical
// retransmissions from the same source port, malformed packets. Users are
// in mode "otp" (the code alone is the User-Password) with keys the test
// chose, so no password hashing is involved.

const (
	nasPeriod  = 30 // seconds: the default totp.period
	attrMsgAut = 80 // Message-Authenticator (RFC 3579)
)

// nas is one UDP socket of a NAS. Its methods are not safe for concurrent
// use; each goroutine has its own.
type nas struct {
	conn   *net.UDPConn
	server *net.UDPAddr
	secret []byte
	id     byte
	stale  int // datagrams read that answered no request we were waiting for
}

// dialNAS opens a socket on local ("127.0.0.1:0") for talking to server.
func dialNAS(local, server string) (*nas, error) {
	la, err := net.ResolveUDPAddr("udp", local)
	if err != nil {
		return nil, err
	}
	ra, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		return nil, err
	}
	c, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, err
	}
	return &nas{conn: c, server: ra, secret: []byte(e2eSecret)}, nil
}

func mustNAS(t *testing.T, local, server string) *nas {
	t.Helper()
	n, err := dialNAS(local, server)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.conn.Close() })
	return n
}

// packet builds a request of code with the next Identifier and a new random
// Request Authenticator: User-Name and User-Password (hidden with the
// secret) unless user is "", NAS-Identifier, and a Message-Authenticator
// when ma is set.
func (n *nas) packet(code radius.Code, user, pw string, ma bool) []byte {
	p := radius.New(code, n.secret)
	p.Identifier = n.id
	n.id++
	if user != "" {
		must(rfc2865.UserName_SetString(p, user))
		must(rfc2865.UserPassword_SetString(p, pw))
	}
	must(rfc2865.NASIdentifier_SetString(p, "radotp-test-nas"))
	if ma {
		p.Add(attrMsgAut, make(radius.Attribute, 16))
	}
	b, err := p.Encode()
	must(err)
	if ma {
		signMessageAuthenticator(b, n.secret)
	}
	return b
}

// accessRequest is a well-formed, signed Access-Request as radotp wants it.
func (n *nas) accessRequest(user, pw string) []byte {
	return n.packet(radius.CodeAccessRequest, user, pw, true)
}

func (n *nas) statusServer() []byte {
	return n.packet(radius.CodeStatusServer, "", "", true)
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// maOffset returns where the value of the Message-Authenticator of the
// encoded packet b starts, or 0.
func maOffset(b []byte) int {
	for off := 20; off+2 <= len(b); {
		l := int(b[off+1])
		if l < 2 {
			return 0
		}
		if b[off] == attrMsgAut && l == 18 {
			return off + 2
		}
		off += l
	}
	return 0
}

// signMessageAuthenticator writes HMAC-MD5(secret, packet with the
// Message-Authenticator zeroed) into the Message-Authenticator of b.
func signMessageAuthenticator(b, secret []byte) {
	off := maOffset(b)
	if off == 0 {
		panic("no Message-Authenticator to sign")
	}
	clear(b[off : off+16])
	h := hmac.New(md5.New, secret)
	h.Write(b)
	copy(b[off:off+16], h.Sum(nil))
}

func (n *nas) send(b []byte) error {
	_, err := n.conn.WriteToUDP(b, n.server)
	return err
}

var errNoReply = errors.New("no reply")

// await reads until timeout for the reply to req: same Identifier and an
// authentic Response Authenticator. Other datagrams are counted as stale.
func (n *nas) await(req []byte, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096+1)
	for {
		if err := n.conn.SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		k, _, err := n.conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return nil, errNoReply
			}
			return nil, err
		}
		r := buf[:k]
		if k >= 20 && r[1] == req[1] && radius.IsAuthenticResponse(r, req, n.secret) {
			return bytes.Clone(r), nil
		}
		n.stale++
	}
}

// exchange sends req and waits for its reply; without one after timeout it
// retransmits the identical bytes, as a NAS does, up to tries sends in all.
// It returns the reply and the number of retransmissions made.
func (n *nas) exchange(req []byte, timeout time.Duration, tries int) ([]byte, int, error) {
	for i := range tries {
		if err := n.send(req); err != nil {
			return nil, i, err
		}
		r, err := n.await(req, timeout)
		if err == nil {
			return r, i, nil
		}
		if !errors.Is(err, errNoReply) {
			return nil, i, err
		}
	}
	return nil, tries - 1, errNoReply
}

// replyName names the code of a reply.
func replyName(r []byte) string {
	if len(r) == 0 {
		return "no reply"
	}
	switch radius.Code(r[0]) {
	case radius.CodeAccessAccept:
		return "Access-Accept"
	case radius.CodeAccessReject:
		return "Access-Reject"
	case radius.CodeAccessChallenge:
		return "Access-Challenge"
	}
	return "code " + strconv.Itoa(int(r[0]))
}

func isAccept(r []byte) bool { return len(r) > 0 && radius.Code(r[0]) == radius.CodeAccessAccept }
func isReject(r []byte) bool { return len(r) > 0 && radius.Code(r[0]) == radius.CodeAccessReject }

// otpUser is a user with a token whose key the test chose.
type otpUser struct {
	name, key string
}

// code is the user's code for the time step step.
func (u otpUser) code(step int64) string {
	c, err := totp.GenerateCodeCustom(u.key, time.Unix(step*nasPeriod, 0), totp.ValidateOpts{
		Period: nasPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	must(err)
	return c
}

func currentStep() int64 { return time.Now().Unix() / nasPeriod }

// addOTPUsers creates n users prefix0..prefix(n-1), each with an active
// token imported from a random 20-byte key, with `radotp user add` and
// `radotp token add --secret --activate-now` (four at a time).
func addOTPUsers(t *testing.T, cfg, prefix string, n int) []otpUser {
	t.Helper()
	users := make([]otpUser, n)
	errs := make(chan error, n)
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for i := range users {
		raw := make([]byte, 20)
		rand.Read(raw)
		users[i] = otpUser{name: fmt.Sprintf("%s%d", prefix, i), key: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw)}
		wg.Add(1)
		go func(u otpUser) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			for _, args := range [][]string{
				{"user", "add", u.name},
				{"token", "add", u.name, "--secret", u.key, "--activate-now"},
			} {
				if out, err := exec.Command(binary, append(args, "--config", cfg)...).CombinedOutput(); err != nil {
					errs <- fmt.Errorf("radotp %v: %v: %s", args, err, out)
					return
				}
			}
		}(users[i])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return users
}

// writeOTPConfig writes a config with RADIUS on listen, one client
// 127.0.0.1 in mode "otp", tokens active at once and a lockout that the
// load's wrong codes and replays do not reach. extra goes into [radius].
func writeOTPConfig(t *testing.T, dir, listen, radiusExtra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[radius]
listen = %q
%s
[totp]
activation_delay = "0s"
skew = 1
[lockout]
max_failures = 1000
duration = "1s"
[metrics]
listen = "127.0.0.1:0"
[[client]]
name = "gw"
address = "127.0.0.1"
secret = %q
mode = "otp"
`, listen, radiusExtra, e2eSecret)
	p := filepath.Join(dir, "radotp.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// killServer sends SIGKILL and waits until the process is gone.
func killServer(t *testing.T, s *server) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("radotp did not die on SIGKILL")
	}
}

// scrape reads every sample of /metrics ("name{labels}" → value). It does
// not call t.Fatal, so goroutines may use it.
func scrape(addr string) (map[string]float64, error) {
	r, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	m := make(map[string]float64)
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, nil
}
