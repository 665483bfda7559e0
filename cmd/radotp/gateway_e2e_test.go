package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Gateways as users meet them: radclient driving a two-step challenge, auto
// mode, trusted networks, and pam_radius_auth (the SSH gateway path) through
// pamtester.

// writeModeConfig writes a config whose one client (127.0.0.1) has the given
// mode and extra client keys; top is appended before the client.
func writeModeConfig(t *testing.T, dir, mode, clientExtra, top string) string {
	t.Helper()
	cfg := fmt.Sprintf(`
[radius]
listen = "127.0.0.1:0"
[totp]
activation_delay = "0s"
[metrics]
listen = "127.0.0.1:0"
%s
[[client]]
name = "gw"
address = "127.0.0.1"
secret = %q
mode = %q
challenge_prompt = "Code please"
%s
`, top, e2eSecret, mode, clientExtra)
	p := filepath.Join(dir, "radotp.toml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

var (
	stateAttr = regexp.MustCompile(`State = (0x[0-9a-f]+)`)
	replyMsg  = regexp.MustCompile(`Reply-Message = "([^"]*)"`)
)

// radclientSend sends one request built from attribute lines and returns
// the reply code ("timeout" if none) and radclient's whole output.
func radclientSend(t *testing.T, addr string, lines ...string) (string, string) {
	t.Helper()
	return radclientAs(t, addr, e2eSecret, lines...)
}

// radclientAs is radclientSend with another shared secret (a NAS of
// another server, such as a FreeRADIUS in front).
func radclientAs(t *testing.T, addr, secret string, lines ...string) (string, string) {
	t.Helper()
	cmd := exec.Command("radclient", "-x", "-r", "1", "-t", "4", addr, "auth", secret)
	cmd.Stdin = strings.NewReader(strings.Join(append(lines, "Message-Authenticator = 0x00"), "\n") + "\n")
	out, _ := cmd.CombinedOutput()
	if m := received.FindSubmatch(out); m != nil {
		return string(m[1]), string(out)
	}
	if bytes.Contains(out, []byte("No reply from server")) {
		return "timeout", string(out)
	}
	t.Fatalf("radclient: unexpected output:\n%s", out)
	return "", ""
}

func TestChallengeWithRadclient(t *testing.T) {
	requireTools(t, "radclient", "oathtool")
	dir := t.TempDir()
	cfg := writeModeConfig(t, dir, "challenge", "", "")
	key := addUser(t, cfg, "alice", "hunter2", "--activate-now")
	s := startServer(t, cfg)

	// Step 1: the password alone gets a challenge with our prompt, no echo.
	got, out := radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2"`)
	expectReply(t, "password only", got, "Access-Challenge")
	st := stateAttr.FindStringSubmatch(out)
	if st == nil || replyMsg.FindStringSubmatch(out)[1] != "Code please" || !strings.Contains(out, "Prompt = No-Echo") {
		t.Fatalf("challenge lacks State, Reply-Message or Prompt:\n%s", out)
	}
	// A wrong password never gets a challenge.
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter3"`)
	expectReply(t, "wrong password", got, "Access-Reject")

	// A forged State, and the State given to another user, are rejected.
	forged := st[1][:len(st[1])-2] + fmt.Sprintf("%02x", 0xff^mustHexByte(t, st[1][len(st[1])-2:]))
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "`+totpCode(t, key)+`"`, "State = "+forged)
	expectReply(t, "forged State", got, "Access-Reject")
	addUser(t, cfg, "bob", "bobpw", "--activate-now")
	got, _ = radclientSend(t, s.radius, `User-Name = "bob"`, `User-Password = "`+totpCode(t, key)+`"`, "State = "+st[1])
	expectReply(t, "State of another user", got, "Access-Reject")

	// Step 2: the code with the State.
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "`+totpCode(t, key)+`"`, "State = "+st[1])
	expectReply(t, "code with State", got, "Access-Accept")
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "`+totpCode(t, key)+`"`, "State = "+st[1])
	expectReply(t, "same State and code again", got, "Access-Reject") // the State is spent

	for sample, want := range map[string]float64{
		reason("bad_state"): 3, reason("bad_password"): 1,
		`radotp_radius_requests_total{code="access_challenge"}`: 1,
	} {
		if got := s.metric(t, sample); got != want {
			t.Errorf("%s = %v, want %v", sample, got, want)
		}
	}

	// The audit log answers "why did alice fail?" (entries are written in
	// batches; stopping the server flushes them).
	s.stop(t)
	var entries []struct {
		User, Client, Result, Reason string
	}
	if err := json.Unmarshal([]byte(mustAdmin(t, cfg, "", "audit", "--user", "alice", "--json")), &entries); err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, e := range entries {
		if e.User != "alice" || e.Client != "gw" {
			t.Fatalf("audit entry %+v", e)
		}
		seq = append(seq, e.Result+":"+e.Reason)
	}
	want := "challenge: reject:bad_password reject:bad_state accept: reject:bad_state"
	if strings.Join(seq, " ") != want {
		t.Fatalf("audit for alice:\n got %s\nwant %s", strings.Join(seq, " "), want)
	}
	if out := mustAdmin(t, cfg, "", "audit"); !strings.Contains(out, "bad_state") || strings.Contains(out, "hunter2") {
		t.Fatalf("radotp audit table:\n%s", out)
	}
}

func mustHexByte(t *testing.T, s string) int {
	var b int
	if _, err := fmt.Sscanf(s, "%02x", &b); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAutoModeAndTrustedNetworks(t *testing.T) {
	requireTools(t, "radclient", "oathtool")
	dir := t.TempDir()
	cfg := writeModeConfig(t, dir, "auto", "", "[policy]\ntrusted_networks = [\"192.0.2.0/24\"]\n")
	key := addUser(t, cfg, "alice", "hunter2", "--activate-now")
	s := startServer(t, cfg)

	got, _ := radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2`+totpCode(t, key)+`"`)
	expectReply(t, "auto: password+code", got, "Access-Accept")
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2"`)
	expectReply(t, "auto: password alone", got, "Access-Challenge")
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2"`, `Calling-Station-Id = "192.0.2.7"`)
	expectReply(t, "trusted network: password alone", got, "Access-Accept")
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2"`, `Calling-Station-Id = "198.51.100.7"`)
	expectReply(t, "other network: password alone", got, "Access-Challenge")
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter3"`, `Calling-Station-Id = "192.0.2.7"`)
	expectReply(t, "trusted network: wrong password", got, "Access-Reject")

	// user show explains the policy.
	out := mustAdmin(t, cfg, "", "user", "show", "alice")
	if !strings.Contains(out, "policy:    required (set by policy.default)") || !strings.Contains(out, "trusted networks 192.0.2.0/24") {
		t.Fatalf("user show:\n%s", out)
	}
	mustAdmin(t, cfg, "", "user", "set", "alice", "--policy", "disabled")
	got, _ = radclientSend(t, s.radius, `User-Name = "alice"`, `User-Password = "hunter2"`)
	expectReply(t, "policy disabled by user set", got, "Access-Accept")
	if out := mustAdmin(t, cfg, "", "user", "show", "alice"); !strings.Contains(out, "policy:    disabled (set by this user)") {
		t.Fatalf("user show after set:\n%s", out)
	}
}

