package enrollment

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/radotp/radotp/store"
)

func mailNeedOn(o *Options) { o.Settings.MailWhenNotEnrolled = true }

var linkInMail = regexp.MustCompile(regexp.QuoteMeta(publicURL) + `/enroll/[A-Za-z0-9_-]{43}`)

func TestNotEnrolledHook(t *testing.T) {
	e := newEnv(t, mailNeedOn)
	u := e.user("alice", "pw", "alice@example.org", "required")
	hook := e.svc.NotEnrolledHook()

	start := time.Now()
	msg := hook(context.Background(), u)
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Errorf("hook took %v; it must not wait for the mail", d)
	}
	if msg != "An enrollment link was sent to your e-mail address." {
		t.Fatalf("hook message %q", msg)
	}
	m := e.smtp.Wait(t, 5*time.Second)
	if m.To[0] != "alice@example.org" {
		t.Fatalf("mail to %v", m.To)
	}
	mustContain(t, "need mail", m.Data, "Subject: Set up your second factor to log in",
		"you just logged in with your password, but your account has no second", "contact "+support)
	url := linkInMail.FindString(m.Data)
	if url == "" {
		t.Fatalf("no link in the mail:\n%s", m.Data)
	}
	wantStatus(t, "mailed link", e.req("GET", strings.TrimPrefix(url, publicURL), nil), http.StatusOK)

	// At most one mail per link_ttl: the user is told again, but not mailed.
	if msg := hook(context.Background(), u); msg == "" {
		t.Error("no message on the second login")
	}
	e.smtp.None(t, 300*time.Millisecond)
	e.clock.Add(24 * time.Hour)
	hook(context.Background(), u)
	if m2 := e.smtp.Wait(t, 5*time.Second); linkInMail.FindString(m2.Data) == url {
		t.Error("the new mail has the old link")
	}
	e.eventually("mail_sent", 2)
	e.events(map[string]float64{"link_created": 2})
	mustContain(t, "log", e.logs.String(), "a link was mailed recently; not mailing another")
}

func TestNotEnrolledHook_Off(t *testing.T) {
	var nilService *Service
	if nilService.NotEnrolledHook() != nil {
		t.Error("nil Service gives a hook")
	}
	for _, tc := range []struct {
		name string
		mod  func(*Options)
		user store.User
	}{
		{"SettingOff", nil, store.User{Name: "a", Email: "a@example.org"}},
		{"NoMailer", func(o *Options) { mailNeedOn(o); o.Mailer = nil }, store.User{Name: "a", Email: "a@example.org"}},
		{"NoAddress", mailNeedOn, store.User{Name: "a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mod)
			e.user("a", "", tc.user.Email, "")
			if msg := e.svc.NotEnrolledHook()(context.Background(), tc.user); msg != "" {
				t.Errorf("message %q, want none", msg)
			}
			e.smtp.None(t, 200*time.Millisecond)
		})
	}
}

func TestNotEnrolledHook_MailFails(t *testing.T) {
	e := newEnv(t, mailNeedOn)
	e.smtp.SetReject(true)
	u := e.user("bob", "", "bob@example.org", "")
	e.svc.NotEnrolledHook()(context.Background(), u)
	e.eventually("mail_failed", 1)
	e.events(map[string]float64{"mail_sent": 0})
	mustContain(t, "log", e.logs.String(), `msg="enrollment: mail failed" user=bob mail=link`)
}

func TestSMTP_StartTLSRequired(t *testing.T) {
	e := newEnv(t, nil)
	m := &SMTP{Host: e.smtp.Host, Port: e.smtp.Port, From: "r@example.org", HelloName: "test"} // TLS "" = starttls
	err := m.Send(context.Background(), "a@example.org", "s", "b")
	if err == nil || !strings.Contains(err.Error(), "does not offer STARTTLS") {
		t.Fatalf("send without STARTTLS: %v", err)
	}
	e.smtp.None(t, 100*time.Millisecond)
	for _, to := range []string{"a@example.org\r\nBcc: x@example.org", "not an address"} {
		m.TLS = SMTPNone
		if err := m.Send(context.Background(), to, "s", "b"); err == nil {
			t.Errorf("send to %q succeeded", to)
		}
	}
}

func TestSMTP_Message(t *testing.T) {
	e := newEnv(t, nil)
	m := &SMTP{Host: e.smtp.Host, Port: e.smtp.Port, From: "radotp <radotp@example.org>", TLS: SMTPNone, HelloName: "test"}
	body := "line one\n.starts with a dot\nÜmlaut\n"
	if err := m.Send(context.Background(), "a@example.org", "Subject with Ümlaut\r\nBcc: x@example.org", body); err != nil {
		t.Fatal(err)
	}
	got := e.smtp.Wait(t, 5*time.Second)
	if got.Body() != body {
		t.Errorf("body %q, want %q", got.Body(), body)
	}
	if got.Header("Bcc") != "" || !strings.HasPrefix(got.Header("Subject"), "=?utf-8?q?") {
		t.Errorf("header injection or unencoded subject:\n%s", got.Data)
	}
	for _, h := range []string{"From", "To", "Date", "Message-ID", "Content-Type", "Auto-Submitted"} {
		if got.Header(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	if got.Header("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", got.Header("Content-Type"))
	}
}
