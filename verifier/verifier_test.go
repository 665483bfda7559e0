package verifier_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

var (
	key    = []byte("12345678901234567890")
	keyB32 = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
	fast   = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}
	// t0 is the first instant of a 30 s step, so window edges are exact.
	t0 = time.Unix(1_800_000_000, 0)
)

// clock is the fake clock the tests move.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.Set(t); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()) }
func (c *clock) Set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func (c *clock) Add(d time.Duration) {
	c.ns.Add(int64(d))
}

type env struct {
	db  *store.DB
	clk *clock
	v   *verifier.Verifier
}

var settings = verifier.Settings{Skew: 1, DefaultPolicy: verifier.PolicyRequired, MaxFailures: 3, LockoutDuration: 15 * time.Minute}

func newEnv(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	clk := newClock(t0)
	db, err := store.Open(context.Background(), store.Options{
		Path: filepath.Join(dir, "radotp.db"), KeyFile: filepath.Join(dir, "radotp.key"), Now: clk.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	v := verifier.New(verifier.Options{Store: db, Passwords: password.NewHasher(2), Now: clk.Now}, settings)
	return &env{db: db, clk: clk, v: v}
}

// addUser creates a user with password "hunter2" and, if activeAt is not
// zero, a SHA1 token on the RFC key active from activeAt.
func (e *env) addUser(t testing.TB, name, policy string, activeAt time.Time) {
	t.Helper()
	h, err := password.Hash([]byte("hunter2"), fast)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.CreateUser(context.Background(), store.User{Name: name, PasswordHash: h, Policy: policy}); err != nil {
		t.Fatal(err)
	}
	if !activeAt.IsZero() {
		e.addToken(t, name, key, activeAt)
	}
}

func (e *env) addToken(t testing.TB, name string, k []byte, activeAt time.Time) {
	t.Helper()
	_, err := e.db.AddToken(context.Background(), name, store.Token{
		Secret: k, Algorithm: "SHA1", Digits: 6, Period: 30, State: store.TokenActive, ActiveAt: activeAt,
	})
	if err != nil {
		t.Fatal(err)
	}
}

// code is what an authenticator app shows at t (oathtool in the e2e tests).
func code_(t testing.TB, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(keyB32, at, totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var appendClient = verifier.Client{Name: "vpn", Mode: verifier.ModeAppend}

func (e *env) try(t *testing.T, user, pw string, c verifier.Client) verifier.Decision {
	t.Helper()
	d, err := e.v.Verify(context.Background(), verifier.Attempt{User: user, Password: []byte(pw), Client: c})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return d
}

func expect(t *testing.T, d verifier.Decision, o verifier.Outcome, r verifier.Reason) {
	t.Helper()
	if d.Outcome != o || d.Reason != r {
		t.Fatalf("got %v/%q, want %v/%q", d.Outcome, d.Reason, o, r)
	}
}

func TestAcceptThenReplay(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	c := code_(t, t0)
	expect(t, e.try(t, "alice", "hunter2"+c, appendClient), verifier.Accept, "")
	expect(t, e.try(t, "alice", "hunter2"+c, appendClient), verifier.Reject, verifier.ReasonReplayedCode)
	// An older step's code inside the window is a replay too, once a newer
	// one was used.
	e.clk.Add(30 * time.Second)
	expect(t, e.try(t, "alice", "hunter2"+code_(t, t0.Add(30*time.Second)), appendClient), verifier.Accept, "")
	expect(t, e.try(t, "alice", "hunter2"+c, appendClient), verifier.Reject, verifier.ReasonReplayedCode)
}

// Window edges at exact step boundaries, skew = 1.
func TestWindowEdges(t *testing.T) {
	step := 30 * time.Second
	for _, tc := range []struct {
		name   string
		now    time.Time // server clock
		phone  time.Time // the phone's clock when it showed the code
		reason verifier.Reason
	}{
		{"SameStep", t0, t0, ""},
		{"SameStepLastSecond", t0.Add(step - time.Second), t0, ""},
		{"PreviousStep", t0, t0.Add(-time.Second), ""},
		{"NextStep", t0.Add(step - time.Nanosecond), t0.Add(step), ""},
		{"TwoStepsBehind", t0, t0.Add(-step - time.Second), verifier.ReasonClockSkew},
		{"TwoStepsAhead", t0.Add(step - time.Nanosecond), t0.Add(2 * step), verifier.ReasonClockSkew},
		{"TenStepsBehind", t0, t0.Add(-10 * step), verifier.ReasonClockSkew},
		{"ElevenStepsBehind", t0, t0.Add(-11 * step), verifier.ReasonBadCode},
		{"ElevenStepsAhead", t0, t0.Add(11 * step), verifier.ReasonBadCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addUser(t, "alice", "", t0.Add(-time.Hour))
			e.clk.Set(tc.now)
			d := e.try(t, "alice", "hunter2"+code_(t, tc.phone), appendClient)
			if tc.reason == "" {
				expect(t, d, verifier.Accept, "")
			} else {
				expect(t, d, verifier.Reject, tc.reason)
			}
		})
	}
}

func TestConcurrentSameCodeOneAccept(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	pw := []byte("hunter2" + code_(t, t0))
	var accepts, replays atomic.Int32
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := e.v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: pw, Client: appendClient})
			switch {
			case errors.Is(err, verifier.ErrBusy):
				replays.Add(1) // dropped: another request of alice was running
			case err != nil:
				t.Error(err)
			case d.Outcome == verifier.Accept:
				accepts.Add(1)
			case d.Reason == verifier.ReasonReplayedCode || d.Reason == verifier.ReasonLockedOut:
				// The losers are replays, and after max_failures of them
				// the user is locked: both are right, neither is an Accept.
				replays.Add(1)
			default:
				t.Errorf("unexpected %+v", d)
			}
		}()
	}
	wg.Wait()
	if accepts.Load() != 1 || replays.Load() != 49 {
		t.Fatalf("accepts=%d replays, lockouts or busy drops=%d; want 1 and 49", accepts.Load(), replays.Load())
	}
}

