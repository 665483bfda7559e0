// Package verifier decides Access-Requests: policy, first factor, TOTP window,
// replay guard, activation delay, clock-skew detection and lockout.
//
// Verify is a pure decision over what the Store returns: a wrong password or
// code is a Decision (Reject with a Reason), never an error. An error means
// the decision could not be made safely (storage failed, the context ended) and
// the caller must drop the request; it is never turned into an Accept.
//
// Replay: a token's last accepted time step is stored; a code is accepted only
// if its step is strictly greater, by one conditional UPDATE that the Store
// commits durably before Verify returns Accept. The step is consumed only when
// the first factor passed too.
package verifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/radotp/radotp/store"
)

// SkewDetectSteps is how far (in steps, each side) a code is still looked for
// after it failed inside the window, to tell "your phone's clock is off"
// (reason clock_skew) from a wrong code. Such a code is always rejected.
const SkewDetectSteps = 10

// Settings are the tunables that a config reload may change.
type Settings struct {
	Skew            int           // steps accepted each side of the current one
	DefaultPolicy   Policy        // when neither user nor client sets one
	MaxFailures     int           // consecutive failures before a lockout
	LockoutDuration time.Duration // how long a lockout lasts
}

// Passwords checks first-factor passwords (password.Hasher satisfies it).
type Passwords interface {
	// Check reports whether pw matches hash. An error is a malformed hash or
	// a context that ended while waiting for a hashing slot.
	Check(ctx context.Context, hash string, pw []byte) (bool, error)
	// Dummy spends the time of one Check, for requests of unknown users.
	Dummy(ctx context.Context, pw []byte)
}

// Verifier decides Attempts. Create it with New.
type Verifier struct {
	store     Store
	passwords Passwords
	now       func() time.Time
	log       *slog.Logger
	settings  atomic.Pointer[Settings]
}

// New returns a Verifier. now nil means time.Now; log nil means slog.Default().
func New(s Store, p Passwords, now func() time.Time, log *slog.Logger, set Settings) *Verifier {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	v := &Verifier{store: s, passwords: p, now: now, log: log}
	v.SetSettings(set)
	return v
}

