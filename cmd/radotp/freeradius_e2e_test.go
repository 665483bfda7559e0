package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// An existing FreeRADIUS in front: radclient (the NAS) asks FreeRADIUS 3.2,
// which proxies every Access-Request to radotp as its home server, and
// passes radotp's Accept, Reject or Challenge (with State and Reply-Message)
// back. FreeRADIUS runs from a private configuration written to a temporary
// directory, on free loopback ports, as the current user: nothing of
// /etc/freeradius is read, and a FreeRADIUS already running on this machine
// is not touched.

// Two different secrets: NAS to FreeRADIUS, and FreeRADIUS to radotp.
const (
	frNASSecret = "nas-to-freeradius-secret-0123"
	frPrompt    = "radotp code, please"
)

// frRadotpConfig writes a radotp config whose only client is FreeRADIUS
// (requests proxied from 127.0.0.1) in the given mode.
func frRadotpConfig(t *testing.T, dir, mode string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[radius]
listen = "127.0.0.1:0"
[totp]
activation_delay = "0s"
[metrics]
listen = "127.0.0.1:0"
[[client]]
name = "freeradius"
address = "127.0.0.1"
secret = %q
mode = %q
challenge_prompt = %q
`, e2eSecret, mode, frPrompt)
	p := filepath.Join(dir, "radotp.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// frFiles is the whole FreeRADIUS configuration, file by file, laid out as in
// /etc/freeradius/3.0. Only proxy.conf and the site are about radotp; the
// rest makes a FreeRADIUS that loads no modules and keeps its files in dir.
func frFiles(dir string, port int, radotp string) map[string]string {
	host, rport, _ := net.SplitHostPort(radotp)
	return map[string]string{
		"radiusd.conf": fmt.Sprintf(`prefix = /usr
confdir = %s
run_dir = ${confdir}
logdir = ${confdir}
pidfile = ${run_dir}/radiusd.pid
# Debian's radiusd.conf has this already (the compiled-in default is yes).
proxy_requests = yes
security {
	# Reject at once (the default 1 s delay would only slow the test).
	reject_delay = 0
	status_server = no
}
$INCLUDE proxy.conf
$INCLUDE clients.conf
modules {
}
$INCLUDE sites-enabled/
`, dir),

		// radotp as a home server. FreeRADIUS 3.2.1 adds a
		// Message-Authenticator to every proxied Access-Request (and to its
		// Status-Server probes) and always adds a Proxy-State, which radotp
		// echoes; radotp's defaults (require_message_authenticator = true)
		// need no change.
		"proxy.conf": fmt.Sprintf(`home_server radotp {
	type = auth
	ipaddr = %s
	port = %s
	secret = %s
	# radotp answers Status-Server: revive it as soon as it answers again.
	status_check = status-server
}
home_server_pool radotp {
	type = fail-over
	home_server = radotp
}
realm radotp {
	auth_pool = radotp
}
`, host, rport, e2eSecret),

		"clients.conf": fmt.Sprintf(`client nas {
	ipaddr = 127.0.0.1
	secret = %s
	require_message_authenticator = yes
}
`, frNASSecret),

		// The virtual server: proxy every Access-Request to the realm.
		"sites-enabled/radotp": fmt.Sprintf(`server radotp-front {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %d
	}
	authorize {
		update control {
			&Proxy-To-Realm := "radotp"
		}
	}
}
`, port),
	}
}

var frBinary = "/usr/sbin/freeradius"

type freeRADIUS struct {
	addr string
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	done chan error
}

func (f *freeRADIUS) logs() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.log.String()
}

// freeUDPPort returns a loopback UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// startFreeRADIUS writes the private configuration, checks it, and runs
// FreeRADIUS in the foreground with debug output (kept for failure messages)
// until the test ends.
func startFreeRADIUS(t *testing.T, radotp string) *freeRADIUS {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "raddb")
	port := freeUDPPort(t)
	for name, text := range frFiles(dir, port, radotp) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(frBinary, "-C", "-l", "stdout", "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("freeradius -C (configuration check) of %s: %v\n%s", dir, err, out)
	}

	f := &freeRADIUS{addr: fmt.Sprintf("127.0.0.1:%d", port), done: make(chan error, 1)}
	// -xx is the debug level of -X, without -X's single-threaded mode.
	f.cmd = exec.Command(frBinary, "-f", "-xx", "-l", "stdout", "-d", dir)
	pr, err := f.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	f.cmd.Stderr = f.cmd.Stdout
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{}, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			f.mu.Lock()
			f.log.WriteString(sc.Text() + "\n")
			f.mu.Unlock()
			if strings.Contains(sc.Text(), "Ready to process requests") {
				select {
				case ready <- struct{}{}:
				default:
				}
			}
		}
		f.done <- f.cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-f.done:
		t.Fatalf("freeradius exited: %v (is port %d taken?)\n%s", err, port, f.logs())
	case <-time.After(15 * time.Second):
		f.cmd.Process.Kill()
		t.Fatalf("freeradius did not start\n%s", f.logs())
	}
	t.Cleanup(func() {
		f.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
			f.cmd.Process.Kill()
			<-f.done
		}
	})
	return f
}

var frState = regexp.MustCompile(`(?m)^\s*State = (0x[0-9a-f]+)$`)
var frReplyMessage = regexp.MustCompile(`(?m)^\s*Reply-Message = "([^"]*)"$`)

// frRadclient sends one Access-Request to FreeRADIUS, as its NAS.
func frRadclient(t *testing.T, addr string, lines ...string) (string, string) {
	t.Helper()
	return radclientAs(t, addr, frNASSecret, lines...)
}

