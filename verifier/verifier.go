// Package verifier decides Access-Requests: policy, first factor, TOTP window,
// replay guard, activation delay, clock-skew detection, lockout and the
// two-step challenge.
//
// Verify is a pure decision over what the Store and the first-factor backend
// return: a wrong password or code is a Decision (Reject with a Reason),
// never an error. An error means the decision could not be made safely
// (storage failed, a backend did not answer, the context ended) and the
// caller must drop the request; it is never turned into an Accept.
//
// Replay: a token's last accepted time step is stored; a code is accepted only
// if its step is strictly greater, by one conditional UPDATE that the Store
// commits durably before Verify returns Accept. The step is consumed only when
// the first factor passed too.
//
// Order of checks: lockout; challenge answer (State); first factor; policy
// (user > first-factor group > client > default, trusted networks); code.
package verifier

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/radotp/radotp/otpcode"
	"github.com/radotp/radotp/store"
)

// SkewDetectSteps is how far (in steps, each side) a code is still looked for
// after it failed inside the window, to tell "your phone's clock is off"
// (reason clock_skew) from a wrong code. Such a code is always rejected.
const SkewDetectSteps = 10

// Defaults of the challenge of a Client that sets none.
const (
	DefaultChallengePrompt = "Enter your verification code"
	DefaultChallengeTTL    = 2 * time.Minute
)

// Settings are the tunables that a config reload may change.
type Settings struct {
	Skew            int            // steps accepted each side of the current one
	DefaultPolicy   Policy         // when neither user nor client sets one
	MaxFailures     int            // consecutive failures before a lockout
	LockoutDuration time.Duration  // how long a lockout lasts
	TrustedNetworks []netip.Prefix // Calling-Station-Id inside one: no second factor asked
	// RetransmitWindow is how long after an Accept the NAS's identical
	// retransmission (same Attempt.Request) is answered Accept again when
	// the reply cache no longer has it (a restart); radius.reply_cache_ttl.
	// 0 = 30 s.
	RetransmitWindow time.Duration
}

// Passwords checks local password hashes (password.Hasher satisfies it).
type Passwords interface {
	// Check reports whether pw matches hash. An error is a malformed hash or
	// a context that ended while waiting for a hashing slot.
	Check(ctx context.Context, hash string, pw []byte) (bool, error)
	// Dummy spends the time of one Check, for requests of unknown users.
	Dummy(ctx context.Context, pw []byte)
}

// Options are the parts a Verifier works with.
type Options struct {
	Store     Store
	Passwords Passwords   // for the local first factor
	Backend   FirstFactor // default first factor; nil = Local(Passwords)
	Now       func() time.Time
	Logger    *slog.Logger
	// ChallengeKey signs challenge State (store.DB.ChallengeKey). Nodes that
	// share it can finish each other's challenges. nil = a random key.
	ChallengeKey []byte
	// NotEnrolled, if set, is told about users who need a token and have
	// none, after their first factor passed (enrollment mails a link).
	NotEnrolled NotEnrolledHook
	// AutoCreateUsers creates a local record for a user the first-factor
	// backend knows (LDAP, upstream RADIUS) on their first successful check,
	// so that enrollment can follow. Never for mode otp.
	AutoCreateUsers bool
}

// userSlots is how many requests of distinct users can be decided at once;
// requests of one user (and of the few users that share a slot) wait for
// each other, so that a burst of guesses cannot outrun the lockout count.
const userSlots = 4096

// Verifier decides Attempts. Create it with New.
type Verifier struct {
	o        Options
	settings atomic.Pointer[Settings]
	slots    [userSlots]chan struct{}
	seed     maphash.Seed
}

// New returns a Verifier.
func New(o Options, set Settings) *Verifier {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Backend == nil {
		o.Backend = Local(o.Passwords, o.Logger)
	}
	if o.ChallengeKey == nil {
		o.ChallengeKey = make([]byte, 32)
		rand.Read(o.ChallengeKey)
	}
	v := &Verifier{o: o, seed: maphash.MakeSeed()}
	for i := range v.slots {
		v.slots[i] = make(chan struct{}, 1)
	}
	v.SetSettings(set)
	return v
}

