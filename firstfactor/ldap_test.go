package firstfactor

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/radotp/radotp/firstfactor/slapdtest"
	"github.com/radotp/radotp/verifier"
)

// These tests bind to a real slapd (Debian slapd + ldap-utils), started on
// loopback ports with its own CA; without slapd they skip (RADOTP_E2E=1:
// fail).

const (
	template = "uid=%s," + slapdtest.People
	filter   = "(&(objectClass=inetOrgPerson)(uid=%s))"
	service  = "cn=radotp," + slapdtest.Suffix
	vpnGroup = "cn=vpn," + slapdtest.Groups
	no2FA    = "cn=no-2fa," + slapdtest.Groups
	posixVPN = "cn=posix-vpn," + slapdtest.Groups
)

// directory starts slapd with the users and groups of these tests.
func directory(t *testing.T) *slapdtest.Server {
	t.Helper()
	s := slapdtest.Start(t)
	s.Add(t, slapdtest.User("alice", "alice-pw")+
		slapdtest.User("bob", "bob-pw")+
		slapdtest.User("carol", "carol-pw")+
		slapdtest.User("admin", "admin-pw")+
		slapdtest.User("jürgen", "jürgen-pw")+
		slapdtest.Group("vpn", "alice", "carol", "jürgen")+
		slapdtest.Group("no-2fa", "carol")+
		fmt.Sprintf("dn: %s\nobjectClass: posixGroup\ncn: posix-vpn\ngidNumber: 5000\nmemberUid: alice\n\n", posixVPN)+
		fmt.Sprintf("dn: %s\nobjectClass: organizationalRole\nobjectClass: simpleSecurityObject\ncn: radotp\nuserPassword: %s\n\n",
			service, slapdtest.SSHA("service-pw")))
	return s
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newLDAP(t *testing.T, o LDAPOptions) *LDAP {
	t.Helper()
	if o.Logger == nil {
		o.Logger = testLogger(t)
	}
	if o.Timeout == 0 {
		o.Timeout = 2 * time.Second
	}
	l, err := NewLDAP(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func templateMode(s *slapdtest.Server) LDAPOptions {
	return LDAPOptions{URLs: []string{s.URL}, BindDNTemplate: template}
}

func searchMode(s *slapdtest.Server) LDAPOptions {
	return LDAPOptions{URLs: []string{s.URL}, BaseDN: slapdtest.Suffix, Filter: filter, BindDN: service, BindPassword: "service-pw"}
}

type checkCase struct {
	name, user, pw string
	want           verifier.FirstFactorResult
}

// expect runs the cases against b; each must be a result, never an error.
func expect(t *testing.T, b verifier.FirstFactor, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := b.Check(context.Background(), tc.user, nil, []byte(tc.pw))
			if err != nil {
				t.Fatalf("Check(%q): error %v, want result %+v", tc.user, err, tc.want)
			}
			if got != tc.want {
				t.Fatalf("Check(%q, %q) = %+v, want %+v", tc.user, tc.pw, got, tc.want)
			}
		})
	}
}

var (
	ok       = verifier.FirstFactorResult{OK: true}
	bad      = verifier.FirstFactorResult{}
	unknown  = verifier.FirstFactorResult{Reason: verifier.ReasonUnknownUser}
	disabled = verifier.FirstFactorResult{Reason: verifier.ReasonUserDisabled}
	optional = verifier.FirstFactorResult{OK: true, Policy: verifier.PolicyOptional}
)