func TestActivationEdge(t *testing.T) {
	e := newEnv(t)
	activeAt := t0.Add(15 * time.Minute)
	e.addUser(t, "alice", "", activeAt)
	e.clk.Set(activeAt.Add(-time.Second))
	expect(t, e.try(t, "alice", "hunter2"+code_(t, e.clk.Now()), appendClient), verifier.Reject, verifier.ReasonNotYetActive)
	e.clk.Set(activeAt)
	expect(t, e.try(t, "alice", "hunter2"+code_(t, activeAt), appendClient), verifier.Accept, "")
}

// An earlier token keeps working until a newer one becomes active; then the
// newer one replaces it.
func TestNewTokenSupersedesOldWhenActive(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	other := []byte("abcdefghijabcdefghij")
	e.addToken(t, "alice", other, t0.Add(time.Minute))
	expect(t, e.try(t, "alice", "hunter2"+code_(t, t0), appendClient), verifier.Accept, "")
	e.clk.Set(t0.Add(2 * time.Minute))
	expect(t, e.try(t, "alice", "hunter2"+code_(t, e.clk.Now()), appendClient), verifier.Reject, verifier.ReasonBadCode)
}

func TestWrongPasswordDoesNotConsumeStep(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	c := code_(t, t0)
	expect(t, e.try(t, "alice", "hunter3"+c, appendClient), verifier.Reject, verifier.ReasonBadPassword)
	expect(t, e.try(t, "alice", "hunter2"+c, appendClient), verifier.Accept, "")
}

func TestLockoutAndUnlock(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	for range settings.MaxFailures {
		expect(t, e.try(t, "alice", "wrong"+code_(t, t0), appendClient), verifier.Reject, verifier.ReasonBadPassword)
	}
	// Locked: even the right password and code are rejected, and not consumed.
	expect(t, e.try(t, "alice", "hunter2"+code_(t, t0), appendClient), verifier.Reject, verifier.ReasonLockedOut)
	// The lock ends by itself after the duration ...
	e.clk.Add(settings.LockoutDuration)
	expect(t, e.try(t, "alice", "hunter2"+code_(t, e.clk.Now()), appendClient), verifier.Accept, "")

	// ... or by `radotp user unlock`.
	for range settings.MaxFailures {
		expect(t, e.try(t, "alice", "hunter2000000", appendClient), verifier.Reject, verifier.ReasonBadCode)
	}
	e.clk.Add(30 * time.Second)
	expect(t, e.try(t, "alice", "hunter2"+code_(t, e.clk.Now()), appendClient), verifier.Reject, verifier.ReasonLockedOut)
	if err := e.db.UnlockUser(context.Background(), "alice"); err != nil {
		t.Fatal(err)
	}
	expect(t, e.try(t, "alice", "hunter2"+code_(t, e.clk.Now()), appendClient), verifier.Accept, "")
}

