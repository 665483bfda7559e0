package enrollment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/radotp/radotp/otpcode"
	"github.com/radotp/radotp/store"
)

// linkKey is the rate-limit key of a link token (the token itself is not
// kept, even in memory).
func linkKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:12])
}

// openLink finds the usable link of the request. If there is none, or a
// limit is hit, it has answered and reports false.
func (s *Service) openLink(w http.ResponseWriter, r *http.Request) (store.EnrollLink, string, bool) {
	tok := r.PathValue("token")
	if !s.limit(w, r, s.link, linkKey(tok)) {
		return store.EnrollLink{}, "", false
	}
	if !store.ValidLinkToken(tok) {
		s.closedPage(w, r, store.EnrollLink{})
		return store.EnrollLink{}, "", false
	}
	l, err := s.store.EnrollLinkByToken(r.Context(), tok)
	if errors.Is(err, store.ErrNotFound) {
		s.closedPage(w, r, store.EnrollLink{})
		return store.EnrollLink{}, "", false
	}
	if err != nil {
		s.internal(w, r, err)
		return store.EnrollLink{}, "", false
	}
	if !l.Usable(s.now()) {
		s.closedPage(w, r, l)
		return store.EnrollLink{}, "", false
	}
	return l, tok, true
}

// internal answers 500 for an error that is ours, and logs it.
func (s *Service) internal(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("enrollment: request failed", "path", safePath(r), "err", err)
	s.render(w, http.StatusInternalServerError, "message", &page{
		Title: "Something went wrong",
		Text:  "The server could not complete this step. Try again in a minute; if it keeps failing, contact " + s.set.SupportContact + ".",
	})
}

// closedPage says why a link cannot be used. l.ID == 0 means no such link.
func (s *Service) closedPage(w http.ResponseWriter, r *http.Request, l store.EnrollLink) {
	p := &page{}
	status := http.StatusGone
	newLink := "Ask " + s.set.SupportContact + " for a new link."
	if s.set.SelfService {
		newLink = "Sign in to start again, or ask " + s.set.SupportContact + " for a new link."
		p.Action, p.Href = "Sign in", s.base()+"/login"
	}
	switch {
	case l.ID == 0:
		status = http.StatusNotFound
		p.Title = "This enrollment link is not valid"
		p.Text = "Check that you opened the whole link, exactly as you got it. If it still does not work: " + newLink
	case !l.UsedAt.IsZero():
		p.Title = "This enrollment link was already used"
		p.Text = fmt.Sprintf("A token was registered with it at %s. Each link works only once. "+
			"If that was not you, contact %s at once.", s.clock(l.UsedAt, false), s.set.SupportContact)
		p.Action, p.Href = "", ""
	case l.VoidReason == store.VoidAttempts:
		p.Title = "This enrollment link no longer works"
		p.Text = fmt.Sprintf("After %d wrong codes the link was disabled. %s", l.Attempts, newLink)
	case l.VoidReason == store.VoidReplaced:
		p.Title = "This enrollment link no longer works"
		p.Text = "A token was registered for your account with another link since this one was made. " +
			"If that was not you, contact " + s.set.SupportContact + " at once."
		p.Action, p.Href = "", ""
	default:
		s.met.inc(evExpired)
		p.Title = "This enrollment link has expired"
		p.Text = fmt.Sprintf("It was valid until %s. %s", s.clock(l.ExpiresAt, false), newLink)
	}
	s.render(w, status, "message", p)
}

// enrollPage shows the QR code, the key and the code form.
func (s *Service) enrollPage(w http.ResponseWriter, r *http.Request) {
	l, tok, ok := s.openLink(w, r)
	if !ok {
		return
	}
	s.met.inc(evPageViewed)
	s.sweepUser(r.Context(), l.UserID)
	s.showEnroll(w, r, http.StatusOK, l, tok, "")
}

func (s *Service) showEnroll(w http.ResponseWriter, r *http.Request, status int, l store.EnrollLink, tok, msg string) {
	p := &page{
		Title:   "Set up your second factor",
		User:    l.UserName,
		Issuer:  s.set.Issuer,
		Key:     otpcode.Groups(b32.EncodeToString(l.Secret)),
		QR:      s.base() + "/enroll/" + tok + "/qr.png",
		Digits:  l.Digits,
		Expires: s.clock(l.ExpiresAt, false),
		Error:   msg,
	}
	if l.Algorithm != "SHA1" {
		p.Algo = l.Algorithm
	}
	if l.Period != 30 {
		p.Period = l.Period
	}
	if u, err := s.store.GetUser(r.Context(), l.UserName); err == nil {
		for _, t := range u.Tokens {
			if t.State == store.TokenActive {
				p.Replaces = true
			}
		}
	}
	s.render(w, status, "enroll", p)
}