func TestLDAP(t *testing.T) {
	s := directory(t)
	basic := []checkCase{
		{"RightPassword", "alice", "alice-pw", ok},
		{"WrongPassword", "alice", "bob-pw", bad},
		{"EmptyPassword", "alice", "", bad}, // would be an unauthenticated bind, which "succeeds"
		{"Unicode", "jürgen", "jürgen-pw", ok},
	}

	t.Run("Template", func(t *testing.T) {
		l := newLDAP(t, templateMode(s))
		expect(t, l, append(basic,
			checkCase{"UnknownUser", "mallory", "alice-pw", bad}, // the directory cannot tell in a bind
			// DN injection: rejected before anything is sent.
			checkCase{"Comma", "alice,ou=people", "alice-pw", unknown},
			checkCase{"Plus", "alice+cn=alice", "alice-pw", unknown},
			checkCase{"Equals", "uid=alice", "alice-pw", unknown},
			checkCase{"Backslash", `alice\`, "alice-pw", unknown},
			checkCase{"EscapedComma", `alice\2c`, "alice-pw", unknown},
			checkCase{"Quote", `"alice"`, "alice-pw", unknown},
			checkCase{"Semicolon", "alice;x", "alice-pw", unknown},
			checkCase{"LeadingHash", "#alice", "alice-pw", unknown},
			checkCase{"LeadingSpace", " alice", "alice-pw", unknown},
			checkCase{"TrailingSpace", "alice ", "alice-pw", unknown},
			checkCase{"NUL", "alice\x00", "alice-pw", unknown},
			checkCase{"Newline", "alice\n", "alice-pw", unknown},
			checkCase{"Empty", "", "alice-pw", unknown},
			checkCase{"Star", "*", "alice-pw", bad},
			checkCase{"FilterInjection", "ali*)(uid=*", "alice-pw", unknown}, // '='
			checkCase{"FilterChars", "ali*)(|(cn", "alice-pw", bad},          // harmless in a DN; no such entry
		))
	})

	t.Run("Search", func(t *testing.T) {
		l := newLDAP(t, searchMode(s))
		expect(t, l, append(basic,
			checkCase{"UnknownUser", "mallory", "alice-pw", unknown},
			// Filter injection: escaped, matched literally, so no entry.
			checkCase{"Star", "*", "alice-pw", unknown},
			checkCase{"Prefix", "ali*", "alice-pw", unknown},
			checkCase{"CloseParen", "alice)(objectClass=*", "alice-pw", unknown},
			checkCase{"Or", "admin)(|(uid=*", "admin-pw", unknown},
			checkCase{"OrAlice", "*)(|(uid=alice", "alice-pw", unknown},
			checkCase{"Backslash", `alice\`, "alice-pw", unknown},
			checkCase{"EscapedStar", `ali\2a`, "alice-pw", unknown},
			checkCase{"NUL", "alice\x00", "alice-pw", unknown},
			// DN specials are harmless in a filter; no such user.
			checkCase{"Comma", "alice,ou=people", "alice-pw", unknown},
			checkCase{"Plus", "alice+cn=x", "alice-pw", unknown},
		))
	})

	t.Run("AnonymousSearch", func(t *testing.T) {
		o := searchMode(s)
		o.BindDN, o.BindPassword = "", ""
		expect(t, newLDAP(t, o), []checkCase{
			{"Right", "alice", "alice-pw", ok},
			{"Wrong", "alice", "x", bad},
			{"Unknown", "nobody", "x", unknown},
		})
	})

	t.Run("Groups", func(t *testing.T) {
		groups := []checkCase{
			{"Member", "alice", "alice-pw", ok},
			{"Exempt", "carol", "carol-pw", optional},
			{"NotMember", "bob", "bob-pw", disabled},
			{"NotMemberWrongPassword", "bob", "alice-pw", bad}, // the password is checked first
			{"UnicodeMember", "jürgen", "jürgen-pw", ok},
		}
		for _, mode := range []struct {
			name string
			o    LDAPOptions
		}{
			{"SearchAsService", searchMode(s)},
			{"TemplateAsUser", templateMode(s)},
		} {
			t.Run(mode.name, func(t *testing.T) {
				o := mode.o
				o.RequiredGroup, o.ExemptGroup = vpnGroup, no2FA
				expect(t, newLDAP(t, o), groups)
			})
		}
		t.Run("MemberUid", func(t *testing.T) {
			o := templateMode(s)
			o.RequiredGroup, o.GroupAttribute = posixVPN, "memberUid"
			expect(t, newLDAP(t, o), []checkCase{
				{"Member", "alice", "alice-pw", ok},
				{"NotMember", "carol", "carol-pw", disabled},
			})
		})
		t.Run("MissingGroup", func(t *testing.T) {
			o := searchMode(s)
			o.RequiredGroup = "cn=nonexistent," + slapdtest.Groups
			expect(t, newLDAP(t, o), []checkCase{{"Nobody", "alice", "alice-pw", disabled}})
		})
	})

	t.Run("TLS", func(t *testing.T) {
		ldaps := templateMode(s)
		ldaps.URLs, ldaps.RootCAs = []string{s.TLSURL}, s.CAPool
		startTLS := templateMode(s)
		startTLS.StartTLS, startTLS.RootCAs = true, s.CAPool
		for name, o := range map[string]LDAPOptions{"LDAPS": ldaps, "StartTLS": startTLS} {
			t.Run(name, func(t *testing.T) {
				l := newLDAP(t, o)
				expect(t, l, []checkCase{{"Right", "alice", "alice-pw", ok}, {"Wrong", "alice", "x", bad}})
				c, err := l.get(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				defer l.put(c, true)
				if _, isTLS := c.TLSConnectionState(); !isTLS {
					t.Error("connection is not TLS")
				}
			})
			// A certificate we do not trust: unavailable, never a result.
			t.Run(name+"UntrustedCA", func(t *testing.T) {
				o.RootCAs = x509.NewCertPool()
				l := newLDAP(t, o)
				_, err := l.Check(context.Background(), "alice", nil, []byte("alice-pw"))
				if !errors.Is(err, verifier.ErrFirstFactorUnavailable) || !strings.Contains(err.Error(), "certificate") {
					t.Fatalf("untrusted certificate: %v, want ErrFirstFactorUnavailable about the certificate", err)
				}
			})
		}
	})

	t.Run("WrongServicePassword", func(t *testing.T) {
		o := searchMode(s)
		o.BindPassword = "wrong"
		l := newLDAP(t, o)
		_, err := l.Check(context.Background(), "alice", nil, []byte("alice-pw"))
		if !errors.Is(err, verifier.ErrFirstFactorUnavailable) {
			t.Fatalf("service account rejected: %v, want ErrFirstFactorUnavailable (not the user's fault)", err)
		}
	})

	t.Run("Pool", func(t *testing.T) {
		o := searchMode(s)
		o.PoolSize = 2
		l := newLDAP(t, o)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Go(func() {
				user, pw, want := "alice", "alice-pw", ok
				if i%2 == 1 {
					user, pw, want = "bob", "wrong", bad
				}
				got, err := l.Check(context.Background(), user, nil, []byte(pw))
				if err != nil || got != want {
					errs <- fmt.Errorf("%s: %+v, %v", user, got, err)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := l.dials.Load(); n < 1 || n > 2 {
			t.Errorf("%d connections opened for 40 checks with pool size 2", n)
		}
		// The connection bound as bob last is re-bound as the service
		// account before the next search: the search result is right.
		expect(t, l, []checkCase{{"AfterUserBind", "carol", "carol-pw", ok}})
	})

	t.Run("Closed", func(t *testing.T) {
		l := newLDAP(t, templateMode(s))
		l.Close()
		if _, err := l.Check(context.Background(), "alice", nil, []byte("alice-pw")); !errors.Is(err, verifier.ErrFirstFactorUnavailable) {
			t.Fatalf("after Close: %v", err)
		}
	})
}

// blackhole accepts TCP connections and never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// closedPort returns a loopback address where nothing listens.
func closedPort(t *testing.T) string {
	return fmt.Sprintf("127.0.0.1:%d", slapdtest.FreePort(t))
}

func wantUnavailable(t *testing.T, l verifier.FirstFactor, within time.Duration) error {
	t.Helper()
	start := time.Now()
	res, err := l.Check(context.Background(), "alice", nil, []byte("alice-pw"))
	if !errors.Is(err, verifier.ErrFirstFactorUnavailable) {
		t.Fatalf("got %+v, %v; want ErrFirstFactorUnavailable (a down directory is not a wrong password)", res, err)
	}
	if d := time.Since(start); d > within {
		t.Errorf("took %v, want under %v", d, within)
	}
	return err
}

func TestLDAPUnavailable(t *testing.T) {
	t.Run("ConnectionRefused", func(t *testing.T) {
		l := newLDAP(t, LDAPOptions{URLs: []string{"ldap://" + closedPort(t)}, BindDNTemplate: template})
		wantUnavailable(t, l, time.Second)
	})
	t.Run("NoAnswer", func(t *testing.T) {
		l := newLDAP(t, LDAPOptions{URLs: []string{"ldap://" + blackhole(t)}, BindDNTemplate: template, Timeout: 300 * time.Millisecond})
		err := wantUnavailable(t, l, 2*time.Second)
		if !strings.Contains(err.Error(), "timed out") {
			t.Errorf("error does not say it timed out: %v", err)
		}
	})
	t.Run("NoTLSHandshake", func(t *testing.T) {
		l := newLDAP(t, LDAPOptions{URLs: []string{"ldaps://" + blackhole(t)}, BindDNTemplate: template, Timeout: 300 * time.Millisecond})
		wantUnavailable(t, l, 2*time.Second)
	})
	t.Run("NoStartTLSAnswer", func(t *testing.T) {
		l := newLDAP(t, LDAPOptions{URLs: []string{"ldap://" + blackhole(t)}, StartTLS: true, BindDNTemplate: template, Timeout: 300 * time.Millisecond})
		wantUnavailable(t, l, 2*time.Second)
	})
	t.Run("ContextEnds", func(t *testing.T) {
		l := newLDAP(t, LDAPOptions{URLs: []string{"ldap://" + blackhole(t)}, BindDNTemplate: template, Timeout: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := l.Check(ctx, "alice", nil, []byte("alice-pw"))
		if !errors.Is(err, verifier.ErrFirstFactorUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v; want ErrFirstFactorUnavailable and DeadlineExceeded", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("took %v after a 200ms context", d)
		}
	})
	t.Run("PoolFullContextEnds", func(t *testing.T) {
		l := newLDAP(t, LDAPOptions{URLs: []string{"ldap://" + blackhole(t)}, BindDNTemplate: template, Timeout: time.Minute, PoolSize: 1})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.Check(ctx, "alice", nil, []byte("alice-pw")); close(done) }() // holds the only slot
		time.Sleep(50 * time.Millisecond)
		ctx2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		if _, err := l.Check(ctx2, "bob", nil, []byte("bob-pw")); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("waiting for a pool slot: %v", err)
		}
		cancel()
		<-done
	})
}

func TestLDAPFailover(t *testing.T) {
	s := directory(t)
	t.Run("DeadThenLive", func(t *testing.T) {
		o := templateMode(s)
		o.URLs = []string{"ldap://" + closedPort(t), "ldap://" + blackhole(t), s.URL}
		o.Timeout = 300 * time.Millisecond
		l := newLDAP(t, o)
		expect(t, l, []checkCase{{"First", "alice", "alice-pw", ok}})
		// The dead servers are now tried last: a new connection goes to the
		// live one at once.
		l.Close()
		l2 := newLDAP(t, o)
		l2.servers = l.servers
		start := time.Now()
		expect(t, l2, []checkCase{{"Second", "alice", "alice-pw", ok}})
		if d := time.Since(start); d > 250*time.Millisecond {
			t.Errorf("second check took %v: the dead servers were tried first", d)
		}
	})

	t.Run("DirectoryDownAndBack", func(t *testing.T) {
		l := newLDAP(t, templateMode(s))
		expect(t, l, []checkCase{{"Up", "alice", "alice-pw", ok}}) // leaves a pooled connection
		s.Stop(t)
		wantUnavailable(t, l, 5*time.Second)
		_, err := l.Check(context.Background(), "alice", nil, []byte("wrong"))
		if !errors.Is(err, verifier.ErrFirstFactorUnavailable) {
			t.Fatalf("wrong password while down: %v; must be unavailable, not a wrong password", err)
		}
		s.Restart(t)
		expect(t, l, []checkCase{{"Back", "alice", "alice-pw", ok}})
	})

	t.Run("StaleConnectionRetried", func(t *testing.T) {
		l := newLDAP(t, templateMode(s))
		expect(t, l, []checkCase{{"Pool", "alice", "alice-pw", ok}})
		s.Stop(t)
		s.Restart(t)
		// The pooled connection died with the old slapd; the check goes on
		// on a new one.
		expect(t, l, []checkCase{{"AfterRestart", "alice", "alice-pw", ok}})
		if n := l.dials.Load(); n != 2 {
			t.Errorf("%d connections opened; want 2 (the stale one replaced)", n)
		}
	})
}

func TestNewLDAPErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    LDAPOptions
		want string
	}{
		{"NoURLs", LDAPOptions{BindDNTemplate: template}, "no URLs"},
		{"BadURL", LDAPOptions{URLs: []string{"http://x"}, BindDNTemplate: template}, "not an ldap://"},
		{"StartTLSOnLDAPS", LDAPOptions{URLs: []string{"ldaps://x"}, StartTLS: true, BindDNTemplate: template}, "ldaps:// already"},
		{"NoMode", LDAPOptions{URLs: []string{"ldap://x"}}, "either a bind DN template or a base DN"},
		{"BothModes", LDAPOptions{URLs: []string{"ldap://x"}, BindDNTemplate: template, BaseDN: "dc=x"}, "either a bind DN template or a base DN"},
		{"TemplateNotDN", LDAPOptions{URLs: []string{"ldap://x"}, BindDNTemplate: "uid=%s,,,"}, "is not a DN"},
		{"BadFilter", LDAPOptions{URLs: []string{"ldap://x"}, BaseDN: "dc=x", Filter: "(uid=%s"}, "filter"},
		{"BadBaseDN", LDAPOptions{URLs: []string{"ldap://x"}, BaseDN: "dc", Filter: "(uid=%s)"}, "base DN"},
		{"HalfServiceAccount", LDAPOptions{URLs: []string{"ldap://x"}, BaseDN: "dc=x", Filter: "(uid=%s)", BindDN: "cn=x"}, "both a bind DN and a password"},
		{"BadGroupAttribute", LDAPOptions{URLs: []string{"ldap://x"}, BindDNTemplate: template, GroupAttribute: "a)(b"}, "group attribute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewLDAP(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewLDAP: %v, want an error with %q", err, tc.want)
			}
		})
	}
}