// slotWait is how long a request waits for another request of the same
// user to finish. Two logins of one user rarely overlap; a flood of one name
// must not park the workers, so a request that waits longer is dropped
// (ErrBusy, counted as overload) and its NAS retries.
const slotWait = 50 * time.Millisecond

// ErrBusy is returned when another request of the same user is still being
// decided after slotWait. The request is dropped as overload.
var ErrBusy = errors.New("verifier: another request of the same user is being decided")

// lockUser waits until no other request of the user (names compared without
// ASCII case, as the store does) is being decided. The slot is chosen by a
// hash seeded per process, so nobody can pick names that share a user's slot.
func (v *Verifier) lockUser(ctx context.Context, name string) (unlock func(), err error) {
	slot := v.slots[maphash.String(v.seed, strings.ToLower(name))%userSlots]
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	default:
	}
	t := time.NewTimer(slotWait)
	defer t.Stop()
	select {
	case slot <- struct{}{}:
		return func() { <-slot }, nil
	case <-t.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, fmt.Errorf("verifier: waiting for another request of the same user: %w", ctx.Err())
	}
}

// SetSettings replaces the settings atomically; requests in progress finish
// with the old ones.
func (v *Verifier) SetSettings(s Settings) {
	if s.DefaultPolicy == PolicyDefault {
		s.DefaultPolicy = PolicyRequired
	}
	v.settings.Store(&s)
}

// Local is the first factor from radotp's own argon2id/bcrypt hashes. A user
// without a local record or hash costs one dummy hash and fails.
func Local(p Passwords, log *slog.Logger) FirstFactor {
	return FirstFactorFunc(func(ctx context.Context, name string, u *store.User, pw []byte) (FirstFactorResult, error) {
		if u == nil || u.PasswordHash == "" {
			p.Dummy(ctx, pw)
			return FirstFactorResult{}, ctx.Err()
		}
		ok, err := p.Check(ctx, u.PasswordHash, pw)
		if err != nil {
			if ctx.Err() != nil {
				return FirstFactorResult{}, err
			}
			// A hash we cannot read is the admin's to fix; the user is rejected.
			log.Error("verifier: stored password hash unusable; set a new one with `radotp user passwd`",
				"user", u.Name, "err", err)
			return FirstFactorResult{}, nil
		}
		return FirstFactorResult{OK: ok}, nil
	})
}

func reject(r Reason) Decision { return Decision{Outcome: Reject, Reason: r} }

// EffectivePolicy returns the policy that applies to a user at a client and
// the level that decided it ("user", "client" or "default").
func EffectivePolicy(user, client, def Policy) (Policy, string) {
	switch {
	case user != PolicyDefault:
		return user, "user"
	case client != PolicyDefault:
		return client, "client"
	case def != PolicyDefault:
		return def, "default"
	}
	return PolicyRequired, "default"
}

// request is one Verify call's working state.
type request struct {
	a       Attempt
	set     *Settings
	now     time.Time
	u       *store.User // nil: radotp has no record of the user; set with setUser
	trusted bool        // Calling-Station-Id is in a trusted network
	toks    *userTokens // u's tokens sorted by classify, once (tokens)
}

func (r *request) setUser(u *store.User) { r.u, r.toks = u, nil }

// tokens returns the user's tokens sorted by what they may do now,
// computed once per request.
func (r *request) tokens() userTokens {
	if r.toks == nil {
		t := classify(r.u.Tokens, r.now)
		r.toks = &t
	}
	return *r.toks
}

