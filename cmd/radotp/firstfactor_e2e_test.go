package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/radotp/radotp/config"
	"github.com/radotp/radotp/firstfactor"
	"github.com/radotp/radotp/firstfactor/slapdtest"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// The first factor from where passwords live: a real slapd, and a second
// radotp as the upstream RADIUS server, with the real binary and radclient
// as the NAS.

// radclientQuick is radclient with a 1 s timeout and no retry, for requests
// that are expected to be dropped.
func radclientQuick(t *testing.T, addr, user, pw string) string {
	t.Helper()
	in := fmt.Sprintf("User-Name = %q\nUser-Password = %q\nMessage-Authenticator = 0x00\n", user, pw)
	cmd := exec.Command("radclient", "-x", "-r", "1", "-t", "1", addr, "auth", e2eSecret)
	cmd.Stdin = strings.NewReader(in)
	out, _ := cmd.CombinedOutput()
	if m := received.FindSubmatch(out); m != nil {
		return string(m[1])
	}
	if strings.Contains(string(out), "No reply from server") {
		return "timeout"
	}
	t.Fatalf("radclient: unexpected output:\n%s", out)
	return ""
}

// userState reads failures and locked_until of a user from the CLI.
func userState(t *testing.T, cfg, name string) (failures int, locked bool) {
	t.Helper()
	var u struct {
		Failures    int        `json:"failures"`
		LockedUntil *time.Time `json:"locked_until"`
	}
	out := mustAdmin(t, cfg, "", "user", "show", name, "--json")
	if err := json.Unmarshal([]byte(out), &u); err != nil {
		t.Fatalf("user show --json: %v\n%s", err, out)
	}
	return u.Failures, u.LockedUntil != nil && u.LockedUntil.After(time.Now())
}

// closedPortAddr is a loopback address (TCP and UDP) where nothing listens.
func closedPortAddr(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", slapdtest.FreePort(t))
}

const dropUnavailable = `radotp_radius_dropped_total{reason="first_factor_unavailable"}`

func TestLDAPFirstFactorEndToEnd(t *testing.T) {
	requireTools(t, "radclient", "oathtool")
	dir := slapdtest.Start(t)
	dir.Add(t, slapdtest.User("alice", "alice-pw")+slapdtest.User("carol", "carol-pw"))

	// ldaps with the test CA, after a URL where nothing listens (failover).
	cfg := writeModeConfig(t, t.TempDir(), "append", "", fmt.Sprintf(`
[lockout]
max_failures = 2
[first_factor]
backend = "ldap"
auto_create_users = true
[first_factor.ldap]
urls = ["ldap://%s", %q]
ca_file = %q
bind_dn_template = "uid=%%s,%s"
timeout = "1s"
`, closedPortAddr(t), dir.TLSURL, dir.CAFile, slapdtest.People))
	key := addTokenUser(t, cfg, "alice")
	s := startServer(t, cfg)

	code := totpCode(t, key)
	expectReply(t, "wrong directory password", radclient(t, s.radius, "alice", "alice-WRONG"+code), "Access-Reject")
	expectReply(t, "unknown to the directory", radclient(t, s.radius, "mallory", "alice-pw"+code), "Access-Reject")
	expectReply(t, "DN injection", radclient(t, s.radius, "alice,ou=people", "alice-pw"+code), "Access-Reject")
	if f, locked := userState(t, cfg, "alice"); f != 1 || locked {
		t.Fatalf("after one wrong password: failures %d, locked %v; want 1, false", f, locked)
	}

	// Directory down: every request is dropped (the NAS would retry or fail
	// over), counted, and none counts towards the lockout (max_failures 2).
	dir.Stop(t)
	for i := range 3 {
		expectReply(t, fmt.Sprintf("directory down #%d", i+1), radclientQuick(t, s.radius, "alice", "alice-pw"+code), "timeout")
	}
	expectReply(t, "directory down, wrong password", radclientQuick(t, s.radius, "alice", "nope"+code), "timeout")
	if got := s.metric(t, dropUnavailable); got != 4 {
		t.Errorf("%s = %v, want 4\n%s", dropUnavailable, got, s.logs())
	}
	if f, locked := userState(t, cfg, "alice"); f != 1 || locked {
		t.Fatalf("after the directory was down: failures %d, locked %v; want 1, false (no lockout)", f, locked)
	}

	// Back: right password + code is accepted.
	dir.Restart(t)
	expectReply(t, "directory back", radclient(t, s.radius, "alice", "alice-pw"+code), "Access-Accept")

	// A user only the directory knows is created on the first right
	// password (auto_create_users), then needs a token (policy required).
	expectReply(t, "directory-only user", radclient(t, s.radius, "carol", "carol-pw123456"), "Access-Reject")
	if got := s.metric(t, reason("not_enrolled")); got != 1 {
		t.Errorf("not_enrolled = %v, want 1\n%s", got, s.logs())
	}
	mustAdmin(t, cfg, "", "user", "show", "carol")
	if _, _, code := admin(t, cfg, "", "user", "show", "mallory"); code == 0 {
		t.Error("a user the directory rejected was created")
	}
	if strings.Contains(s.logs(), "alice-pw") || strings.Contains(s.logs(), "carol-pw") {
		t.Errorf("a password is in the log:\n%s", s.logs())
	}
}

