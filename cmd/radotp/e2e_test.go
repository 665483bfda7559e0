package main

import (
	"bufio"
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// These tests run radotp as a user would: the real binary, its CLI, a real
// SQLite file, radclient/radtest (freeradius-utils) as the NAS and oathtool as
// the phone. Without those tools they skip, unless RADOTP_E2E=1 (CI), where a
// missing tool fails the run.

var binary string // built once by TestMain

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "radotp-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "radotp")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func requireTools(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("%s not installed (apt-get install freeradius-utils oathtool)", tool)
			if os.Getenv("RADOTP_E2E") == "1" {
				t.Fatal("RADOTP_E2E=1: " + msg)
			}
			t.Skip(msg)
		}
	}
}

const e2eSecret = "e2e-shared-secret-0123456789"

// writeConfig writes a config for a test server on free ports in dir.
func writeConfig(t *testing.T, dir string, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[radius]
listen = "127.0.0.1:0"
[database]
path = "radotp.db"
key_file = "radotp.key"
[totp]
activation_delay = "4s"
[lockout]
max_failures = 5
duration = "10m"
[metrics]
listen = "127.0.0.1:0"
[[client]]
name = "local"
address = "127.0.0.1"
secret = %q
mode = "append"
%s`, e2eSecret, extra)
	p := filepath.Join(dir, "radotp.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// admin runs one CLI command and returns stdout, stderr and the exit status.
func admin(t *testing.T, cfg, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binary, append(args, "--config", cfg)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func mustAdmin(t *testing.T, cfg, stdin string, args ...string) string {
	t.Helper()
	out, errs, code := admin(t, cfg, stdin, args...)
	if code != 0 {
		t.Fatalf("radotp %v: exit %d: %s", args, code, errs)
	}
	return out
}

var keyLine = regexp.MustCompile(`key \(base32, shown only now\): ([A-Z2-7 ]+)\n`)

// addUser creates a user with a password and a token and returns its key.
func addUser(t *testing.T, cfg, name, pw string, tokenFlags ...string) string {
	t.Helper()
	mustAdmin(t, cfg, pw+"\n", "user", "add", name, "--password-stdin")
	out := mustAdmin(t, cfg, "", append([]string{"token", "add", name}, tokenFlags...)...)
	m := keyLine.FindStringSubmatch(out)
	if m == nil || !strings.Contains(out, "otpauth://totp/radotp:"+name+"?") {
		t.Fatalf("token add printed no key and URI:\n%s", out)
	}
	return strings.ReplaceAll(m[1], " ", "")
}

type server struct {
	cmd           *exec.Cmd
	radius, stats string
	mu            sync.Mutex
	log           strings.Builder
	done          chan error
}

var servingLine = regexp.MustCompile(`msg="radotp serving" radius=(\S+) metrics=(\S+)`)

func startServer(t *testing.T, cfg string) *server {
	t.Helper()
	s := &server{cmd: exec.Command(binary, "serve", "--config", cfg), done: make(chan error, 1)}
	pr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
			if m := servingLine.FindStringSubmatch(sc.Text()); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
		}
		s.done <- s.cmd.Wait()
	}()
	select {
	case a := <-ready:
		s.radius, s.stats = a[0], a[1]
	case err := <-s.done:
		t.Fatalf("radotp serve exited: %v\n%s", err, s.logs())
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		t.Fatalf("radotp serve did not start\n%s", s.logs())
	}
	t.Cleanup(func() {
		if s.cmd.ProcessState == nil {
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

func (s *server) logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// stop sends SIGTERM and waits for a clean exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("radotp serve after SIGTERM: %v\n%s", err, s.logs())
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("radotp serve did not stop on SIGTERM\n%s", s.logs())
	}
}

// metric reads one sample from /metrics.
func (s *server) metric(t *testing.T, sample string) float64 {
	t.Helper()
	r, err := http.Get("http://" + s.stats + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, sample+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exported", sample)
	return 0
}

func reason(r string) string { return `radotp_auth_failures_total{reason="` + r + `"}` }

// totpCode asks oathtool, as a phone would show it now.
func totpCode(t *testing.T, key string) string {
	t.Helper()
	out, err := exec.Command("oathtool", "--totp", "-b", key).Output()
	if err != nil {
		t.Fatalf("oathtool: %v", err)
	}
	return strings.TrimSpace(string(out))
}

var received = regexp.MustCompile(`Received (Access-\w+) Id`)

// radclient sends one Access-Request (with Message-Authenticator) and
// returns the reply code, or "timeout".
func radclient(t *testing.T, addr, user, pw string) string {
	t.Helper()
	in := fmt.Sprintf("User-Name = %q\nUser-Password = %q\nNAS-Identifier = \"e2e\"\nMessage-Authenticator = 0x00\n", user, pw)
	cmd := exec.Command("radclient", "-x", "-r", "1", "-t", "3", addr, "auth", e2eSecret)
	cmd.Stdin = strings.NewReader(in)
	out, _ := cmd.CombinedOutput()
	if m := received.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	if bytes.Contains(out, []byte("No reply from server")) {
		return "timeout"
	}
	t.Fatalf("radclient: unexpected output:\n%s", out)
	return ""
}

// radtest is the FreeRADIUS test script; it sends PAP with Message-Authenticator.
func radtest(t *testing.T, addr, user, pw string) string {
	t.Helper()
	out, _ := exec.Command("radtest", user, pw, addr, "0", e2eSecret).CombinedOutput()
	if m := received.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	t.Fatalf("radtest: unexpected output:\n%s", out)
	return ""
}

// notCode returns a 6-digit string that is not c.
func notCode(c string) string {
	n, _ := strconv.Atoi(c)
	return fmt.Sprintf("%06d", (n+500000)%1000000)
}

func expectReply(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %s, want %s", what, got, want)
	}
}

func TestEndToEnd(t *testing.T) {
	requireTools(t, "radclient", "radtest", "oathtool")
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")

	aliceKey := addUser(t, cfg, "alice", "hunter2", "--activate-now")
	carolKey := addUser(t, cfg, "carol", "c@rol pass", "--activate-now")
	daveKey := addUser(t, cfg, "dave", "davepw", "--activate-now")
	bobKey := addUser(t, cfg, "bob", "bobpw") // activation delay 4s
	bobActive := time.Now().Add(4 * time.Second)

	// The key file is created 0600, and neither the database nor its WAL
	// holds a token key in the clear.
	if fi, err := os.Stat(filepath.Join(dir, "radotp.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v", err, fi.Mode())
	}
	raw, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(aliceKey)
	for _, f := range []string{"radotp.db", "radotp.db-wal"} {
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if bytes.Contains(b, raw) || bytes.Contains(b, []byte(aliceKey)) {
			t.Fatalf("%s holds alice's key in the clear", f)
		}
	}

	s := startServer(t, cfg)
	code := totpCode(t, aliceKey)
	expectReply(t, "right password and code", radclient(t, s.radius, "alice", "hunter2"+code), "Access-Accept")
	expectReply(t, "same code again", radclient(t, s.radius, "alice", "hunter2"+code), "Access-Reject")
	expectReply(t, "same code via radtest", radtest(t, s.radius, "alice", "hunter2"+code), "Access-Reject")
	expectReply(t, "radtest accept", radtest(t, s.radius, "carol", "c@rol pass"+totpCode(t, carolKey)), "Access-Accept")
	expectReply(t, "wrong code", radclient(t, s.radius, "alice", "hunter2"+notCode(totpCode(t, aliceKey))), "Access-Reject")
	expectReply(t, "wrong password", radclient(t, s.radius, "alice", "hunter3"+totpCode(t, aliceKey)), "Access-Reject")
	expectReply(t, "unknown user", radclient(t, s.radius, "mallory", "hunter2"+code), "Access-Reject")
	expectReply(t, "before activation", radclient(t, s.radius, "bob", "bobpw"+totpCode(t, bobKey)), "Access-Reject")

	for r, want := range map[string]float64{
		"replayed_code": 2, "bad_code": 1, "bad_password": 1, "unknown_user": 1, "not_yet_active": 1, "locked_out": 0,
	} {
		if got := s.metric(t, reason(r)); got != want {
			t.Errorf("%s = %v, want %v", reason(r), got, want)
		}
	}
	if got := s.metric(t, `radotp_radius_requests_total{code="access_accept"}`); got != 2 {
		t.Errorf("accepts = %v, want 2", got)
	}

	time.Sleep(time.Until(bobActive) + 100*time.Millisecond)
	expectReply(t, "after activation", radclient(t, s.radius, "bob", "bobpw"+totpCode(t, bobKey)), "Access-Accept")

	// Lockout after max_failures, then `radotp user unlock`.
	for i := range 5 {
		expectReply(t, fmt.Sprintf("dave failure %d", i), radclient(t, s.radius, "dave", "nope"+totpCode(t, daveKey)), "Access-Reject")
	}
	expectReply(t, "dave locked", radclient(t, s.radius, "dave", "davepw"+totpCode(t, daveKey)), "Access-Reject")
	if got := s.metric(t, reason("locked_out")); got != 1 {
		t.Errorf("locked_out = %v, want 1", got)
	}
	show := mustAdmin(t, cfg, "", "user", "show", "dave", "--json")
	var dv struct {
		LockedUntil *time.Time `json:"locked_until"`
	}
	if err := json.Unmarshal([]byte(show), &dv); err != nil || dv.LockedUntil == nil {
		t.Fatalf("user show --json of a locked user: %v\n%s", err, show)
	}
	mustAdmin(t, cfg, "", "user", "unlock", "dave")
	expectReply(t, "dave unlocked", radclient(t, s.radius, "dave", "davepw"+totpCode(t, daveKey)), "Access-Accept")

	// Status-Server (RFC 5997).
	cmd := exec.Command("radclient", "-x", "-r", "1", "-t", "3", s.radius, "status", e2eSecret)
	cmd.Stdin = strings.NewReader("Message-Authenticator = 0x00\n")
	out, _ := cmd.CombinedOutput()
	if m := received.FindSubmatch(out); m == nil || string(m[1]) != "Access-Accept" {
		t.Fatalf("Status-Server: %s", out)
	}

	// Restart: the accepted code stays used (replay state is on disk).
	s.stop(t)
	s = startServer(t, cfg)
	expectReply(t, "accepted code after restart", radclient(t, s.radius, "alice", "hunter2"+code), "Access-Reject")
	if got := s.metric(t, reason("replayed_code")); got != 1 {
		t.Errorf("after restart replayed_code = %v, want 1 (log:\n%s)", got, s.logs())
	}
	// The log has one line per decision and never the password or the code.
	s.stop(t)
	logs := s.logs()
	if !strings.Contains(logs, "reason=replayed_code") {
		t.Errorf("no decision line with the reason in the log:\n%s", logs)
	}
	if strings.Contains(logs, "hunter2") || strings.Contains(logs, code) {
		t.Errorf("log contains a password or a code:\n%s", logs)
	}
}

func TestCLI(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, "")
	mustAdmin(t, cfg, "pw\n", "user", "add", "alice", "--email", "alice@example.org", "--password-stdin", "--policy", "optional")
	// Flags before the positional argument work as well as after.
	mustAdmin(t, cfg, "", "user", "add", "--policy", "disabled", "bob")

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"Duplicate", []string{"user", "add", "alice"}, 1, `user "alice" already exists`},
		{"UnknownUser", []string{"user", "show", "nobody"}, 1, `no user "nobody"`},
		{"UnknownUserToken", []string{"token", "add", "nobody"}, 1, `no user "nobody"`},
		{"BadPolicy", []string{"user", "add", "carol", "--policy", "maybe"}, 2, `--policy "maybe": must be one of`},
		{"BadSecret", []string{"token", "add", "alice", "--secret", "not base32!"}, 1, "--secret: not base32"},
		{"ShortSecret", []string{"token", "add", "alice", "--secret", "JBSWY3DP"}, 1, "at least 16"},
		{"MissingName", []string{"user", "show"}, 2, "needs a user NAME"},
		{"UnknownCommand", []string{"user", "frobnicate"}, 2, `unknown command "user frobnicate"`},
		{"NoPasswordOnStdin", []string{"user", "passwd", "alice"}, 1, "no password on stdin"},
		{"ControlCharName", []string{"user", "add", "ev\x01l"}, 1, "control character"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs, code := admin(t, cfg, "", tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.want) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errs, tc.code, tc.want)
			}
			if strings.Count(strings.TrimSpace(strings.SplitN(errs, "\nusage:", 2)[0]), "\n") != 0 {
				t.Errorf("error is not one line: %q", errs)
			}
		})
	}

	// An existing key imported with --secret (any case, grouped).
	out := mustAdmin(t, cfg, "", "token", "add", "alice", "--secret", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq", "--activate-now")
	if !strings.Contains(out, "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") {
		t.Fatalf("imported key not in URI:\n%s", out)
	}
	// The same from stdin (not visible in ps or shell history).
	mustAdmin(t, cfg, "", "token", "reset", "alice")
	out = mustAdmin(t, cfg, "gezdgnbvgy3tqojqgezdgnbvgy3tqojq\n", "token", "add", "alice", "--secret-stdin", "--activate-now")
	if !strings.Contains(out, "secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") {
		t.Fatalf("key from stdin not in URI:\n%s", out)
	}

	var users []struct {
		Name            string `json:"name"`
		Email           string `json:"email"`
		EffectivePolicy string `json:"effective_policy"`
		HasPassword     bool   `json:"has_password"`
		Tokens          []struct {
			State string `json:"state"`
		} `json:"tokens"`
	}
	if err := json.Unmarshal([]byte(mustAdmin(t, cfg, "", "user", "list", "--json")), &users); err != nil {
		t.Fatal(err)
	}
	if len(users) != 2 || users[0].Name != "alice" || users[0].Email != "alice@example.org" ||
		users[0].EffectivePolicy != "optional" || !users[0].HasPassword || len(users[0].Tokens) != 1 ||
		users[0].Tokens[0].State != "active" || users[1].EffectivePolicy != "disabled" || users[1].HasPassword {
		t.Fatalf("user list --json: %+v", users)
	}
	if out := mustAdmin(t, cfg, "", "token", "reset", "alice"); !strings.Contains(out, "removed 1 token") {
		t.Fatalf("token reset: %s", out)
	}
	mustAdmin(t, cfg, "", "user", "delete", "bob")
	if _, _, code := admin(t, cfg, "", "user", "show", "bob"); code != 1 {
		t.Fatal("deleted user still shown")
	}

	// check-config: the example file passes; a typo is named.
	if out := mustAdmin(t, "../../config.example.toml", "", "check-config"); !strings.Contains(out, "OK") {
		t.Fatalf("check-config example: %s", out)
	}
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("[radius]\nlistn = \"127.0.0.1:1812\"\n"), 0o600)
	if _, errs, code := admin(t, bad, "", "check-config"); code != 1 || !strings.Contains(errs, "radius.listn") {
		t.Fatalf("check-config with a typo: exit %d, %s", code, errs)
	}
	// check-config builds the first-factor backends: a CA file without a
	// certificate is caught before serve.
	os.WriteFile(filepath.Join(dir, "bad-ca.pem"), []byte("not a certificate\n"), 0o600)
	ldapCfg := filepath.Join(dir, "ldap.toml")
	os.WriteFile(ldapCfg, []byte(`[first_factor]
backend = "ldap"
[first_factor.ldap]
urls = ["ldaps://127.0.0.1:1"]
bind_dn_template = "uid=%s,ou=people,dc=example,dc=org"
ca_file = "bad-ca.pem"
`), 0o600)
	if _, errs, code := admin(t, ldapCfg, "", "check-config"); code != 1 || !strings.Contains(errs, "bad-ca.pem") {
		t.Fatalf("check-config with a bad LDAP CA file: exit %d, %s", code, errs)
	}
	if _, errs, code := admin(t, filepath.Join(dir, "missing.toml"), "", "check-config"); code != 1 || !strings.Contains(errs, "does not exist") {
		t.Fatalf("missing config: exit %d, %s", code, errs)
	}
}