// Verify decides one Attempt. See the package comment for the contract.
func (v *Verifier) Verify(ctx context.Context, a Attempt) (Decision, error) {
	unlock, err := v.lockUser(ctx, a.User)
	if err != nil {
		return Decision{}, err
	}
	defer unlock()
	r := &request{a: a, set: v.settings.Load(), now: v.o.Now()}
	u, err := v.o.Store.UserAuth(ctx, a.User)
	switch {
	case err == nil:
		r.setUser(&u)
	case !errors.Is(err, store.ErrNotFound):
		return Decision{}, err
	}
	if r.u != nil && r.now.Before(r.u.LockedUntil) {
		if a.Client.Mode != ModeOTP {
			v.o.Passwords.Dummy(ctx, a.Password) // a lock is not told by timing
		}
		return reject(ReasonLockedOut), nil
	}
	mode := a.Client.Mode
	if len(a.State) > 0 && (mode == ModeChallenge || mode == ModeAuto) {
		return v.answer(ctx, r)
	}
	r.trusted = trusted(r.set.TrustedNetworks, a.CallingStation)

	// First factor, and the code that came with the password, if any.
	var code []byte
	var ff FirstFactorResult
	if mode == ModeOTP {
		code, ff.OK = a.Password, true // the gateway checked the password
	} else {
		backend := a.Client.FirstFactor
		if backend == nil {
			backend = v.o.Backend
		}
		cands := v.candidates(r)
		if one, ok := backend.(OneCheckPerRequest); ok && one.OneCheckPerRequest() && len(cands) > 1 {
			cands = cands[len(cands)-1:] // the password+code reading
		}
		for _, c := range cands {
			res, err := backend.Check(ctx, a.User, r.u, c.pw)
			if err != nil {
				return Decision{}, err
			}
			if res.OK || res.Reason == ReasonUserDisabled {
				ff, code = res, c.code
				break
			}
		}
	}
	if !ff.OK {
		switch {
		case r.u == nil:
			return reject(ReasonUnknownUser), nil
		case ff.Reason == ReasonUserDisabled:
			// Found only after a right password: answered only if storage
			// takes writes, like every answer to a right password.
			return v.rejectAfterWrite(ctx, r, ReasonUserDisabled)
		}
		return v.fail(ctx, r, ReasonBadPassword)
	}
	if r.u == nil {
		if !v.o.AutoCreateUsers || mode == ModeOTP {
			return reject(ReasonUnknownUser), nil
		}
		if err := v.createUser(ctx, r); err != nil {
			return Decision{}, err
		}
	}

	userPolicy := Policy(r.u.Policy)
	if userPolicy == PolicyDefault {
		userPolicy = ff.Policy
	}
	policy, _ := EffectivePolicy(userPolicy, a.Client.Policy, r.set.DefaultPolicy)
	tokens := r.tokens()
	enrolled := tokens.current != nil || len(tokens.future) > 0
	needCode := !r.trusted && (policy == PolicyRequired || policy == PolicyOptional && tokens.current != nil)

	// A code that came with the request is checked when one is needed, and
	// also when none is needed but it can be (the user has a token and typed
	// password+code): a wrong code is a wrong credential. In mode otp with no
	// code needed the gateway's password check is all there is.
	if code != nil && (needCode || enrolled && mode != ModeOTP) {
		if !enrolled {
			return v.answerNotEnrolled(ctx, r, false)
		}
		return v.checkCode(ctx, r, tokens, code)
	}
	challengeMode := mode == ModeChallenge || mode == ModeAuto
	switch {
	case !needCode:
		return v.accept(ctx, r)
	case !enrolled:
		return v.answerNotEnrolled(ctx, r, challengeMode)
	case challengeMode:
		return v.challenge(ctx, r, stateCode, a.Client.ChallengePrompt)
	}
	return v.fail(ctx, r, ReasonBadCode) // append mode, no code given
}

// rejectAfterWrite rejects a request whose password was right (not_enrolled,
// user_disabled) after a durable write, so that when storage cannot take
// writes it is dropped like a wrong password: no oracle.
func (v *Verifier) rejectAfterWrite(ctx context.Context, r *request, rs Reason) (Decision, error) {
	if err := v.o.Store.Touch(ctx, r.u.ID); err != nil {
		return Decision{}, err
	}
	return reject(rs), nil
}