// addTokenUser adds a user without a local password (the backend has it)
// and an active token, and returns the token's key.
func addTokenUser(t *testing.T, cfg, name string) string {
	t.Helper()
	mustAdmin(t, cfg, "", "user", "add", name)
	out := mustAdmin(t, cfg, "", "token", "add", name, "--activate-now")
	m := keyLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("token add printed no key:\n%s", out)
	}
	return strings.ReplaceAll(m[1], " ", "")
}

func TestUpstreamRadiusFirstFactor(t *testing.T) {
	requireTools(t, "radclient", "oathtool")
	// The upstream: a second radotp that checks passwords only (its client
	// has policy "disabled"), as an NPS or FreeRADIUS in front of a
	// directory would.
	upCfg := writeModeConfig(t, t.TempDir(), "append", `policy = "disabled"`, "")
	mustAdmin(t, upCfg, "bob-pw\n", "user", "add", "bob", "--password-stdin")
	up := startServer(t, upCfg)
	dead := closedPortAddr(t)

	t.Run("Client", func(t *testing.T) {
		r, err := firstfactor.NewRadius(firstfactor.RadiusOptions{
			Servers: []string{dead, up.radius}, Secret: []byte(e2eSecret), Timeout: 500 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			user, pw string
			ok       bool
		}{{"bob", "bob-pw", true}, {"bob", "bob-WRONG", false}, {"nobody", "bob-pw", false}} {
			res, err := r.Check(context.Background(), tc.user, nil, []byte(tc.pw))
			if err != nil || res.OK != tc.ok {
				t.Errorf("Check(%s, %s) = %+v, %v; want OK %v", tc.user, tc.pw, res, err, tc.ok)
			}
		}
		r2, _ := firstfactor.NewRadius(firstfactor.RadiusOptions{
			Servers: []string{up.radius}, Secret: []byte("not-the-secret-0123456789"), Timeout: 200 * time.Millisecond,
		})
		if _, err := r2.Check(context.Background(), "bob", nil, []byte("bob-pw")); !errors.Is(err, verifier.ErrFirstFactorUnavailable) {
			t.Errorf("wrong secret: %v; want unavailable (radotp drops requests it cannot authenticate)", err)
		}
	})

	cfg := writeModeConfig(t, t.TempDir(), "append", "", fmt.Sprintf(`
[first_factor]
backend = "radius"
[first_factor.radius]
servers = [%q, %q]
secret = %q
timeout = "500ms"
retries = 0
`, dead, up.radius, e2eSecret))
	key := addTokenUser(t, cfg, "bob")
	s := startServer(t, cfg)
	code := totpCode(t, key)
	expectReply(t, "upstream rejects", radclient(t, s.radius, "bob", "bob-WRONG"+code), "Access-Reject")
	expectReply(t, "upstream accepts", radclient(t, s.radius, "bob", "bob-pw"+code), "Access-Accept")
	if got := s.metric(t, reason("bad_password")); got != 1 {
		t.Errorf("bad_password = %v, want 1", got)
	}

	up.stop(t)
	expectReply(t, "upstream down", radclientQuick(t, s.radius, "bob", "bob-pw"+notCode(code)), "timeout")
	if got := s.metric(t, dropUnavailable); got != 1 {
		t.Errorf("%s = %v, want 1\n%s", dropUnavailable, got, s.logs())
	}
	if f, _ := userState(t, cfg, "bob"); f != 0 {
		t.Errorf("failures %d after the upstream was down; want 0", f)
	}
}

func TestFirstFactorWiring(t *testing.T) {
	parse := func(src string) *config.Config {
		t.Helper()
		c, err := config.Parse([]byte(src), "radotp.toml", t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	clientTOML := func(name, ff string) string {
		return fmt.Sprintf("[[client]]\nname = %q\naddress = \"192.0.2.%d\"\nsecret = %q\nfirst_factor = %q\n", name, len(name), e2eSecret, ff)
	}
	local := verifier.FirstFactorFunc(func(context.Context, string, *store.User, []byte) (verifier.FirstFactorResult, error) {
		return verifier.FirstFactorResult{}, nil
	})
	cfg := parse(`[first_factor]
backend = "ldap"
[first_factor.ldap]
urls = ["ldaps://ldap.example.org"]
bind_dn_template = "uid=%s,dc=example,dc=org"
` + clientTOML("vpn", "") + clientTOML("jump", "local") + clientTOML("gateway", "none") + clientTOML("ldap1", "ldap"))
	set, closeFF, err := firstFactorFromConfig(cfg, local, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFF()
	if _, ok := set.(*firstFactors).FirstFactor.(*firstfactor.LDAP); !ok {
		t.Fatalf("default backend is %T, want *firstfactor.LDAP", set.(*firstFactors).FirstFactor)
	}
	for _, tc := range []struct {
		client, name string
		want         string
	}{
		{"vpn", "", "<nil>"}, {"ldap1", "ldap", "<nil>"}, // the verifier's default
		{"jump", "local", "verifier.FirstFactorFunc"}, {"gateway", "none", "firstfactor.None"},
	} {
		b, err := clientFirstFactor(set, tc.client, tc.name)
		if got := fmt.Sprintf("%T", b); err != nil || got != tc.want {
			t.Errorf("client %s (first_factor %q): %s, %v; want %s", tc.client, tc.name, got, err, tc.want)
		}
	}
	// A reload naming a backend that was not built at start is refused.
	if _, err := clientFirstFactor(set, "new", "radius"); err == nil || !strings.Contains(err.Error(), "restart") {
		t.Errorf("unbuilt backend: %v", err)
	}
	if _, err := radiusClients(parse(clientTOML("new", "radius")+"[first_factor.radius]\nservers = [\"192.0.2.9:1812\"]\nsecret = \"0123456789abcdef\"\n"), set); err == nil {
		t.Error("radiusClients accepted a client whose backend was not built")
	}
	// [first_factor] changes need a restart; client changes do not.
	if !firstFactorChanged(cfg, parse("")) || firstFactorChanged(parse(""), parse(clientTOML("vpn", "none"))) {
		t.Error("firstFactorChanged")
	}
	// A CA file without certificates stops start-up with a clear error.
	bad := parse("[first_factor]\nbackend = \"ldap\"\n[first_factor.ldap]\nurls = [\"ldaps://x.example.org\"]\nbind_dn_template = \"uid=%s,dc=x\"\n")
	bad.FirstFactor.LDAP.CAFile = "firstfactor.go" // exists, is not PEM
	if _, _, err := firstFactorFromConfig(bad, local, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Errorf("CA file without PEM: %v", err)
	}
}
