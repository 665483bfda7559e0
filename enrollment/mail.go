package enrollment

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"mime"
	"net"
	"net/mail"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/radotp/radotp/store"
)

// Mailer sends one plain-text message.
type Mailer interface {
	// Send delivers the message to the SMTP server (or wherever). An error
	// means it was not accepted.
	Send(ctx context.Context, to, subject, body string) error
}

// TLS modes of SMTP.
const (
	SMTPStartTLS = "starttls" // plain connection, then STARTTLS; a server without it is an error
	SMTPImplicit = "implicit" // TLS from the first byte
	SMTPNone     = "none"     // no TLS (a relay on loopback)
)

// SMTP sends mail through an SMTP server with net/smtp.
type SMTP struct {
	Host     string // server host name (also the TLS server name)
	Port     int
	From     string // "radotp@example.org" or "radotp <radotp@example.org>"
	Username string // "" = no AUTH
	Password []byte
	TLS      string        // SMTPStartTLS (the zero value means it too), SMTPImplicit or SMTPNone
	Timeout  time.Duration // per message, connecting included; 0 = 10s

	// TLSConfig, if set, is cloned for the connection (tests set RootCAs);
	// ServerName defaults to Host.
	TLSConfig *tls.Config
	// HelloName is the name given in EHLO; "" = this machine's host name.
	HelloName string
}

// Send delivers one message.
func (m *SMTP) Send(ctx context.Context, to, subject, body string) error {
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return fmt.Errorf("smtp: sender %q: %w", m.From, err)
	}
	rcpt, err := mail.ParseAddress(to)
	if err != nil || strings.ContainsAny(to, "\r\n") {
		return fmt.Errorf("smtp: %q is not an e-mail address", to)
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	addr := net.JoinHostPort(m.Host, strconv.Itoa(m.Port))
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	// The deadline bounds every read and write; closing on cancel ends a
	// call that waits for the server when the caller gives up early.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()

	tcfg := &tls.Config{}
	if m.TLSConfig != nil {
		tcfg = m.TLSConfig.Clone()
	}
	if tcfg.ServerName == "" {
		tcfg.ServerName = m.Host
	}
	tcfg.MinVersion = max(tcfg.MinVersion, tls.VersionTLS12)
	if m.TLS == SMTPImplicit {
		tc := tls.Client(conn, tcfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("smtp: TLS with %s: %w", addr, err)
		}
		conn = tc
	}
	c, err := smtp.NewClient(conn, m.Host)
	if err != nil {
		return fmt.Errorf("smtp: %s: %w", addr, err)
	}
	defer c.Close()
	hello := m.HelloName
	if hello == "" {
		if hello, err = os.Hostname(); err != nil || hello == "" {
			hello = "localhost"
		}
	}
	if err := c.Hello(hello); err != nil {
		return fmt.Errorf("smtp: EHLO: %w", err)
	}
	if m.TLS == SMTPStartTLS || m.TLS == "" {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("smtp: %s does not offer STARTTLS (set smtp.tls = \"none\" only for a relay on loopback)", addr)
		}
		if err := c.StartTLS(tcfg); err != nil {
			return fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	}
	if m.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.Username, string(m.Password), m.Host)); err != nil {
			return fmt.Errorf("smtp: AUTH: %w", err)
		}
	}
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(rcpt.Address); err != nil {
		return fmt.Errorf("smtp: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(compose(m.From, to, subject, body, time.Now())); err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("smtp: message not accepted: %w", err)
	}
	_ = c.Quit() // the message was accepted; a failed QUIT does not undo that
	return nil
}

// compose builds a plain-text message (lines end in \n; the SMTP data
// writer makes them CRLF and dot-stuffs them).
func compose(from, to, subject, body string, now time.Time) []byte {
	id := make([]byte, 12)
	rand.Read(id)
	domain := "radotp"
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok {
			domain = d
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\n", oneHeaderLine(from))
	fmt.Fprintf(&b, "To: %s\n", oneHeaderLine(to))
	fmt.Fprintf(&b, "Subject: %s\n", mime.QEncoding.Encode("utf-8", oneHeaderLine(subject)))
	fmt.Fprintf(&b, "Date: %s\n", now.Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Message-ID: <%s@%s>\n", hex.EncodeToString(id), domain)
	b.WriteString("MIME-Version: 1.0\n")
	b.WriteString("Content-Type: text/plain; charset=utf-8\n")
	b.WriteString("Content-Transfer-Encoding: 8bit\n")
	b.WriteString("Auto-Submitted: auto-generated\n\n")
	b.WriteString(strings.ReplaceAll(body, "\r\n", "\n"))
	if !strings.HasSuffix(body, "\n") {
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// oneHeaderLine keeps a header value on its line (no header injection).
func oneHeaderLine(s string) string {
	return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
}

// linkMail is the subject and text of a mail carrying a link.
func (s *Service) linkMail(l Link) (subject, body string) {
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\n", l.User)
	switch l.Purpose {
	case store.LinkNeed:
		subject = "Set up your second factor to log in"
		b.WriteString("you just logged in with your password, but your account has no second\n" +
			"factor yet, so the login was refused. Set one up now:\n\n")
	case store.LinkInvite:
		subject = "Your new account " + l.User + ": set up your second factor"
		b.WriteString("an account was created for you. To log in you need a second factor:\n" +
			"a 6-digit code from an authenticator app on your phone. Set it up here:\n\n")
	default:
		subject = "Set up your second factor"
		b.WriteString("to log in you need a second factor: a code from an authenticator app on\n" +
			"your phone. Set it up here:\n\n")
	}
	fmt.Fprintf(&b, "%s\n\n", l.URL)
	fmt.Fprintf(&b, "The link works once, until %s. Open it on a computer or on the phone;\n"+
		"you need an authenticator app such as Aegis, FreeOTP, Google Authenticator\n"+
		"or Microsoft Authenticator. Do not forward this mail.\n\n", s.clock(l.ExpiresAt, true))
	fmt.Fprintf(&b, "If you did not expect it, contact %s.\n", s.set.SupportContact)
	return subject, b.String()
}

// confirmMail is the subject and text of the confirmation of a new token.
func (s *Service) confirmMail(user string, at, activeAt time.Time, from string) (subject, body string) {
	subject = "A new second factor was registered for your account"
	var b strings.Builder
	fmt.Fprintf(&b, "Hello %s,\n\n", user)
	fmt.Fprintf(&b, "a new second factor was registered for your account at %s from %s.\n", s.clock(at, true), from)
	if activeAt.After(at) {
		fmt.Fprintf(&b, "It becomes active at %s; until then any earlier token keeps working.\n", s.clock(activeAt, true))
	}
	fmt.Fprintf(&b, "\nIf this was not you, contact %s at once.\n", s.set.SupportContact)
	return subject, b.String()
}