// answerNotEnrolled answers a right password of a user who needs a token
// and has none. The durable write comes first, as for any answer to a right
// password: when storage cannot take writes the request is dropped, and no
// link is mailed for it either. Then the NotEnrolled hook is told; its
// message, if any, is shown in a Challenge when show (the user knows the
// password: tell them how to get a token), else the user is rejected.
func (v *Verifier) answerNotEnrolled(ctx context.Context, r *request, show bool) (Decision, error) {
	if err := v.o.Store.Touch(ctx, r.u.ID); err != nil {
		return Decision{}, err
	}
	if msg := v.notEnrolled(ctx, r); msg != "" && show {
		return v.challengeAfterWrite(r, stateNotice, msg), nil
	}
	return reject(ReasonNotEnrolled), nil
}

// notEnrolled calls the NotEnrolled hook, if any, and returns its message.
func (v *Verifier) notEnrolled(ctx context.Context, r *request) string {
	if v.o.NotEnrolled == nil {
		return ""
	}
	return v.o.NotEnrolled(ctx, *r.u)
}

// candidate is one way to read User-Password as password (+ code).
type candidate struct{ pw, code []byte }

// candidates lists the readings of User-Password to try, in order. Each one
// costs a first-factor check (a hash, an LDAP bind), so there is one unless
// the mode asks for two: auto (password alone, else password+code) and a
// trusted network in append mode (password alone is enough, password+code is
// accepted too).
func (v *Verifier) candidates(r *request) []candidate {
	whole := candidate{pw: r.a.Password}
	split, ok := splitCandidate(r)
	switch r.a.Client.Mode {
	case ModeChallenge:
		return []candidate{whole}
	case ModeAuto:
		if ok {
			return []candidate{whole, split}
		}
		return []candidate{whole}
	}
	// Append: a code is expected unless policy or a trusted network says no.
	if r.trusted {
		if ok {
			return []candidate{whole, split}
		}
		return []candidate{whole}
	}
	expect := true
	if r.u != nil {
		p, _ := EffectivePolicy(Policy(r.u.Policy), r.a.Client.Policy, r.set.DefaultPolicy)
		expect = p == PolicyRequired || p == PolicyOptional && r.tokens().current != nil
	}
	if expect && ok {
		return []candidate{split}
	}
	// No code there (or none expected): the whole input is the password, so
	// a user who typed only the password shows as bad_code, not bad_password.
	return []candidate{whole}
}

// splitCandidate splits password+code; ok is false when the code part is
// missing or not all digits.
func splitCandidate(r *request) (candidate, bool) {
	digits := 6
	if r.u != nil {
		digits = r.tokens().digits()
	}
	pw, code, ok := splitCode(r.a.Password, r.a.Client.Separator, digits)
	if !ok || !otpcode.IsDigits(code) {
		return candidate{}, false
	}
	return candidate{pw: pw, code: code}, true
}

// answer decides the second request of a challenge: State + code.
func (v *Verifier) answer(ctx context.Context, r *request) (Decision, error) {
	if r.u == nil { // unknown, or deleted since the challenge
		return reject(ReasonBadState), nil
	}
	tokens := r.tokens()
	if t := tokens.current; t != nil && v.retransmitted(r, t, t.LastStep) &&
		otpcode.NewMatcher(t.Algorithm, t.Secret, t.Digits, r.a.Password).At(t.LastStep) {
		// The NAS's retransmission of the answer that used the step, after a
		// restart lost the cached reply: the State is spent by that very
		// answer, so it is checked by the fingerprint instead.
		return Decision{Outcome: Accept}, nil
	}
	ref := int64(0)
	if tokens.current != nil {
		ref = tokens.current.LastStep
	}
	kind, ok := openState(v.o.ChallengeKey, r.a.State, r.a.User, r.a.Client.Name, r.now, ref)
	switch {
	case !ok:
		return reject(ReasonBadState), nil
	case kind == stateNotice:
		return reject(ReasonNotEnrolled), nil
	}
	if tokens.current == nil && len(tokens.future) == 0 {
		return reject(ReasonNotEnrolled), nil
	}
	return v.checkCode(ctx, r, tokens, r.a.Password)
}