// SetSettings replaces the settings atomically; requests in progress finish
// with the old ones.
func (v *Verifier) SetSettings(s Settings) {
	if s.DefaultPolicy == PolicyDefault {
		s.DefaultPolicy = PolicyRequired
	}
	v.settings.Store(&s)
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

// Verify decides one Attempt. See the package comment for the contract.
func (v *Verifier) Verify(ctx context.Context, a Attempt) (Decision, error) {
	set := v.settings.Load()
	now := v.now()

	u, err := v.store.UserAuth(ctx, a.User)
	if errors.Is(err, store.ErrNotFound) {
		if a.Client.Mode != ModeOTP {
			v.passwords.Dummy(ctx, a.Password)
		}
		return reject(ReasonUnknownUser), nil
	}
	if err != nil {
		return Decision{}, err
	}
	if now.Before(u.LockedUntil) {
		return reject(ReasonLockedOut), nil
	}

	policy, _ := EffectivePolicy(Policy(u.Policy), a.Client.Policy, set.DefaultPolicy)
	tokens := classify(u.Tokens, now)
	needCode := policy == PolicyRequired ||
		(policy == PolicyOptional && tokens.current != nil)
	if policy == PolicyDisabled {
		needCode = false
	}

	// Split the User-Password into the first factor and the code.
	var pw, code []byte
	switch {
	case a.Client.Mode == ModeOTP:
		code = a.Password
	case !needCode:
		pw = a.Password
	default:
		var ok bool
		pw, code, ok = splitCode(a.Password, a.Client.Separator, tokens.digits())
		if !ok || !isDigits(code) {
			// No code there: the whole input is the password (one hash, as
			// always). If it is right, the reason is the missing code, which
			// tells the admin "typed only the password".
			pw, code = a.Password, nil
		}
	}

	if a.Client.Mode != ModeOTP {
		ok, err := v.checkPassword(ctx, u, pw)
		if err != nil {
			return Decision{}, err
		}
		if !ok {
			return v.fail(ctx, set, u, ReasonBadPassword)
		}
	}

	if !needCode {
		if u.Failures > 0 {
			if err := v.store.ResetFailures(ctx, u.ID); err != nil {
				return Decision{}, err
			}
		}
		return Decision{Outcome: Accept}, nil
	}
	if tokens.current == nil && len(tokens.future) == 0 {
		return reject(ReasonNotEnrolled), nil
	}
	if !isDigits(code) {
		return v.fail(ctx, set, u, ReasonBadCode)
	}

	if t := tokens.current; t != nil {
		m := codeMatcher{mac: newMAC(t.Algorithm, t.Secret), digits: t.Digits, code: code}
		cur := stepAt(now, t.Period)
		// Highest matching step in the window wins: if an older step of the
		// window happens to give the same code, the newer one is the one used.
		for off := set.Skew; off >= -set.Skew; off-- {
			if !m.matches(cur + int64(off)) {
				continue
			}
			step := cur + int64(off)
			if step <= t.LastStep {
				return v.fail(ctx, set, u, ReasonReplayedCode)
			}
			ok, err := v.store.CommitSuccess(ctx, u.ID, t.ID, step, off)
			if err != nil {
				return Decision{}, err
			}
			if !ok { // a concurrent request used this step first
				return v.fail(ctx, set, u, ReasonReplayedCode)
			}
			return Decision{Outcome: Accept}, nil
		}
	}
	for i := range tokens.future {
		t := &tokens.future[i]
		m := codeMatcher{mac: newMAC(t.Algorithm, t.Secret), digits: t.Digits, code: code}
		cur := stepAt(now, t.Period)
		for off := -set.Skew; off <= set.Skew; off++ {
			if m.matches(cur + int64(off)) {
				return v.fail(ctx, set, u, ReasonNotYetActive)
			}
		}
	}
	if t := tokens.current; t != nil {
		m := codeMatcher{mac: newMAC(t.Algorithm, t.Secret), digits: t.Digits, code: code}
		cur := stepAt(now, t.Period)
		for off := set.Skew + 1; off <= SkewDetectSteps; off++ {
			if m.matches(cur+int64(off)) || m.matches(cur-int64(off)) {
				return v.fail(ctx, set, u, ReasonClockSkew)
			}
		}
	}
	return v.fail(ctx, set, u, ReasonBadCode)
}

func (v *Verifier) checkPassword(ctx context.Context, u store.User, pw []byte) (bool, error) {
	if u.PasswordHash == "" {
		v.passwords.Dummy(ctx, pw)
		return false, ctx.Err()
	}
	ok, err := v.passwords.Check(ctx, u.PasswordHash, pw)
	if err != nil {
		if ctx.Err() != nil {
			return false, err
		}
		// A hash we cannot read is the admin's to fix; the user is rejected.
		v.log.Error("verifier: stored password hash unusable; reset it with `radotp user passwd`",
			"user", u.Name, "err", err)
		return false, nil
	}
	return ok, nil
}

// fail counts a failure towards the lockout and rejects with reason r.
func (v *Verifier) fail(ctx context.Context, set *Settings, u store.User, r Reason) (Decision, error) {
	if _, err := v.store.RecordFailure(ctx, u.ID, set.MaxFailures, set.LockoutDuration); err != nil {
		return Decision{}, fmt.Errorf("verifier: record failure: %w", err)
	}
	return reject(r), nil
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

// stepAt is the RFC 6238 time step of t for a period in seconds.
func stepAt(t time.Time, period int) int64 {
	if period <= 0 {
		period = 30
	}
	return t.Unix() / int64(period)
}