func TestSuccessResetsFailures(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	for range settings.MaxFailures - 1 {
		e.try(t, "alice", "wrong", appendClient)
	}
	expect(t, e.try(t, "alice", "hunter2"+code_(t, t0), appendClient), verifier.Accept, "")
	for range settings.MaxFailures - 1 {
		e.try(t, "alice", "wrong", appendClient)
	}
	e.clk.Add(30 * time.Second)
	expect(t, e.try(t, "alice", "hunter2"+code_(t, e.clk.Now()), appendClient), verifier.Accept, "")
}

func TestRejectReasons(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	e.addUser(t, "bob", "", time.Time{}) // no token
	c := code_(t, t0)
	for _, tc := range []struct {
		name, user, pw string
		reason         verifier.Reason
	}{
		{"UnknownUser", "mallory", "hunter2" + c, verifier.ReasonUnknownUser},
		{"NotEnrolled", "bob", "hunter2" + c, verifier.ReasonNotEnrolled},
		{"PasswordOnly", "alice", "hunter2", verifier.ReasonBadCode},
		{"LettersInCode", "alice", "hunter2abcdef", verifier.ReasonBadPassword},
		{"SpaceInCode", "alice", "hunter2" + c[:3] + " " + c[3:], verifier.ReasonBadPassword},
		{"FullWidth", "alice", "hunter2１２３４５６", verifier.ReasonBadPassword},
		{"Empty", "alice", "", verifier.ReasonBadPassword},
	} {
		t.Run(tc.name, func(t *testing.T) {
			expect(t, e.try(t, tc.user, tc.pw, appendClient), verifier.Reject, tc.reason)
			if err := e.db.UnlockUser(context.Background(), "alice"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestModes(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	otpClient := verifier.Client{Name: "gw", Mode: verifier.ModeOTP}
	sepClient := verifier.Client{Name: "sep", Mode: verifier.ModeAppend, Separator: ","}
	expect(t, e.try(t, "alice", code_(t, t0), otpClient), verifier.Accept, "")
	expect(t, e.try(t, "alice", "12345", otpClient), verifier.Reject, verifier.ReasonBadCode)
	e.clk.Add(30 * time.Second)
	expect(t, e.try(t, "alice", "hunter2"+code_(t, e.clk.Now()), sepClient), verifier.Reject, verifier.ReasonBadPassword)
	expect(t, e.try(t, "alice", "hunter2", sepClient), verifier.Reject, verifier.ReasonBadCode)
	if err := e.db.UnlockUser(context.Background(), "alice"); err != nil { // three failures above
		t.Fatal(err)
	}
	expect(t, e.try(t, "alice", "hunter2,"+code_(t, e.clk.Now()), sepClient), verifier.Accept, "")
}

func TestPolicies(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "nocode", "disabled", t0.Add(-time.Hour))
	e.addUser(t, "opt", "optional", time.Time{})
	e.addUser(t, "optTok", "optional", t0.Add(-time.Hour))
	expect(t, e.try(t, "nocode", "hunter2", appendClient), verifier.Accept, "")
	expect(t, e.try(t, "opt", "hunter2", appendClient), verifier.Accept, "")
	expect(t, e.try(t, "optTok", "hunter2", appendClient), verifier.Reject, verifier.ReasonBadCode)
	expect(t, e.try(t, "optTok", "hunter2"+code_(t, t0), appendClient), verifier.Accept, "")
	// A client policy applies when the user has none.
	e.addUser(t, "plain", "", time.Time{})
	expect(t, e.try(t, "plain", "hunter2", appendClient), verifier.Reject, verifier.ReasonNotEnrolled)
	expect(t, e.try(t, "plain", "hunter2", verifier.Client{Name: "lab", Mode: verifier.ModeAppend, Policy: verifier.PolicyDisabled}), verifier.Accept, "")
}

func TestEffectivePolicy(t *testing.T) {
	for _, tc := range []struct {
		u, c, d verifier.Policy
		want    verifier.Policy
		level   string
	}{
		{"", "", "optional", "optional", "default"},
		{"", "disabled", "required", "disabled", "client"},
		{"required", "disabled", "optional", "required", "user"},
		{"", "", "", "required", "default"},
	} {
		p, lvl := verifier.EffectivePolicy(tc.u, tc.c, tc.d)
		if p != tc.want || lvl != tc.level {
			t.Errorf("EffectivePolicy(%q,%q,%q) = %q,%q; want %q,%q", tc.u, tc.c, tc.d, p, lvl, tc.want, tc.level)
		}
	}
}

// failingStore is the one fake: a storage fault we cannot cause on demand
// in the middle of a decision.
type failingStore struct {
	verifier.Store
	failCommit, failRecord bool
}

var errDisk = errors.New("disk on fire")

func (f failingStore) CommitSuccessOf(ctx context.Context, u, tk, s int64, d int, req []byte) (bool, error) {
	if f.failCommit {
		return false, errDisk
	}
	return f.Store.CommitSuccessOf(ctx, u, tk, s, d, req)
}

func (f failingStore) RecordFailure(ctx context.Context, u int64, m int, d time.Duration) (bool, error) {
	if f.failRecord {
		return false, errDisk
	}
	return f.Store.RecordFailure(ctx, u, m, d)
}

func TestStorageErrorNeverAccepts(t *testing.T) {
	e := newEnv(t)
	e.addUser(t, "alice", "", t0.Add(-time.Hour))
	for _, tc := range []struct {
		name string
		fs   failingStore
		pw   string
	}{
		{"CommitFails", failingStore{Store: e.db, failCommit: true}, "hunter2" + code_(t, t0)},
		{"RecordFailureFails", failingStore{Store: e.db, failRecord: true}, "wrong" + code_(t, t0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := verifier.New(verifier.Options{Store: tc.fs, Passwords: password.NewHasher(1), Now: e.clk.Now}, settings)
			d, err := v.Verify(context.Background(), verifier.Attempt{User: "alice", Password: []byte(tc.pw), Client: appendClient})
			if !errors.Is(err, errDisk) || d.Outcome == verifier.Accept {
				t.Fatalf("store fault gave %+v, %v; want the fault as error and no Accept", d, err)
			}
		})
	}
	// The code was never committed, so it still works once storage is back.
	expect(t, e.try(t, "alice", "hunter2"+code_(t, t0), appendClient), verifier.Accept, "")
}

func BenchmarkVerifyOTPMode(b *testing.B) {
	dir := b.TempDir()
	clk := newClock(t0)
	db, err := store.Open(context.Background(), store.Options{Path: filepath.Join(dir, "db"), KeyFile: filepath.Join(dir, "key"), Now: clk.Now})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.CreateUser(context.Background(), store.User{Name: "u"}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.AddToken(context.Background(), "u", store.Token{Secret: key, Algorithm: "SHA1", Digits: 6, Period: 30, State: store.TokenActive}); err != nil {
		b.Fatal(err)
	}
	v := verifier.New(verifier.Options{Store: db, Passwords: password.NewHasher(1), Now: clk.Now}, settings)
	c := verifier.Client{Name: "gw", Mode: verifier.ModeOTP}
	b.ReportAllocs()
	for b.Loop() {
		// Each iteration a new step, so every request is a fresh valid code.
		clk.Add(30 * time.Second)
		cd, _ := totp.GenerateCodeCustom(keyB32, clk.Now(), totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		d, err := v.Verify(context.Background(), verifier.Attempt{User: "u", Password: []byte(cd), Client: c})
		if err != nil || d.Outcome != verifier.Accept {
			b.Fatalf("%+v %v", d, err)
		}
	}
}