func (v *Verifier) challenge(ctx context.Context, r *request, kind byte, prompt string) (Decision, error) {
	// A right password is answered only if storage takes writes, as a wrong
	// one is (its failure must be counted): no oracle when the disk fails.
	if err := v.o.Store.Touch(ctx, r.u.ID); err != nil {
		return Decision{}, err
	}
	return v.challengeAfterWrite(r, kind, prompt), nil
}

// challengeAfterWrite is challenge once the durable write is done.
func (v *Verifier) challengeAfterWrite(r *request, kind byte, prompt string) Decision {
	ref := int64(0)
	if t := r.tokens().current; t != nil {
		ref = t.LastStep
	}
	ttl := r.a.Client.ChallengeTTL
	if ttl <= 0 {
		ttl = DefaultChallengeTTL
	}
	if prompt == "" {
		prompt = DefaultChallengePrompt
	}
	return Decision{
		Outcome: Challenge,
		Prompt:  prompt,
		State:   newState(v.o.ChallengeKey, kind, r.a.User, r.a.Client.Name, r.now.Add(ttl), ref),
	}
}

func (v *Verifier) createUser(ctx context.Context, r *request) error {
	_, err := v.o.Store.CreateUser(ctx, store.User{Name: r.a.User})
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("verifier: auto-create user: %w", err)
	}
	u, err := v.o.Store.UserAuth(ctx, r.a.User)
	if err != nil {
		return fmt.Errorf("verifier: auto-create user: %w", err)
	}
	v.o.Logger.Info("verifier: user created on first login (first_factor.auto_create_users)", "user", u.Name)
	r.setUser(&u)
	return nil
}

// checkCode checks a code against the user's tokens and commits its step.
func (v *Verifier) checkCode(ctx context.Context, r *request, tokens userTokens, code []byte) (Decision, error) {
	if !otpcode.IsDigits(code) {
		return v.fail(ctx, r, ReasonBadCode)
	}
	skew := r.set.Skew
	if t := tokens.current; t != nil {
		m := otpcode.NewMatcher(t.Algorithm, t.Secret, t.Digits, code)
		cur := otpcode.Step(r.now, t.Period)
		// Highest matching step in the window wins: if an older step of the
		// window happens to give the same code, the newer one is the one used.
		for off := skew; off >= -skew; off-- {
			step := cur + int64(off)
			if !m.At(step) {
				continue
			}
			if step <= t.LastStep {
				if v.retransmitted(r, t, step) {
					// The reply to this very request was lost to a restart
					// (kill -9, power cut) after its step was committed:
					// answer as the reply cache would have (RFC 5080).
					v.o.Logger.Info("verifier: retransmission of an accepted request answered again after a restart",
						"user", r.a.User, "client", r.a.Client.Name)
					return Decision{Outcome: Accept}, nil
				}
				return v.fail(ctx, r, ReasonReplayedCode)
			}
			ok, err := v.o.Store.CommitSuccessOf(ctx, r.u.ID, t.ID, step, off, r.a.Request)
			if errors.Is(err, store.ErrLocked) { // a concurrent failure locked the user
				return reject(ReasonLockedOut), nil
			}
			if err != nil {
				return Decision{}, err
			}
			if !ok { // a concurrent request used this step first
				return v.fail(ctx, r, ReasonReplayedCode)
			}
			return Decision{Outcome: Accept}, nil
		}
	}
	for i := range tokens.future {
		t := &tokens.future[i]
		m := otpcode.NewMatcher(t.Algorithm, t.Secret, t.Digits, code)
		cur := otpcode.Step(r.now, t.Period)
		for off := -skew; off <= skew; off++ {
			if m.At(cur + int64(off)) {
				return v.fail(ctx, r, ReasonNotYetActive)
			}
		}
	}
	if t := tokens.current; t != nil {
		m := otpcode.NewMatcher(t.Algorithm, t.Secret, t.Digits, code)
		cur := otpcode.Step(r.now, t.Period)
		for off := skew + 1; off <= SkewDetectSteps; off++ {
			if m.At(cur+int64(off)) || m.At(cur-int64(off)) {
				return v.fail(ctx, r, ReasonClockSkew)
			}
		}
	}
	return v.fail(ctx, r, ReasonBadCode)
}

