package verifier_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

const (
	pwOnly  = "pw"   // the password alone
	pwCode  = "pw+c" // password followed by the current code
	code    = "c"    // the code alone
	pwWrong = "pw+x" // password followed by a wrong code
)

// input builds what a user types.
func input(t *testing.T, kind string, now time.Time) string {
	switch kind {
	case pwOnly:
		return "hunter2"
	case pwCode:
		return "hunter2" + codeAt(t, now)
	case code:
		return codeAt(t, now)
	case pwWrong:
		return "hunter2" + notCode(codeAt(t, now))
	}
	t.Fatalf("input %q", kind)
	return ""
}

func codeAt(t testing.TB, at time.Time) string { return code_(t, at) }

func notCode(c string) string {
	var n int
	fmt.Sscanf(c, "%d", &n)
	return fmt.Sprintf("%06d", (n+500000)%1000000)
}

// Every mode × policy: what a user typing X gets. "challenge" means an
// Access-Challenge; its answer is tested below.
func TestModePolicyTable(t *testing.T) {
	users := map[string]struct {
		policy string
		token  bool
	}{
		"req": {"", true}, "reqNoTok": {"", false},
		"opt": {"optional", true}, "optNoTok": {"optional", false},
		"dis": {"disabled", true}, "disNoTok": {"disabled", false},
	}
	A, R, C := verifier.Accept, verifier.Reject, verifier.Challenge
	type want struct {
		o verifier.Outcome
		r verifier.Reason
	}
	cases := []struct {
		mode  verifier.Mode
		user  string
		input string
		want  want
	}{
		{verifier.ModeAppend, "req", pwCode, want{A, ""}},
		{verifier.ModeAppend, "req", pwOnly, want{R, verifier.ReasonBadCode}},
		{verifier.ModeAppend, "req", pwWrong, want{R, verifier.ReasonBadCode}},
		{verifier.ModeAppend, "req", code, want{R, verifier.ReasonBadPassword}},
		{verifier.ModeAppend, "reqNoTok", pwOnly, want{R, verifier.ReasonNotEnrolled}},
		{verifier.ModeAppend, "reqNoTok", pwCode, want{R, verifier.ReasonNotEnrolled}},
		{verifier.ModeAppend, "opt", pwCode, want{A, ""}},
		{verifier.ModeAppend, "opt", pwOnly, want{R, verifier.ReasonBadCode}},
		{verifier.ModeAppend, "optNoTok", pwOnly, want{A, ""}},
		{verifier.ModeAppend, "dis", pwOnly, want{A, ""}},
		{verifier.ModeAppend, "dis", pwCode, want{R, verifier.ReasonBadPassword}},
		{verifier.ModeAppend, "disNoTok", pwOnly, want{A, ""}},

		{verifier.ModeOTP, "req", code, want{A, ""}},
		{verifier.ModeOTP, "req", pwOnly, want{R, verifier.ReasonBadCode}},
		{verifier.ModeOTP, "reqNoTok", code, want{R, verifier.ReasonNotEnrolled}},
		{verifier.ModeOTP, "opt", code, want{A, ""}},
		{verifier.ModeOTP, "optNoTok", code, want{A, ""}},
		{verifier.ModeOTP, "dis", pwOnly, want{A, ""}},

		{verifier.ModeChallenge, "req", pwOnly, want{C, ""}},
		{verifier.ModeChallenge, "req", pwCode, want{R, verifier.ReasonBadPassword}},
		{verifier.ModeChallenge, "reqNoTok", pwOnly, want{R, verifier.ReasonNotEnrolled}},
		{verifier.ModeChallenge, "opt", pwOnly, want{C, ""}},
		{verifier.ModeChallenge, "optNoTok", pwOnly, want{A, ""}},
		{verifier.ModeChallenge, "dis", pwOnly, want{A, ""}},

		{verifier.ModeAuto, "req", pwOnly, want{C, ""}},
		{verifier.ModeAuto, "req", pwCode, want{A, ""}},
		{verifier.ModeAuto, "req", pwWrong, want{R, verifier.ReasonBadCode}},
		{verifier.ModeAuto, "reqNoTok", pwOnly, want{R, verifier.ReasonNotEnrolled}},
		{verifier.ModeAuto, "opt", pwOnly, want{C, ""}},
		{verifier.ModeAuto, "optNoTok", pwOnly, want{A, ""}},
		{verifier.ModeAuto, "optNoTok", pwCode, want{A, ""}},
		{verifier.ModeAuto, "dis", pwOnly, want{A, ""}},
		{verifier.ModeAuto, "dis", pwCode, want{A, ""}},
		{verifier.ModeAuto, "dis", pwWrong, want{R, verifier.ReasonBadCode}},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%s/%s/%s", tc.mode, tc.user, tc.input), func(t *testing.T) {
			e := newEnv(t)
			u := users[tc.user]
			at := time.Time{}
			if u.token {
				at = t0.Add(-time.Hour)
			}
			e.addUser(t, tc.user, u.policy, at)
			d := e.try(t, tc.user, input(t, tc.input, t0), verifier.Client{Name: "c", Mode: tc.mode})
			expect(t, d, tc.want.o, tc.want.r)
			if d.Outcome == verifier.Challenge && (len(d.State) == 0 || d.Prompt != verifier.DefaultChallengePrompt) {
				t.Fatalf("challenge without State or prompt: %+v", d)
			}
		})
	}
}

