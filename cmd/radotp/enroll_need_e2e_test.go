package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/radotp/radotp/enrollment/smtptest"
)

// "E-mail on need": a user who must use 2FA and has no token passes the
// password over RADIUS; radotp mails an enrollment link (once per link_ttl)
// and, in challenge mode, says so in the Reply-Message.
func TestMailLinkWhenNotEnrolled(t *testing.T) {
	requireTools(t, "radclient")
	mail := smtptest.Start(t)
	dir := t.TempDir()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := writeModeConfig(t, dir, "challenge", "", fmt.Sprintf(`[enrollment]
listen = "127.0.0.1:%d"
public_url = "http://127.0.0.1:%d"
mail_link_when_not_enrolled = true
[smtp]
host = "127.0.0.1"
port = %d
from = "radotp <radotp@example.org>"
tls = "none"
`, port, port, mail.Port))
	mustAdmin(t, cfg, "hunter2\n", "user", "add", "newbie", "--email", "newbie@example.org", "--password-stdin")
	s := startServer(t, cfg)

	got, out := radclientSend(t, s.radius, `User-Name = "newbie"`, `User-Password = "hunter2"`)
	expectReply(t, "required user without a token", got, "Access-Challenge")
	if m := replyMsg.FindStringSubmatch(out); m == nil || !strings.Contains(m[1], "enrollment link was sent") {
		t.Fatalf("Reply-Message does not say a link was mailed:\n%s", out)
	}
	msg := mail.Wait(t, 10*time.Second)
	if !strings.Contains(strings.Join(msg.To, ","), "newbie@example.org") || !linkURL.MatchString(msg.Body()) {
		t.Fatalf("enrollment mail to %v:\n%s", msg.To, msg.Body())
	}
	// Answering the notice gets a Reject: there is nothing to check a code against.
	st := stateAttr.FindStringSubmatch(out)
	got, _ = radclientSend(t, s.radius, `User-Name = "newbie"`, `User-Password = "123456"`, "State = "+st[1])
	expectReply(t, "answer to the notice", got, "Access-Reject")
	// A second login within link_ttl mails nothing new; a wrong password never mails.
	radclientSend(t, s.radius, `User-Name = "newbie"`, `User-Password = "hunter2"`)
	radclientSend(t, s.radius, `User-Name = "newbie"`, `User-Password = "guess"`)
	mail.None(t, time.Second)
	if got := s.metric(t, reason("not_enrolled")); got != 1 {
		t.Errorf("not_enrolled = %v, want 1", got)
	}
}