// retransmitted reports whether the request is the NAS's retransmission of
// the one that used step on t, within the window a reply cache keeps it:
// the same source, Identifier and Request Authenticator, so only the NAS
// that sent the original (or whoever can spoof it exactly, who could also
// have its cached reply resent) gets the Accept it missed.
func (v *Verifier) retransmitted(r *request, t *store.Token, step int64) bool {
	window := r.set.RetransmitWindow
	if window <= 0 {
		window = 30 * time.Second
	}
	return step == t.LastStep && len(r.a.Request) > 0 && len(t.LastRequest) == len(r.a.Request) &&
		subtle.ConstantTimeCompare(t.LastRequest, r.a.Request) == 1 &&
		!r.now.Before(t.LastAcceptAt) && r.now.Sub(t.LastAcceptAt) < window
}

// accept accepts without a code, resetting the failure count.
// The write is made even with no failures to reset: a right password is
// answered only when storage takes writes, as a wrong one is.
func (v *Verifier) accept(ctx context.Context, r *request) (Decision, error) {
	write := v.o.Store.Touch
	if r.u.Failures > 0 {
		write = v.o.Store.ResetFailures
	}
	if err := write(ctx, r.u.ID); err != nil {
		return Decision{}, err
	}
	return Decision{Outcome: Accept}, nil
}

// fail counts a failure towards the lockout and rejects with reason rs.
func (v *Verifier) fail(ctx context.Context, r *request, rs Reason) (Decision, error) {
	// Counted even if the request's deadline passes meanwhile: a guess whose
	// answer is dropped must still count (bounded by its own timeout).
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := v.o.Store.RecordFailure(wctx, r.u.ID, r.set.MaxFailures, r.set.LockoutDuration); err != nil {
		return Decision{}, fmt.Errorf("verifier: record failure: %w", err)
	}
	return reject(rs), nil
}

// trusted reports whether a Calling-Station-Id is an IP address inside one of
// the networks. Anything else (a MAC address, a phone number) is not.
func trusted(nets []netip.Prefix, callingStation string) bool {
	if len(nets) == 0 || callingStation == "" {
		return false
	}
	s := strings.TrimSpace(callingStation)
	a, err := netip.ParseAddr(s)
	if err != nil {
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			return false
		}
		a = ap.Addr()
	}
	a = a.Unmap().WithZone("")
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// userTokens sorts a user's tokens by what they may do now.
type userTokens struct {
	current *store.Token  // the newest active token whose activation time has come
	future  []store.Token // active tokens whose activation time is still ahead
}

func classify(ts []store.Token, now time.Time) userTokens {
	var ut userTokens
	for i := range ts {
		t := &ts[i]
		if t.State != store.TokenActive {
			continue
		}
		if now.Before(t.ActiveAt) {
			ut.future = append(ut.future, *t)
			continue
		}
		// Older tokens are superseded by a newer one once it is active.
		if ut.current == nil || t.ActiveAt.After(ut.current.ActiveAt) ||
			(t.ActiveAt.Equal(ut.current.ActiveAt) && t.ID > ut.current.ID) {
			ut.current = t
		}
	}
	return ut
}

// digits is the code length to split off in append mode.
func (ut userTokens) digits() int {
	if ut.current != nil {
		return ut.current.Digits
	}
	if len(ut.future) > 0 {
		return ut.future[len(ut.future)-1].Digits
	}
	return 6
}

// splitCode splits password+code. With a separator, at its last occurrence;
// without, the last digits bytes are the code.
func splitCode(p []byte, sep string, digits int) (pw, code []byte, ok bool) {
	if sep != "" {
		for i := len(p) - len(sep); i >= 0; i-- {
			if string(p[i:i+len(sep)]) == sep {
				return p[:i], p[i+len(sep):], true
			}
		}
		return nil, nil, false
	}
	if len(p) < digits {
		return nil, nil, false
	}
	return p[:len(p)-digits], p[len(p)-digits:], true
}
