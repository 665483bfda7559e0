// Package enrollment is the web site where users get their TOTP token, and
// the links that lead there.
//
// # Ways in
//
// Every enrollment starts from a one-time link, https://PUBLIC_URL/enroll/TOKEN:
// made by an admin (radotp enroll link), mailed as an invitation (radotp user
// add --invite), made by the self-service login (/login, the user's password
// with the same lockout counters as RADIUS, and a current code if the user
// already has a token), mailed when a user without a token passed the first
// factor over RADIUS (NotEnrolledHook), or minted by an identity portal
// (POST /api/enroll-links with a bearer token).
//
// # Links
//
// A link token is 256 random bits; the database keeps only its SHA-256. The
// secret the user's app gets is chosen when the link is made and kept sealed
// with the key file, bound to the link's row, so reloading the page shows the
// same key until it is confirmed. A link works once, until it expires, and
// for at most Settings.MaxAttempts wrong codes; a confirmation voids the
// user's other open links.
//
// # Confirmation and activation
//
// The user types a code from the app. A right code turns the pending secret
// into an active token usable from now + Settings.ActivationDelay (a right
// code before then is rejected with reason not_yet_active), and the
// confirming code's time step is recorded as used, so that code cannot log
// in. An older token keeps working until the new one is active; then it is
// superseded and deleted (on the user's next visit, or by the hourly sweep).
//
// # Security
//
// Every response has Cache-Control: no-store, the CSP "default-src 'self';
// frame-ancestors 'none'", Referrer-Policy: no-referrer and
// X-Content-Type-Options: nosniff. Every POST goes through
// http.CrossOriginProtection. URLs are built from Settings.PublicURL, never
// from the Host header. /login, each link and the API are rate limited per
// client address (X-Forwarded-For only from Settings.TrustedProxies). The
// secret appears only in the page body and the QR image (whose URL names the
// link, not the secret); neither the secret, nor link tokens, nor codes are
// logged or used as metric labels.
package enrollment

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/radotp/radotp/otpcode"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// Store is what enrollment needs from storage (store.DB satisfies it).
type Store interface {
	// UserAuth returns the user with its tokens, secrets unsealed.
	UserAuth(ctx context.Context, name string) (store.User, error)
	// GetUser returns the user with its tokens, without secrets.
	GetUser(ctx context.Context, name string) (store.User, error)
	CreateEnrollLink(ctx context.Context, userName string, l store.EnrollLink, notSince time.Time) (store.EnrollLink, string, error)
	EnrollLinkByToken(ctx context.Context, token string) (store.EnrollLink, error)
	EnrollBadCode(ctx context.Context, linkID int64, max int) (attempts int, voided bool, err error)
	ConfirmEnrollLink(ctx context.Context, linkID int64, activeAt time.Time, lastStep int64) (store.Token, error)
	DeleteSuperseded(ctx context.Context, userID int64, now time.Time) (int, error)
	PruneEnrollLinks(ctx context.Context, now, forgetBefore time.Time) (int, error)
	// CreateUser adds a user (AutoCreateUsers); store.ErrExists if taken.
	CreateUser(ctx context.Context, u store.User) (store.User, error)
	// The verifier's lockout and replay guard, shared with RADIUS.
	CommitSuccess(ctx context.Context, userID, tokenID, step int64, drift int) (bool, error)
	ResetFailures(ctx context.Context, userID int64) error
	RecordFailure(ctx context.Context, userID int64, max int, lockFor time.Duration) (bool, error)
}

// Rate is a token bucket: Burst requests at once, then one per Every.
type Rate struct {
	Burst int
	Every time.Duration
}

// Default rate limits.
var (
	DefaultLoginRate = Rate{Burst: 10, Every: 6 * time.Second}         // per client address, and per user name
	DefaultLinkRate  = Rate{Burst: 30, Every: 2 * time.Second}         // per link
	DefaultIPRate    = Rate{Burst: 120, Every: 200 * time.Millisecond} // per client address, every request but the style sheet
)

// LoginLinkTTL is the most a link made by the self-service login lives: the
// user is sent to it at once.
const LoginLinkTTL = 15 * time.Minute

// forgetAfter is how long an expired link is kept so that it still gets
// "this link has expired" rather than "not a valid link".
const forgetAfter = 7 * 24 * time.Hour

// Settings are the enrollment parameters (from [enrollment], [totp],
// [lockout] and [policy]).
type Settings struct {
	PublicURL           string        // absolute http(s) URL of the site, no trailing slash
	LinkTTL             time.Duration // default lifetime of a link
	MaxAttempts         int           // wrong codes that void a link
	SelfService         bool          // serve /login
	MailWhenNotEnrolled bool          // NotEnrolledHook mails links
	SupportContact      string        // "your administrator", "help@example.org"
	TrustedProxies      []netip.Prefix
	APIToken            []byte         // bearer token of the API; nil = API off
	Location            *time.Location // for times shown to users; nil = time.Local

	// New tokens and code checks.
	Issuer          string
	Algorithm       string // SHA1, SHA256, SHA512
	Digits          int
	Period          time.Duration
	Skew            int
	ActivationDelay time.Duration

	// Self-service login: the same policy and lockout as RADIUS.
	DefaultPolicy   verifier.Policy
	MaxFailures     int
	LockoutDuration time.Duration
	// AutoCreateUsers: a user the first factor knows (LDAP, upstream RADIUS)
	// but radotp does not gets a local record at the self-service login, as
	// the verifier does over RADIUS, so that they can enroll.
	AutoCreateUsers bool

	// Rate limits; zero values mean the defaults above.
	LoginRate, LinkRate, IPRate Rate
}