// proxiedAttrs returns the attribute names of the requests FreeRADIUS's
// debug output says it sent to radotp (one string per request).
func (f *freeRADIUS) proxiedAttrs(radotp string) []string {
	var reqs []string
	sent := "Sent Access-Request Id "
	lines := strings.Split(f.logs(), "\n")
	for i, l := range lines {
		if !strings.Contains(l, sent) || !strings.Contains(l, " to "+radotp+" ") {
			continue
		}
		var names []string
		for _, a := range lines[i+1:] {
			// "(3)   Proxy-State = 0x3435"
			_, rest, ok := strings.Cut(a, ")   ")
			if !ok || !strings.HasPrefix(a, "(") {
				break
			}
			names = append(names, strings.Fields(rest)[0])
		}
		reqs = append(reqs, strings.Join(names, " "))
	}
	return reqs
}

// frMetric reads a sample until it equals want, for up to 2 s: radotp counts
// a reply after sending it, so the counter may move a moment after radclient
// has the reply.
func frMetric(t *testing.T, s *server, sample string, want float64) float64 {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		got := s.metric(t, sample)
		if got == want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFreeRADIUSInFront(t *testing.T) {
	requireTools(t, "radclient", "oathtool")
	// Debian puts it in /usr/sbin, which is not in a normal user's PATH.
	if p, err := exec.LookPath("freeradius"); err == nil {
		frBinary = p
	} else if _, err := os.Stat(frBinary); err != nil {
		msg := "freeradius not installed (apt-get install freeradius)"
		if os.Getenv("RADOTP_E2E") == "1" {
			t.Fatal("RADOTP_E2E=1: " + msg)
		}
		t.Skip(msg)
	}

	// check fails the test with both logs.
	check := func(t *testing.T, s *server, f *freeRADIUS, what, got, want, out string) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: got %s, want %s\nradclient:\n%s\nradotp log:\n%s\nFreeRADIUS log:\n%s", what, got, want, out, s.logs(), f.logs())
		}
	}
	// proxied checks that every request reached radotp signed and with a
	// Proxy-State (radotp drops a Proxy-State without Message-Authenticator).
	proxied := func(t *testing.T, s *server, f *freeRADIUS, n int) {
		t.Helper()
		reqs := f.proxiedAttrs(s.radius)
		if len(reqs) != n {
			t.Fatalf("FreeRADIUS log shows %d requests sent to radotp at %s, want %d:\n%s", len(reqs), s.radius, n, f.logs())
		}
		for _, r := range reqs {
			if !strings.Contains(r, "Message-Authenticator") || !strings.Contains(r, "Proxy-State") {
				t.Fatalf("proxied request lacks Message-Authenticator or Proxy-State: %s", r)
			}
		}
	}

	t.Run("append", func(t *testing.T) {
		dir := t.TempDir()
		cfg := frRadotpConfig(t, dir, "append")
		key := addUser(t, cfg, "alice", "hunter2", "--activate-now")
		s := startServer(t, cfg)
		f := startFreeRADIUS(t, s.radius)

		got, out := frRadclient(t, f.addr, `User-Name = "alice"`, `User-Password = "hunter2`+totpCode(t, key)+`"`)
		check(t, s, f, "password+code via FreeRADIUS", got, "Access-Accept", out)
		got, out = frRadclient(t, f.addr, `User-Name = "alice"`, `User-Password = "hunter2`+notCode(totpCode(t, key))+`"`)
		check(t, s, f, "wrong code via FreeRADIUS", got, "Access-Reject", out)

		for sample, want := range map[string]float64{
			`radotp_radius_requests_total{code="access_accept"}`: 1,
			`radotp_radius_requests_total{code="access_reject"}`: 1,
			reason("bad_code"): 1,
			`radotp_radius_dropped_total{reason="missing_message_authenticator"}`: 0,
		} {
			if got := frMetric(t, s, sample, want); got != want {
				t.Errorf("%s = %v, want %v", sample, got, want)
			}
		}
		proxied(t, s, f, 2)
	})

	t.Run("challenge", func(t *testing.T) {
		dir := t.TempDir()
		cfg := frRadotpConfig(t, dir, "challenge")
		key := addUser(t, cfg, "alice", "hunter2", "--activate-now")
		s := startServer(t, cfg)
		f := startFreeRADIUS(t, s.radius)

		// Step 1: the password; FreeRADIUS passes radotp's challenge on.
		got, out := frRadclient(t, f.addr, `User-Name = "alice"`, `User-Password = "hunter2"`)
		check(t, s, f, "password via FreeRADIUS", got, "Access-Challenge", out)
		st := frState.FindStringSubmatch(out)
		msg := frReplyMessage.FindStringSubmatch(out)
		if st == nil || msg == nil || msg[1] != frPrompt {
			t.Fatalf("challenge through FreeRADIUS lacks State or Reply-Message %q:\n%s", frPrompt, out)
		}
		// Step 2: the code with that State.
		got, out = frRadclient(t, f.addr, `User-Name = "alice"`, `User-Password = "`+totpCode(t, key)+`"`, "State = "+st[1])
		check(t, s, f, "code with State via FreeRADIUS", got, "Access-Accept", out)

		for sample, want := range map[string]float64{
			`radotp_radius_requests_total{code="access_challenge"}`: 1,
			`radotp_radius_requests_total{code="access_accept"}`:    1,
			`radotp_radius_requests_total{code="access_reject"}`:    0,
		} {
			if got := frMetric(t, s, sample, want); got != want {
				t.Errorf("%s = %v, want %v", sample, got, want)
			}
		}
		proxied(t, s, f, 2)
	})
}
