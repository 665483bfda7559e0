package enrollment

import (
	"context"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// loginResult is the outcome of a self-service sign-in.
type loginResult int

const (
	loginFailed   loginResult = iota // wrong user, password or code, or locked
	loginNeedCode                    // right password, but the user has a token and gave no code
	loginDisabled                    // right password, but no second factor applies to the user
	loginOK                          // go to enrollment
)

const loginFailedText = "The user name, password or code is not right. After repeated failures the account is locked for a while."

func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) {
	if !s.set.SelfService {
		s.notFound(w, r)
		return
	}
	s.render(w, http.StatusOK, "login", &page{Title: "Sign in to set up your second factor"})
}

// login is the self-service first login: the first factor with the lockout
// counters of RADIUS, and a current code from users who have a token.
func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	if !s.set.SelfService {
		s.notFound(w, r)
		return
	}
	ip := s.clientIP(r)
	if !s.limit(w, r, s.loginIP, ip.String()) {
		return
	}
	name, pw, code := r.PostFormValue("user"), r.PostFormValue("password"), r.PostFormValue("code")
	p := &page{Title: "Sign in to set up your second factor", LoginUser: name}
	if name == "" || pw == "" || len(name) > 253 || len(pw) > 1024 || !utf8.ValidString(name) {
		p.Error = "Type your user name and your password."
		s.render(w, http.StatusUnprocessableEntity, "login", p)
		return
	}
	if !s.limit(w, r, s.loginUser, name) {
		return
	}
	res, err := s.checkLogin(r.Context(), name, []byte(pw), code)
	switch {
	case errors.Is(err, verifier.ErrFirstFactorUnavailable):
		s.log.Warn("enrollment: sign-in: first factor unavailable", "user", name, "err", err)
		s.render(w, http.StatusServiceUnavailable, "message", &page{
			Title: "Sign-in is not possible right now",
			Text:  "Your password could not be checked at the moment. Try again in a few minutes.",
		})
		return
	case err != nil:
		s.internal(w, r, err)
		return
	}
	switch res {
	case loginFailed:
		s.log.Info("enrollment: sign-in failed", "user", name, "from", ip)
		p.Error = loginFailedText
		s.render(w, http.StatusUnauthorized, "login", p)
	case loginNeedCode:
		p.Error = "Your account already has a second factor. To replace it, also type the code your app shows now. " +
			"If you lost it, contact " + s.set.SupportContact + "."
		s.render(w, http.StatusUnprocessableEntity, "login", p)
	case loginDisabled:
		s.render(w, http.StatusOK, "message", &page{
			Title: "Nothing to set up",
			Text:  "Your account does not use a second factor, so there is nothing to set up. If you think it should, contact " + s.set.SupportContact + ".",
		})
	case loginOK:
		l, err := s.createLink(r.Context(), name, store.LinkLogin, min(s.set.LinkTTL, LoginLinkTTL), time.Time{})
		if err != nil {
			s.internal(w, r, err)
			return
		}
		s.log.Info("enrollment: sign-in", "user", name, "from", ip, "link", l.ID)
		http.Redirect(w, r, l.URL, http.StatusSeeOther)
	}
}

// checkLogin decides a sign-in. Failures count towards the user's lockout
// exactly as over RADIUS; an error means no decision could be made.
func (s *Service) checkLogin(ctx context.Context, name string, pw []byte, code string) (loginResult, error) {
	now := s.now()
	u, err := s.store.UserAuth(ctx, name)
	var up *store.User
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return loginFailed, err
	default:
		up = &u
		if now.Before(u.LockedUntil) {
			return loginFailed, nil
		}
	}
	ff, err := s.ff.Check(ctx, name, up, pw)
	if err != nil {
		return loginFailed, err
	}
	if up == nil {
		if !ff.OK || !s.set.AutoCreateUsers {
			return loginFailed, nil // no local record to count a failure on, or to enroll
		}
		if u, err = s.store.CreateUser(ctx, store.User{Name: name}); errors.Is(err, store.ErrExists) {
			u, err = s.store.UserAuth(ctx, name) // made a moment ago by a concurrent login
		}
		if err != nil {
			return loginFailed, err
		}
		s.log.Info("enrollment: user created at first sign-in", "user", name)
	}
	if !ff.OK {
		if ff.Reason == verifier.ReasonUserDisabled {
			// The password was right (the group check comes after the
			// bind): no guess to count, as over RADIUS.
			return loginFailed, nil
		}
		return loginFailed, s.fail(ctx, u)
	}
	level := verifier.Policy(u.Policy)
	if ff.Policy != verifier.PolicyDefault {
		level = ff.Policy
	}
	if pol, _ := verifier.EffectivePolicy(level, verifier.PolicyDefault, s.set.DefaultPolicy); pol == verifier.PolicyDisabled {
		return loginDisabled, s.reset(ctx, u)
	}
	t := replaceable(u.Tokens, now)
	if t == nil {
		return loginOK, s.reset(ctx, u)
	}
	// Re-authentication before a factor is changed: a current code of the
	// token in use (or, while only a new one is activating, of that one).
	if code == "" {
		return loginNeedCode, nil
	}
	code, ok := normalizeCode(code, t.Digits)
	if !ok {
		return loginFailed, s.fail(ctx, u)
	}
	step, ok := matchStep(t.Secret, t.Algorithm, t.Digits, t.Period, code, now, s.set.Skew)
	if !ok || step <= t.LastStep {
		return loginFailed, s.fail(ctx, u)
	}
	drift := int(step - now.Unix()/int64(t.Period))
	if ok, err := s.store.CommitSuccess(ctx, u.ID, t.ID, step, drift); err != nil || !ok {
		if err != nil {
			return loginFailed, err
		}
		return loginFailed, s.fail(ctx, u) // a concurrent request used this step
	}
	return loginOK, nil
}

// replaceable is the token whose code a user must give to replace it: the
// newest active one in use, else the newest one still activating; nil if
// the user has none.
func replaceable(ts []store.Token, now time.Time) *store.Token {
	var cur, future *store.Token
	for i := range ts {
		t := &ts[i]
		if t.State != store.TokenActive {
			continue
		}
		if now.Before(t.ActiveAt) {
			if future == nil || !t.ActiveAt.Before(future.ActiveAt) {
				future = t
			}
			continue
		}
		if cur == nil || t.ActiveAt.After(cur.ActiveAt) || (t.ActiveAt.Equal(cur.ActiveAt) && t.ID > cur.ID) {
			cur = t
		}
	}
	if cur != nil {
		return cur
	}
	return future
}

func (s *Service) fail(ctx context.Context, u store.User) error {
	_, err := s.store.RecordFailure(ctx, u.ID, s.set.MaxFailures, s.set.LockoutDuration)
	return err
}

func (s *Service) reset(ctx context.Context, u store.User) error {
	if u.Failures == 0 {
		return nil
	}
	return s.store.ResetFailures(ctx, u.ID)
}