// Precedence: user > client > default.
func TestPolicyPrecedence(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "plain", "", time.Time{})
	e.addUser(t, "strict", "required", time.Time{})
	lab := verifier.Client{Name: "lab", Mode: verifier.ModeAppend, Policy: verifier.PolicyDisabled}
	expect(t, e.try(t, "plain", "hunter2", lab), verifier.Accept, "")
	expect(t, e.try(t, "strict", "hunter2", lab), verifier.Reject, verifier.ReasonNotEnrolled)
	e.v.SetSettings(verifier.Settings{Skew: 1, DefaultPolicy: verifier.PolicyOptional, MaxFailures: 3, LockoutDuration: time.Minute})
	expect(t, e.try(t, "plain", "hunter2", appendClient), verifier.Accept, "")
}

func challengeClient(name string) verifier.Client {
	return verifier.Client{Name: name, Mode: verifier.ModeChallenge, ChallengePrompt: "Code?", ChallengeTTL: time.Minute}
}

func (e *env) answer(t *testing.T, user string, c verifier.Client, state []byte, pw string) verifier.Decision {
	t.Helper()
	d, err := e.v.Verify(context.Background(), verifier.Attempt{User: user, Password: []byte(pw), State: state, Client: c})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestChallengeFlow(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	e.addUser(t, "bob", "", t0.Add(-time.Hour))
	vpn := challengeClient("vpn")
	step1 := func(user string) []byte {
		t.Helper()
		d := e.try(t, user, "hunter2", vpn)
		if d.Outcome != verifier.Challenge || d.Prompt != "Code?" || len(d.State) == 0 || len(d.State) > 253 {
			t.Fatalf("step 1: %+v", d)
		}
		return d.State
	}
	st := step1("alice")
	expect(t, e.answer(t, "alice", vpn, st, notCode(codeAt(t, t0))), verifier.Reject, verifier.ReasonBadCode)
	expect(t, e.answer(t, "alice", vpn, st, codeAt(t, t0)), verifier.Accept, "")
	// The same answer again: the State answered one login and is spent.
	expect(t, e.answer(t, "alice", vpn, st, codeAt(t, t0)), verifier.Reject, verifier.ReasonBadState)
	// A new challenge with the used code: the code is used.
	expect(t, e.answer(t, "alice", vpn, step1("alice"), codeAt(t, t0)), verifier.Reject, verifier.ReasonReplayedCode)
	if err := e.db.UnlockUser(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}

	e.clk.Add(30 * time.Second)
	c := codeAt(t, e.clk.Now())
	st = step1("alice")
	t.Run("Forged", func(t *testing.T) {
		for i := range st {
			bad := append([]byte(nil), st...)
			bad[i] ^= 0x40
			expect(t, e.answer(t, "alice", vpn, bad, c), verifier.Reject, verifier.ReasonBadState)
		}
		expect(t, e.answer(t, "alice", vpn, st[:len(st)-1], c), verifier.Reject, verifier.ReasonBadState)
		expect(t, e.answer(t, "alice", vpn, []byte("x"), c), verifier.Reject, verifier.ReasonBadState)
	})
	t.Run("CrossUser", func(t *testing.T) {
		expect(t, e.answer(t, "bob", vpn, st, c), verifier.Reject, verifier.ReasonBadState)
	})
	t.Run("CrossClient", func(t *testing.T) {
		expect(t, e.answer(t, "alice", challengeClient("vpx"), st, c), verifier.Reject, verifier.ReasonBadState)
	})
	t.Run("OtherKey", func(t *testing.T) {
		other := verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Now: e.clk.Now, ChallengeKey: []byte("another key, another deployment")}, settings)
		d, _ := other.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte(c), State: st, Client: vpn})
		expect(t, d, verifier.Reject, verifier.ReasonBadState)
	})
	t.Run("Expired", func(t *testing.T) {
		e.clk.Add(time.Minute)
		expect(t, e.answer(t, "alice", vpn, st, codeAt(t, e.clk.Now())), verifier.Reject, verifier.ReasonBadState)
	})
	// None of the bad States consumed the code or the step.
	st = step1("alice")
	expect(t, e.answer(t, "alice", vpn, st, codeAt(t, e.clk.Now())), verifier.Accept, "")
}