// qr serves the QR code of an open link's key URI.
func (s *Service) qr(w http.ResponseWriter, r *http.Request) {
	l, _, ok := s.openLink(w, r)
	if !ok {
		return
	}
	k, err := otpcode.KeyURI(s.set.Issuer, l.UserName, l.Secret, l.Algorithm, l.Digits, l.Period)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	b, err := qrPNG(k)
	if err != nil {
		s.internal(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/png")
	w.Write(b)
}

// enrollConfirm checks the code typed on the page and, if it is right,
// turns the link's secret into a token.
func (s *Service) enrollConfirm(w http.ResponseWriter, r *http.Request) {
	l, tok, ok := s.openLink(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	code, wellFormed := normalizeCode(r.PostFormValue("code"), l.Digits)
	if !wellFormed {
		s.showEnroll(w, r, http.StatusUnprocessableEntity, l, tok,
			fmt.Sprintf("Type the %d digits your app shows for %s, without letters.", l.Digits, s.set.Issuer+":"+l.UserName))
		return
	}
	now := s.now()
	step, match := matchStep(l.Secret, l.Algorithm, l.Digits, l.Period, code, now, s.set.Skew)
	if !match {
		n, voided, err := s.store.EnrollBadCode(ctx, l.ID, s.set.MaxAttempts)
		if errors.Is(err, store.ErrLinkClosed) {
			s.reloadClosed(w, r, tok)
			return
		}
		if err != nil {
			s.internal(w, r, err)
			return
		}
		s.met.inc(evBadCode)
		s.log.Info("enrollment: wrong code", "user", l.UserName, "link", l.ID, "attempts", n, "from", s.clientIP(r))
		if voided {
			s.met.inc(evVoided)
			s.log.Warn("enrollment: link voided after too many wrong codes", "user", l.UserName, "link", l.ID, "from", s.clientIP(r))
			l.VoidedAt, l.VoidReason, l.Attempts = now, store.VoidAttempts, n
			s.closedPage(w, r, l)
			return
		}
		left := s.set.MaxAttempts - n
		s.showEnroll(w, r, http.StatusUnprocessableEntity, l, tok, fmt.Sprintf(
			"That code is not right. Check that the entry in your app is %s:%s and type the code it shows now. %s left.",
			s.set.Issuer, l.UserName, plural(left, "attempt")))
		return
	}

	activeAt := now.Add(s.set.ActivationDelay)
	tk, err := s.store.ConfirmEnrollLink(ctx, l.ID, activeAt, step)
	if errors.Is(err, store.ErrLinkClosed) {
		s.reloadClosed(w, r, tok)
		return
	}
	if err != nil {
		s.internal(w, r, err)
		return
	}
	from := s.clientIP(r)
	s.met.inc(evConfirmed)
	s.sweepUser(ctx, l.UserID)

	p := &page{Title: "Your second factor is registered", User: l.UserName}
	if s.set.ActivationDelay > 0 {
		p.ActiveAt = s.clock(activeAt, s.set.ActivationDelay < 2*time.Minute)
		p.ActiveIn = in(activeAt.Sub(now))
	} else {
		p.ActiveNow = true
	}
	confirmation := "mailed"
	switch {
	case s.mailer == nil:
		confirmation = "not mailed: no SMTP server is configured"
	case l.UserEmail == "":
		confirmation = "not mailed: the user has no e-mail address"
	default:
		subject, body := s.confirmMail(l.UserName, now, activeAt, from.String())
		if err := s.send(ctx, l.UserName, l.UserEmail, "confirmation", subject, body); err != nil {
			confirmation = "mail failed"
			p.MailNote = "We could not send you the confirmation e-mail."
		} else {
			p.Mailed = true
		}
	}
	s.log.Info("enrollment: token registered", "user", l.UserName, "link", l.ID, "token", tk.ID,
		"active_at", activeAt.UTC().Format(time.RFC3339), "from", from, "confirmation", confirmation)
	s.render(w, http.StatusOK, "done", p)
}

// reloadClosed shows why a link that was open a moment ago is not any
// more (a concurrent confirmation or wrong code).
func (s *Service) reloadClosed(w http.ResponseWriter, r *http.Request, tok string) {
	l, err := s.store.EnrollLinkByToken(r.Context(), tok)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.internal(w, r, err)
		return
	}
	s.closedPage(w, r, l)
}

// sweepUser deletes the user's superseded tokens; a failure is only logged
// (the verifier ignores superseded tokens anyway).
func (s *Service) sweepUser(ctx context.Context, userID int64) {
	if n, err := s.store.DeleteSuperseded(ctx, userID, s.now()); err != nil {
		s.log.Error("enrollment: delete superseded tokens", "err", err)
	} else if n > 0 {
		s.log.Info("enrollment: superseded tokens deleted", "user_id", userID, "tokens", n)
	}
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