// pam_radius_auth is how sshd (and sudo, login) asks RADIUS: the SSH gateway
// path. The PAM service file must live in /etc/pam.d, so this needs root.
func TestPAMRadius(t *testing.T) {
	requireTools(t, "pamtester", "oathtool")
	if _, err := os.Stat("/lib/x86_64-linux-gnu/security/pam_radius_auth.so"); err != nil {
		missing(t, "pam_radius_auth.so (apt-get install libpam-radius-auth)")
	}
	if os.Geteuid() != 0 {
		missing(t, "root (the test writes a PAM service file to /etc/pam.d)")
	}
	for _, mode := range []string{"append", "challenge"} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			// pam_radius_auth 2.0 sends no Message-Authenticator; such a
			// client is excused, and a Proxy-State without it is dropped.
			cfg := writeModeConfig(t, dir, mode, "require_message_authenticator = false", "")
			key := addUser(t, cfg, "alice", "hunter2", "--activate-now")
			s := startServer(t, cfg)

			conf := filepath.Join(dir, "pam_radius_auth.conf")
			if err := os.WriteFile(conf, []byte(fmt.Sprintf("%s %s 3\n", s.radius, e2eSecret)), 0o600); err != nil {
				t.Fatal(err)
			}
			service := "radotp-e2e-" + filepath.Base(dir)
			pamFile := filepath.Join("/etc/pam.d", service)
			if err := os.WriteFile(pamFile, []byte("auth required pam_radius_auth.so conf="+conf+"\naccount required pam_permit.so\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(pamFile) })

			pam := func(input string) (bool, string) {
				cmd := exec.Command("pamtester", service, "alice", "authenticate")
				cmd.Stdin = strings.NewReader(input)
				out, err := cmd.CombinedOutput()
				return err == nil, string(out)
			}
			right, wrong := "hunter2"+totpCode(t, key)+"\n", "hunter2"+notCode(totpCode(t, key))+"\n"
			if mode == "challenge" {
				right = "hunter2\n" + totpCode(t, key) + "\n"
				wrong = "hunter2\n" + notCode(totpCode(t, key)) + "\n"
			}
			if ok, out := pam(wrong); ok {
				t.Fatalf("wrong code authenticated:\n%s", out)
			}
			ok, out := pam(right)
			if !ok {
				t.Fatalf("pamtester failed:\n%s\nradotp log:\n%s", out, s.logs())
			}
			if mode == "challenge" && !strings.Contains(out, "Code please") {
				t.Fatalf("pam_radius did not show our prompt:\n%s", out)
			}
			if ok, _ := pam(right); ok {
				t.Fatal("the same code authenticated twice")
			}
			if got := s.metric(t, reason("replayed_code")); got != 1 {
				t.Errorf("replayed_code = %v, want 1", got)
			}
		})
	}
}

// missing skips, or fails under RADOTP_E2E=1, naming what is missing.
func missing(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("RADOTP_E2E") == "1" {
		t.Fatal("RADOTP_E2E=1: missing " + what)
	}
	t.Skip("missing " + what)
}