// Two nodes with the same key finish each other's challenges.
func TestChallengeAcrossNodes(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	key := e.db.ChallengeKey()
	node := func() *verifier.Verifier {
		return verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Now: e.clk.Now, ChallengeKey: key}, settings)
	}
	a, b := node(), node()
	vpn := challengeClient("vpn")
	d, _ := a.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte("hunter2"), Client: vpn})
	expect(t, d, verifier.Challenge, "")
	d, _ = b.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte(codeAt(t, t0)), State: d.State, Client: vpn})
	expect(t, d, verifier.Accept, "")
}

func TestWrongPasswordNeverChallenged(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	for _, m := range []verifier.Mode{verifier.ModeChallenge, verifier.ModeAuto} {
		expect(t, e.try(t, "alice", "hunter3", verifier.Client{Name: "c", Mode: m}), verifier.Reject, verifier.ReasonBadPassword)
		expect(t, e.try(t, "mallory", "hunter2", verifier.Client{Name: "c", Mode: m}), verifier.Reject, verifier.ReasonUnknownUser)
	}
}

func TestTrustedNetworks(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	e.v.SetSettings(verifier.Settings{Skew: 1, DefaultPolicy: verifier.PolicyRequired, MaxFailures: 10, LockoutDuration: time.Minute,
		TrustedNetworks: []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("2001:db8::/32")}})
	try := func(station, pw string, c verifier.Client) verifier.Decision {
		d, err := e.v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte(pw), CallingStation: station, Client: c})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, st := range []string{"10.1.2.3", " 10.1.2.3 ", "10.1.2.3:51234", "2001:db8::7", "[2001:db8::7]:1194", "::ffff:10.1.2.3"} {
		expect(t, try(st, "hunter2", appendClient), verifier.Accept, "")
	}
	for _, st := range []string{"10.2.0.1", "00-11-22-33-44-55", "10.1.2.3.evil", "", "+4930123456"} {
		expect(t, try(st, "hunter2", appendClient), verifier.Reject, verifier.ReasonBadCode)
	}
	// Inside, password + a valid code works too, and uses the code; a wrong code is rejected.
	expect(t, try("10.1.2.3", "hunter2"+codeAt(t, t0), appendClient), verifier.Accept, "")
	expect(t, try("10.1.2.3", "hunter2"+codeAt(t, t0), appendClient), verifier.Reject, verifier.ReasonReplayedCode)
	expect(t, try("10.1.2.3", "hunter2"+notCode(codeAt(t, t0)), appendClient), verifier.Reject, verifier.ReasonBadCode)
	expect(t, try("10.1.2.3", "hunter2", challengeClient("vpn")), verifier.Accept, "")
	expect(t, try("10.1.2.3", "hunter3", appendClient), verifier.Reject, verifier.ReasonBadPassword)
}

