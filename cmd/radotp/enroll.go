package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/radotp/radotp/config"
	"github.com/radotp/radotp/enrollment"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

// enrollmentSettings maps the configuration onto enrollment.Settings.
func enrollmentSettings(cfg *config.Config) enrollment.Settings {
	e := cfg.Enrollment
	return enrollment.Settings{
		PublicURL:           e.PublicURL,
		LinkTTL:             e.LinkTTL.Duration,
		MaxAttempts:         e.MaxAttempts,
		SelfService:         e.SelfServiceOn(),
		MailWhenNotEnrolled: e.MailWhenNotEnrolled(),
		SupportContact:      e.SupportContact,
		TrustedProxies:      e.TrustedProxyPrefixes,
		APIToken:            e.APIToken,
		Issuer:              cfg.TOTP.Issuer,
		Algorithm:           cfg.TOTP.Algorithm,
		Digits:              cfg.TOTP.Digits,
		Period:              cfg.TOTP.Period.Duration,
		Skew:                cfg.TOTP.Skew,
		ActivationDelay:     cfg.TOTP.ActivationDelay.Duration,
		DefaultPolicy:       verifier.Policy(cfg.Policy.Default),
		MaxFailures:         cfg.Lockout.MaxFailures,
		LockoutDuration:     cfg.Lockout.Duration.Duration,
		AutoCreateUsers:     cfg.FirstFactor.AutoCreate(),
	}
}

// newMailer is the [smtp] mailer, nil when smtp.host is empty (no mail).
func newMailer(cfg *config.Config) enrollment.Mailer {
	s := cfg.SMTP
	if s.Host == "" {
		return nil
	}
	return &enrollment.SMTP{
		Host: s.Host, Port: s.Port, From: s.From, Username: s.Username, Password: s.Password,
		TLS: s.TLS, Timeout: s.Timeout.Duration,
	}
}

// startEnrollment creates m.Enrollment (also without a site: its
// NotEnrolledHook mails links that another node's site may serve) and, when
// enrollment.listen is set, starts the site. Run calls it before the
// verifier is made, so that m.Enrollment.NotEnrolledHook() can be passed to it.
func (m *Main) startEnrollment() error {
	cfg := m.Config
	if cfg.Enrollment.SelfServiceOn() && cfg.FirstFactor.Backend == config.BackendNone {
		return errors.New(`enrollment.self_service = true needs a first factor that checks passwords, but first_factor.backend = "none" accepts any`)
	}
	ff := m.firstFactor
	if ff == nil {
		return errors.New("enrollment: no first factor (start it after the first-factor backends)")
	}
	svc, err := enrollment.New(enrollment.Options{
		Store:       m.DB,
		FirstFactor: ff,
		Mailer:      newMailer(cfg),
		Registry:    m.Registry,
		Logger:      m.Logger,
		Now:         m.Now,
		Settings:    enrollmentSettings(cfg),
	})
	if err != nil {
		return err
	}
	m.Enrollment = svc
	if cfg.Enrollment.Listen == "" {
		return nil
	}
	var tf *enrollment.TLSFiles
	if cfg.Enrollment.CertFile != "" {
		tf = &enrollment.TLSFiles{CertFile: cfg.Enrollment.CertFile, KeyFile: cfg.Enrollment.KeyFile}
	}
	return svc.Start(cfg.Enrollment.Listen, tf)
}

// closeEnrollment stops the site and waits for mails in progress.
func (m *Main) closeEnrollment() error {
	if m.Enrollment == nil {
		return nil
	}
	return m.Enrollment.Close()
}

// EnrollmentAddr is the bound address of the enrollment site, "" when off.
func (m *Main) EnrollmentAddr() string {
	if m.Enrollment == nil {
		return ""
	}
	return m.Enrollment.Addr()
}

// cliEnrollment is a Service for one admin command: links and mails, no site.
func cliEnrollment(cfg *config.Config, db *store.DB, now func() time.Time) (*enrollment.Service, error) {
	return enrollment.New(enrollment.Options{
		Store:    db,
		Mailer:   newMailer(cfg),
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now:      now,
		Settings: enrollmentSettings(cfg),
	})
}

// enrollLink is `radotp enroll link NAME [--ttl DURATION] [--email]`: it
// prints the one-time URL on stdout, and mails it with --email.
func (c *cli) enrollLink(args []string) error {
	fs := c.flags("enroll link")
	ttl := fs.Duration("ttl", 0, "how long the link works (default enrollment.link_ttl)")
	email := fs.Bool("email", false, "also mail the link to the user's address")
	pos, err := parse(fs, args, 1, "a user NAME")
	if err != nil {
		return err
	}
	if *ttl != 0 && (*ttl < time.Minute || *ttl > 30*24*time.Hour) {
		return usageError{fmt.Sprintf("--ttl %s: must be from 1m to 720h", *ttl)}
	}
	cfg, db, err := c.openStore()
	if err != nil {
		return err
	}
	defer db.Close()
	return c.makeLink(cfg, db, pos[0], store.LinkAdmin, *ttl, *email)
}

// makeLink makes a link, prints it and mails it if asked. A link that was
// asked to be mailed and was not is an error (after the URL is printed, so
// the admin can pass it on).
func (c *cli) makeLink(cfg *config.Config, db *store.DB, name, purpose string, ttl time.Duration, mail bool) error {
	if cfg.Enrollment.PublicURL == "" {
		return errors.New("enrollment.public_url is not set in the configuration; enrollment links are built from it")
	}
	svc, err := cliEnrollment(cfg, db, c.now)
	if err != nil {
		return err
	}
	defer svc.Close()
	ctx := context.Background()
	if mail {
		u, err := db.GetUser(ctx, name)
		if err != nil {
			return notFound(err, name)
		}
		if u.Email == "" {
			return fmt.Errorf("user %s has no e-mail address; add one or leave out --email", name)
		}
	}
	l, err := svc.CreateLink(ctx, name, purpose, ttl)
	if err != nil {
		return notFound(err, name)
	}
	fmt.Fprintln(c.stdout, l.URL)
	fmt.Fprintf(c.stderr, "enrollment link for %s: works once, until %s\n", name, l.ExpiresAt.Local().Format(time.RFC1123))
	if !mail {
		return nil
	}
	if err := svc.MailLink(ctx, l); err != nil {
		if errors.Is(err, enrollment.ErrNoMail) {
			return fmt.Errorf("not mailed: no [smtp] host is configured; give %s the link above yourself", name)
		}
		return fmt.Errorf("mail to %s failed: %v; give %s the link above yourself", l.Email, err, name)
	}
	fmt.Fprintf(c.stderr, "mailed to %s\n", l.Email)
	return nil
}