// Options are the dependencies of a Service.
type Options struct {
	Store       Store
	FirstFactor verifier.FirstFactor // checks /login passwords; required with SelfService
	Mailer      Mailer               // nil: no mail (links printed or returned, confirmations logged)
	Registry    prometheus.Registerer
	Logger      *slog.Logger
	Now         func() time.Time
	Settings    Settings
}

// Service serves the enrollment site and makes links. Create it with New.
type Service struct {
	store  Store
	ff     verifier.FirstFactor
	mailer Mailer
	log    *slog.Logger
	now    func() time.Time
	set    Settings
	met    *metrics

	loginIP, loginUser, link, ip *limiter

	needs chan store.User // NotEnrolledHook -> mail worker
	quit  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once

	srv *server // the HTTP server, once Start ran
}

// New returns a Service. It starts the worker that mails links for
// NotEnrolledHook; Close stops it.
func New(o Options) (*Service, error) {
	set := o.Settings
	if o.Store == nil {
		return nil, errors.New("enrollment: no store")
	}
	if set.PublicURL != "" {
		u, err := url.Parse(set.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("enrollment: public URL %q is not an absolute http(s) URL", set.PublicURL)
		}
		set.PublicURL = strings.TrimRight(set.PublicURL, "/")
	}
	if set.SelfService && o.FirstFactor == nil {
		return nil, errors.New("enrollment: self-service needs a first factor")
	}
	if set.LinkTTL <= 0 {
		set.LinkTTL = 24 * time.Hour
	}
	if set.MaxAttempts <= 0 {
		set.MaxAttempts = 5
	}
	if set.SupportContact == "" {
		set.SupportContact = "your administrator"
	}
	if set.Location == nil {
		set.Location = time.Local
	}
	if set.Issuer == "" {
		set.Issuer = "radotp"
	}
	if set.Algorithm == "" {
		set.Algorithm = "SHA1"
	}
	if otpcode.KeySize(set.Algorithm) == 0 {
		return nil, fmt.Errorf("enrollment: algorithm %q is not SHA1, SHA256 or SHA512", set.Algorithm)
	}
	if set.Digits == 0 {
		set.Digits = 6
	}
	if set.Period <= 0 {
		set.Period = 30 * time.Second
	}
	if set.DefaultPolicy == verifier.PolicyDefault {
		set.DefaultPolicy = verifier.PolicyRequired
	}
	for _, r := range []struct {
		r   *Rate
		def Rate
	}{{&set.LoginRate, DefaultLoginRate}, {&set.LinkRate, DefaultLinkRate}, {&set.IPRate, DefaultIPRate}} {
		if r.r.Burst <= 0 || r.r.Every <= 0 {
			*r.r = r.def
		}
	}
	s := &Service{
		store:  o.Store,
		ff:     o.FirstFactor,
		mailer: o.Mailer,
		log:    o.Logger,
		now:    o.Now,
		set:    set,
		needs:  make(chan store.User, 64),
		quit:   make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	reg := o.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	var err error
	if s.met, err = newMetrics(reg); err != nil {
		return nil, err
	}
	s.loginIP = newLimiter(set.LoginRate, s.now)
	s.loginUser = newLimiter(set.LoginRate, s.now)
	s.link = newLimiter(set.LinkRate, s.now)
	s.ip = newLimiter(set.IPRate, s.now)

	s.wg.Add(1)
	go s.mailWorker()
	return s, nil
}

// Close stops the HTTP server (if started) and the background work, waiting
// for mails being sent.
func (s *Service) Close() error {
	var err error
	s.once.Do(func() {
		if s.srv != nil {
			err = s.srv.shutdown()
		}
		close(s.quit)
		s.wg.Wait()
	})
	return err
}

// Link is a link that was made.
type Link struct {
	User      string
	Email     string // the user's address ("" if none)
	URL       string // PublicURL/enroll/TOKEN
	Purpose   string
	ExpiresAt time.Time
	ID        int64
}

// ErrNoPublicURL is returned when a link is asked for but no public URL is
// configured to build it from.
var ErrNoPublicURL = errors.New("enrollment: enrollment.public_url is not set; links are built from it")

// CreateLink makes a link for the named user that lives ttl (0 means
// Settings.LinkTTL). purpose is one of store.LinkAdmin, ... The link is not
// mailed; see MailLink. store.ErrNotFound if there is no such user.
func (s *Service) CreateLink(ctx context.Context, user, purpose string, ttl time.Duration) (Link, error) {
	return s.createLink(ctx, user, purpose, ttl, time.Time{})
}

func (s *Service) createLink(ctx context.Context, user, purpose string, ttl time.Duration, notSince time.Time) (Link, error) {
	if s.set.PublicURL == "" {
		return Link{}, ErrNoPublicURL
	}
	if ttl <= 0 {
		ttl = s.set.LinkTTL
	}
	secret := make([]byte, otpcode.KeySize(s.set.Algorithm))
	rand.Read(secret)
	defer clear(secret)
	l, token, err := s.store.CreateEnrollLink(ctx, user, store.EnrollLink{
		Purpose: purpose, ExpiresAt: s.now().Add(ttl), Secret: secret,
		Algorithm: s.set.Algorithm, Digits: s.set.Digits, Period: int(s.set.Period / time.Second),
	}, notSince)
	if err != nil {
		return Link{}, err
	}
	s.met.inc(evLinkCreated)
	s.log.Info("enrollment: link created", "user", user, "link", l.ID, "purpose", purpose,
		"expires", l.ExpiresAt.UTC().Format(time.RFC3339))
	return Link{User: user, Email: l.UserEmail, URL: s.linkURL(token), Purpose: purpose, ExpiresAt: l.ExpiresAt, ID: l.ID}, nil
}

// linkURL is the absolute URL of a link token, from the public URL only.
func (s *Service) linkURL(token string) string {
	return s.set.PublicURL + "/enroll/" + token
}

// ErrNoMail is returned by MailLink when no mail can be sent: no SMTP
// server is configured, or the user has no e-mail address.
var ErrNoMail = errors.New("enrollment: no mail sent")

// MailLink mails the link to its user. Without a mailer or an address it
// returns an error wrapping ErrNoMail and sends nothing.
func (s *Service) MailLink(ctx context.Context, l Link) error {
	if s.mailer == nil {
		return fmt.Errorf("%w: no SMTP server is configured ([smtp] host)", ErrNoMail)
	}
	if l.Email == "" {
		return fmt.Errorf("%w: user %q has no e-mail address (radotp user add --email)", ErrNoMail, l.User)
	}
	subject, body := s.linkMail(l)
	return s.send(ctx, l.User, l.Email, "link", subject, body)
}

// send mails one message and counts and logs the result.
func (s *Service) send(ctx context.Context, user, to, kind, subject, body string) error {
	err := s.mailer.Send(ctx, to, subject, body)
	if err != nil {
		s.met.inc(evMailFailed)
		s.log.Error("enrollment: mail failed", "user", user, "mail", kind, "err", err)
		return fmt.Errorf("enrollment: mail to %s: %w", to, err)
	}
	s.met.inc(evMailSent)
	s.log.Info("enrollment: mail sent", "user", user, "mail", kind)
	return nil
}

// NotEnrolledHook returns the verifier hook for users who need a token, have
// none and passed the first factor: with Settings.MailWhenNotEnrolled, a
// mailer and the user's address, it queues a link mail (at most one per
// LinkTTL and user, enforced by the database) and returns a sentence for the
// Reply-Message; otherwise "". It never blocks on the network or the
// database. A nil Service returns a nil hook.
func (s *Service) NotEnrolledHook() verifier.NotEnrolledHook {
	if s == nil {
		return nil
	}
	return func(ctx context.Context, u store.User) string {
		if !s.set.MailWhenNotEnrolled || s.mailer == nil || s.set.PublicURL == "" {
			return ""
		}
		if u.Email == "" {
			s.log.Info("enrollment: user needs a token but has no e-mail address for a link", "user", u.Name)
			return ""
		}
		select {
		case s.needs <- u:
		default:
			s.log.Warn("enrollment: too many link mails queued; not mailing", "user", u.Name)
			return ""
		}
		return "An enrollment link was sent to your e-mail address."
	}
}

// mailWorker makes and mails the links NotEnrolledHook queued.
func (s *Service) mailWorker() {
	defer s.wg.Done()
	for {
		select {
		case <-s.quit:
			return
		case u := <-s.needs:
			s.mailNeed(u)
		}
	}
}

func (s *Service) mailNeed(u store.User) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := s.createLink(ctx, u.Name, store.LinkNeed, 0, s.now().Add(-s.set.LinkTTL))
	if errors.Is(err, store.ErrLinkRecent) {
		s.log.Debug("enrollment: a link was mailed recently; not mailing another", "user", u.Name)
		return
	}
	if err != nil {
		s.log.Error("enrollment: cannot make a link for a user without a token", "user", u.Name, "err", err)
		return
	}
	_ = s.MailLink(ctx, l) // counted and logged
}

// Sweep deletes superseded tokens and forgets long-expired links. Start runs
// it hourly; it is exported for tests and tools.
func (s *Service) Sweep(ctx context.Context) error {
	now := s.now()
	n, err := s.store.DeleteSuperseded(ctx, 0, now)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("enrollment: superseded tokens deleted", "tokens", n)
	}
	_, err = s.store.PruneEnrollLinks(ctx, now, now.Add(-forgetAfter))
	return err
}

func (s *Service) sweeper(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := s.Sweep(ctx); err != nil {
			s.log.Error("enrollment: sweep failed", "err", err)
		}
		cancel()
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
	}
}