// recordingFailures reads the failure count straight from the database.
func failures(t *testing.T, db *store.DB, name string) int {
	t.Helper()
	u, err := db.GetUser(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.Failures
}

func TestFirstFactorBackend(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	e.addUser(t, "eve", "", time.Time{})
	var answer verifier.FirstFactorResult
	var answerErr error
	var calls int
	backend := verifier.FirstFactorFunc(func(_ context.Context, name string, u *store.User, pw []byte) (verifier.FirstFactorResult, error) {
		calls++
		if string(pw) != "dirpw" {
			return verifier.FirstFactorResult{}, nil
		}
		return answer, answerErr
	})
	mk := func(auto bool) *verifier.Verifier {
		return verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Backend: backend, Now: e.clk.Now, AutoCreateUsers: auto}, settings)
	}
	v := mk(false)
	try := func(v *verifier.Verifier, user, pw string, c verifier.Client) (verifier.Decision, error) {
		return v.Verify(context.Background(), verifier.Attempt{User: user, Password: []byte(pw), Client: c})
	}

	t.Run("Unavailable", func(t *testing.T) {
		answerErr = fmt.Errorf("ldap://127.0.0.1:1: %w", verifier.ErrFirstFactorUnavailable)
		d, err := try(v, "alice", "dirpw"+codeAt(t, t0), appendClient)
		if !errors.Is(err, verifier.ErrFirstFactorUnavailable) || d.Outcome == verifier.Accept {
			t.Fatalf("got %+v, %v", d, err)
		}
		if n := failures(t, e.db, "alice"); n != 0 {
			t.Fatalf("a directory outage counted %d failures", n)
		}
		answerErr = nil
	})
	t.Run("Accept", func(t *testing.T) {
		answer = verifier.FirstFactorResult{OK: true}
		d, _ := try(v, "alice", "dirpw"+codeAt(t, t0), appendClient)
		expect(t, d, verifier.Accept, "")
		// The local hash is not the first factor any more.
		d, _ = try(v, "alice", "hunter2"+codeAt(t, t0), appendClient)
		expect(t, d, verifier.Reject, verifier.ReasonBadPassword)
	})
	t.Run("NotInRequiredGroup", func(t *testing.T) {
		answer = verifier.FirstFactorResult{Reason: verifier.ReasonUserDisabled}
		before := failures(t, e.db, "alice")
		d, _ := try(v, "alice", "dirpw"+codeAt(t, t0), appendClient)
		expect(t, d, verifier.Reject, verifier.ReasonUserDisabled)
		if failures(t, e.db, "alice") != before {
			t.Fatal("user_disabled counted as a failure")
		}
	})
	t.Run("ExemptGroup", func(t *testing.T) {
		answer = verifier.FirstFactorResult{OK: true, Policy: verifier.PolicyOptional}
		d, _ := try(v, "eve", "dirpw", challengeClient("vpn"))
		expect(t, d, verifier.Accept, "")
	})
	t.Run("PerClientBackend", func(t *testing.T) {
		c := appendClient
		c.FirstFactor = verifier.Local(password.NewHasher(1), nil)
		e.clk.Add(30 * time.Second)
		d, _ := try(v, "alice", "hunter2"+codeAt(t, e.clk.Now()), c)
		expect(t, d, verifier.Accept, "")
	})
	t.Run("AutoCreate", func(t *testing.T) {
		answer = verifier.FirstFactorResult{OK: true}
		d, _ := try(v, "newbie", "dirpw", challengeClient("vpn"))
		expect(t, d, verifier.Reject, verifier.ReasonUnknownUser)
		if _, err := e.db.GetUser(context.Background(), "newbie"); !errors.Is(err, store.ErrNotFound) {
			t.Fatal("user created without auto_create_users")
		}
		va := mk(true)
		d, _ = try(va, "newbie", "dirpw", challengeClient("vpn"))
		expect(t, d, verifier.Reject, verifier.ReasonNotEnrolled) // policy required, no token yet
		if _, err := e.db.GetUser(context.Background(), "newbie"); err != nil {
			t.Fatalf("not created: %v", err)
		}
		// A wrong directory password creates nobody; mode otp never creates.
		d, _ = try(va, "ghost", "nope", challengeClient("vpn"))
		expect(t, d, verifier.Reject, verifier.ReasonUnknownUser)
		d, _ = try(va, "ghost2", codeAt(t, t0), verifier.Client{Name: "gw", Mode: verifier.ModeOTP})
		expect(t, d, verifier.Reject, verifier.ReasonUnknownUser)
		for _, n := range []string{"ghost", "ghost2"} {
			if _, err := e.db.GetUser(context.Background(), n); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("%s was created", n)
			}
		}
	})
}

// withNotEnrolledHook returns a verifier over e's store whose NotEnrolled
// hook records the users it is called for (in *told) and answers with a
// message, as the enrollment service's does when it mails a link.
func withNotEnrolledHook(e *env, told *[]string) *verifier.Verifier {
	return verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Now: e.clk.Now,
		NotEnrolled: func(_ context.Context, u store.User) string {
			*told = append(*told, u.Name)
			return "We sent you an enrollment link by e-mail."
		}}, settings)
}

func TestNotEnrolledHook(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "newbie", "", time.Time{})
	var told []string
	v := withNotEnrolledHook(e, &told)
	vpn := challengeClient("vpn")
	d, _ := v.Verify(context.Background(), verifier.Attempt{User: "newbie", Password: []byte("hunter2"), Client: vpn})
	if d.Outcome != verifier.Challenge || d.Prompt != "We sent you an enrollment link by e-mail." {
		t.Fatalf("got %+v", d)
	}
	// Whatever the user answers, there is no token to check.
	d, _ = v.Verify(context.Background(), verifier.Attempt{User: "newbie", Password: []byte("123456"), State: d.State, Client: vpn})
	expect(t, d, verifier.Reject, verifier.ReasonNotEnrolled)
	// A wrong password tells nobody anything.
	d, _ = v.Verify(context.Background(), verifier.Attempt{User: "newbie", Password: []byte("guess"), Client: vpn})
	expect(t, d, verifier.Reject, verifier.ReasonBadPassword)
	// Append mode cannot show a message: a plain Reject, but the hook ran.
	d, _ = v.Verify(context.Background(), verifier.Attempt{User: "newbie", Password: []byte("hunter2"), Client: appendClient})
	expect(t, d, verifier.Reject, verifier.ReasonNotEnrolled)
	if len(told) != 2 {
		t.Fatalf("hook called for %v; want twice for newbie", told)
	}
}

// A backend with its own lockout (AD) sees one check per request: auto mode
// reads password+digits as password+code only.
type oneCheck struct {
	verifier.FirstFactorFunc
}

func (oneCheck) OneCheckPerRequest() bool { return true }

func TestOneCheckPerRequestBackend(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	var seen []string
	backend := oneCheck{func(_ context.Context, _ string, _ *store.User, pw []byte) (verifier.FirstFactorResult, error) {
		seen = append(seen, string(pw))
		return verifier.FirstFactorResult{OK: string(pw) == "dirpw"}, nil
	}}
	v := verifier.New(verifier.Options{Store: e.db, Passwords: password.NewHasher(1), Backend: backend, Now: e.clk.Now}, settings)
	auto := verifier.Client{Name: "c", Mode: verifier.ModeAuto}
	d, _ := v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte("wrong" + codeAt(t, t0)), Client: auto})
	expect(t, d, verifier.Reject, verifier.ReasonBadPassword)
	if len(seen) != 1 || seen[0] != "wrong" {
		t.Fatalf("backend checked %q; want one check of the password part", seen)
	}
	seen = nil
	d, _ = v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte("dirpw" + codeAt(t, t0)), Client: auto})
	expect(t, d, verifier.Accept, "")
	d, _ = v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte("dirpw"), Client: auto})
	expect(t, d, verifier.Challenge, "")
	if len(seen) != 2 {
		t.Fatalf("checks %q; want one per request", seen)
	}
}
