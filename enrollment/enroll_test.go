package enrollment

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/radotp/radotp/otpcode"
	"github.com/radotp/radotp/store"
)

func TestEnroll_Flow(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice", "pw", "alice@example.org", "")
	_, tok := e.link("alice")
	e.events(map[string]float64{"link_created": 1, "page_viewed": 0, "confirmed": 0})

	// The page: QR image, key grouped in fours, details, the form.
	w := e.req("GET", "/enroll/"+tok, nil)
	wantStatus(t, "page", w, 200)
	body := w.Body.String()
	mustContain(t, "page", body, "Set up your second factor", "<strong>alice</strong>", `src="/enroll/`+tok+`/qr.png"`,
		"Can't scan? Enter this key", "ACME VPN:alice", `name="code"`, `method="post"`, "until Thu 5 Mar 2026, 10:00 UTC")
	key := pageKey(t, body)
	if len(key) != 20 {
		t.Fatalf("key is %d bytes, want 20 (SHA1)", len(key))
	}
	if !regexp.MustCompile(`id="key">([A-Z2-7]{4} ){7}[A-Z2-7]{4}</p>`).MatchString(body) {
		t.Errorf("key not grouped in fours:\n%s", keyRe.FindString(body))
	}
	// Reloading shows the same key (it is sealed in the database).
	if again := pageKey(t, e.req("GET", "/enroll/"+tok, nil).Body.String()); !bytes.Equal(again, key) {
		t.Fatal("reload shows another key")
	}
	e.events(map[string]float64{"page_viewed": 2})

	// The QR PNG is the otpauth:// URI of that key.
	w = e.req("GET", "/enroll/"+tok+"/qr.png", nil)
	wantStatus(t, "qr", w, 200)
	if ct := w.Header().Get("Content-Type"); ct != "image/png" {
		t.Errorf("QR Content-Type %q", ct)
	}
	img, err := png.Decode(bytes.NewReader(w.Body.Bytes()))
	if err != nil || img.Bounds().Dx() != qrSize {
		t.Fatalf("QR PNG: %v, bounds %v", err, img.Bounds())
	}
	k, _ := otpcode.KeyURI("ACME VPN", "alice", key, "SHA1", 6, 30)
	want, _ := qrPNG(k)
	if !bytes.Equal(w.Body.Bytes(), want) {
		t.Error("QR image is not the key URI of the key on the page")
	}
	if zbar, err := exec.LookPath("zbarimg"); err == nil {
		// A real decoder reads the label, the parameters and the key.
		f := filepath.Join(t.TempDir(), "qr.png")
		writeFile(t, f, w.Body.Bytes())
		out, err := exec.Command(zbar, "--quiet", "--raw", f).Output()
		if err != nil {
			t.Fatalf("zbarimg: %v", err)
		}
		u, err := url.Parse(strings.TrimSpace(string(out)))
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/ACME VPN:alice" || q.Get("issuer") != "ACME VPN" ||
			q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" ||
			q.Get("secret") != b32.EncodeToString(key) {
			t.Errorf("decoded QR %q", out)
		}
	}

	// A right code confirms: success page with the activation time.
	e.clock.Add(40 * time.Second)
	code := codeAt(key, e.clock.Now())
	w = e.req("POST", "/enroll/"+tok, url.Values{"code": {code[:3] + " " + code[3:]}})
	wantStatus(t, "confirm", w, 200)
	mustContain(t, "success page", w.Body.String(),
		"Your new two-factor token is registered. It becomes active at 10:15 UTC (in 15 minutes). We sent a confirmation e-mail.")
	e.events(map[string]float64{"confirmed": 1, "mail_sent": 1, "bad_code": 0})

	// The confirmation mail.
	m := e.smtp.Wait(t, 5*time.Second)
	if len(m.To) != 1 || m.To[0] != "alice@example.org" || m.From != "radotp@example.org" {
		t.Errorf("mail envelope from %q to %v", m.From, m.To)
	}
	mustContain(t, "confirmation mail", m.Data,
		"Subject: A new second factor was registered for your account",
		"a new second factor was registered for your account at 10:00:40 UTC from 192.0.2.10.",
		"It becomes active at 10:15:40 UTC",
		"If this was not you, contact "+support+" at once.")

	// The token: active from now + activation delay; the confirming code's
	// step is used.
	u, err := e.db.UserAuth(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Tokens) != 1 {
		t.Fatalf("tokens %+v", u.Tokens)
	}
	tk := u.Tokens[0]
	if !bytes.Equal(tk.Secret, key) || tk.State != store.TokenActive || !tk.ActiveAt.Equal(e.clock.Now().Add(15*time.Minute)) ||
		tk.LastStep != e.clock.Now().Unix()/30 {
		t.Errorf("token %+v", tk)
	}

	// Single use.
	w = e.req("GET", "/enroll/"+tok, nil)
	wantStatus(t, "used link", w, http.StatusGone)
	mustContain(t, "used link", w.Body.String(), "This enrollment link was already used", "at 10:00 UTC")
	wantStatus(t, "used link POST", e.req("POST", "/enroll/"+tok, url.Values{"code": {code}}), http.StatusGone)
	wantStatus(t, "used link QR", e.req("GET", "/enroll/"+tok+"/qr.png", nil), http.StatusGone)
	if e.event("confirmed") != 1 {
		t.Error("second confirmation counted")
	}
}

func writeFile(t testing.TB, name string, b []byte) {
	t.Helper()
	if err := os.WriteFile(name, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestEnroll_WrongCodesVoid(t *testing.T) {
	e := newEnv(t, nil) // max_attempts 3
	e.user("bob", "", "", "")
	_, tok := e.link("bob")
	key := pageKey(t, e.req("GET", "/enroll/"+tok, nil).Body.String())
	wrong := notCode(codeAt(key, e.clock.Now()))

	// A malformed code is explained and not counted.
	for _, bad := range []string{"", "12345", "1234567", "12a456", "１２３４５６"} {
		w := e.req("POST", "/enroll/"+tok, url.Values{"code": {bad}})
		wantStatus(t, "malformed "+bad, w, http.StatusUnprocessableEntity)
		mustContain(t, "malformed", w.Body.String(), "Type the 6 digits your app shows for ACME VPN:bob")
	}
	e.events(map[string]float64{"bad_code": 0})

	w := e.req("POST", "/enroll/"+tok, url.Values{"code": {wrong}})
	wantStatus(t, "wrong 1", w, http.StatusUnprocessableEntity)
	mustContain(t, "wrong 1", w.Body.String(), "That code is not right.", "2 attempts left.", `role="alert"`)
	if !bytes.Equal(pageKey(t, w.Body.String()), key) {
		t.Error("the page after a wrong code shows another key")
	}
	w = e.req("POST", "/enroll/"+tok, url.Values{"code": {wrong}})
	mustContain(t, "wrong 2", w.Body.String(), "1 attempt left.")
	w = e.req("POST", "/enroll/"+tok, url.Values{"code": {wrong}})
	wantStatus(t, "wrong 3", w, http.StatusGone)
	mustContain(t, "wrong 3", w.Body.String(), "This enrollment link no longer works", "After 3 wrong codes the link was disabled.")
	e.events(map[string]float64{"bad_code": 3, "voided": 1, "confirmed": 0})

	// Void: even the right code does nothing now.
	w = e.req("POST", "/enroll/"+tok, url.Values{"code": {codeAt(key, e.clock.Now())}})
	wantStatus(t, "right code on a void link", w, http.StatusGone)
	wantStatus(t, "void link page", e.req("GET", "/enroll/"+tok, nil), http.StatusGone)
	if u, _ := e.db.GetUser(context.Background(), "bob"); len(u.Tokens) != 0 {
		t.Fatalf("a void link made a token: %+v", u.Tokens)
	}
}

// notCode returns a 6-digit code that is not c.
func notCode(c string) string {
	b := []byte(c)
	b[0] = '0' + (b[0]-'0'+5)%10
	return string(b)
}

func TestEnroll_CodeWindow(t *testing.T) {
	e := newEnv(t, nil) // skew 1
	e.user("carol", "", "", "")
	_, tok := e.link("carol")
	key := pageKey(t, e.req("GET", "/enroll/"+tok, nil).Body.String())
	// Two steps late is outside the window: a wrong code.
	w := e.req("POST", "/enroll/"+tok, url.Values{"code": {codeAt(key, e.clock.Now().Add(-60*time.Second))}})
	wantStatus(t, "two steps old", w, http.StatusUnprocessableEntity)
	// One step late is inside; the recorded step is the code's own.
	w = e.req("POST", "/enroll/"+tok, url.Values{"code": {codeAt(key, e.clock.Now().Add(-30*time.Second))}})
	wantStatus(t, "one step old", w, http.StatusOK)
	u, _ := e.db.GetUser(context.Background(), "carol")
	if got, want := u.Tokens[0].LastStep, e.clock.Now().Unix()/30-1; got != want {
		t.Errorf("last step %d, want %d", got, want)
	}
}

func TestEnroll_ExpiredLink(t *testing.T) {
	e := newEnv(t, nil)
	e.user("dave", "", "", "")
	l, tok := e.link("dave")
	e.clock.Add(24 * time.Hour)
	for _, w := range []*httptest.ResponseRecorder{
		e.req("GET", "/enroll/"+tok, nil),
		e.req("POST", "/enroll/"+tok, url.Values{"code": {"123456"}}),
	} {
		wantStatus(t, "expired", w, http.StatusGone)
		mustContain(t, "expired", w.Body.String(), "This enrollment link has expired", "It was valid until 10:00 UTC", "Sign in")
	}
	e.events(map[string]float64{"expired": 2, "page_viewed": 0, "bad_code": 0})
	if !l.ExpiresAt.Equal(start.Add(24 * time.Hour)) {
		t.Errorf("expires %v", l.ExpiresAt)
	}
	// Sweep clears its secret; a week later it is forgotten: "not valid".
	if err := e.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.clock.Add(8 * 24 * time.Hour)
	if err := e.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "forgotten", e.req("GET", "/enroll/"+tok, nil), http.StatusNotFound)
}

func TestEnroll_UnknownLink(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{
		"/enroll/" + strings.Repeat("A", 43), // the form of a token, but none
		"/enroll/short",
		"/enroll/" + strings.Repeat("A", 43) + "/qr.png",
		"/enroll/%2e%2e%2fetc%2fpasswd",
	} {
		w := e.req("GET", path, nil)
		wantStatus(t, path, w, http.StatusNotFound)
		mustContain(t, path, w.Body.String(), "This enrollment link is not valid", "Check that you opened the whole link")
	}
}

func TestEnroll_ReplacesAndSupersedes(t *testing.T) {
	e := newEnv(t, nil)
	e.user("erin", "", "erin@example.org", "")
	oldKey := e.token("erin", start.Add(-time.Hour))
	_, tok := e.link("erin")
	w := e.req("GET", "/enroll/"+tok, nil)
	mustContain(t, "page", w.Body.String(), "It replaces the token you have now; that one keeps working until the new one is active.")
	key := pageKey(t, w.Body.String())
	wantStatus(t, "confirm", e.req("POST", "/enroll/"+tok, url.Values{"code": {codeAt(key, e.clock.Now())}}), http.StatusOK)
	e.smtp.Wait(t, 5*time.Second)

	u, _ := e.db.UserAuth(context.Background(), "erin")
	if len(u.Tokens) != 2 || !bytes.Equal(u.Tokens[0].Secret, oldKey) {
		t.Fatalf("the old token must stay until the new one is active: %+v", u.Tokens)
	}
	// Once the new one is active, the sweep deletes the old one.
	e.clock.Add(15 * time.Minute)
	if err := e.svc.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, _ = e.db.UserAuth(context.Background(), "erin")
	if len(u.Tokens) != 1 || !bytes.Equal(u.Tokens[0].Secret, key) {
		t.Fatalf("after activation: tokens %+v, want only the new one", u.Tokens)
	}
}

func TestEnroll_OtherLinksVoided(t *testing.T) {
	e := newEnv(t, nil)
	e.user("fay", "", "", "")
	_, tok1 := e.link("fay")
	_, tok2 := e.link("fay")
	key := pageKey(t, e.req("GET", "/enroll/"+tok1, nil).Body.String())
	wantStatus(t, "confirm", e.req("POST", "/enroll/"+tok1, url.Values{"code": {codeAt(key, e.clock.Now())}}), http.StatusOK)
	w := e.req("GET", "/enroll/"+tok2, nil)
	wantStatus(t, "other link", w, http.StatusGone)
	mustContain(t, "other link", w.Body.String(), "A token was registered for your account with another link")
}

func TestEnroll_ActivationNow(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Settings.ActivationDelay = 0; o.Mailer = nil })
	e.user("gus", "", "gus@example.org", "")
	_, tok := e.link("gus")
	key := pageKey(t, e.req("GET", "/enroll/"+tok, nil).Body.String())
	w := e.req("POST", "/enroll/"+tok, url.Values{"code": {codeAt(key, e.clock.Now())}})
	wantStatus(t, "confirm", w, http.StatusOK)
	body := w.Body.String()
	mustContain(t, "success", body, "Your new two-factor token is registered. It is active now.")
	if strings.Contains(body, "e-mail") {
		t.Errorf("success page mentions a mail that was not sent:\n%s", body)
	}
	// No SMTP: the confirmation is logged instead, never silently dropped.
	mustContain(t, "log", e.logs.String(), `msg="enrollment: token registered" user=gus`, `confirmation="not mailed: no SMTP server is configured"`)
	e.events(map[string]float64{"confirmed": 1, "mail_sent": 0, "mail_failed": 0})
}

func TestEnroll_MailFails(t *testing.T) {
	e := newEnv(t, nil)
	e.smtp.SetReject(true)
	e.user("hal", "", "hal@example.org", "")
	_, tok := e.link("hal")
	key := pageKey(t, e.req("GET", "/enroll/"+tok, nil).Body.String())
	w := e.req("POST", "/enroll/"+tok, url.Values{"code": {codeAt(key, e.clock.Now())}})
	wantStatus(t, "confirm", w, http.StatusOK)
	mustContain(t, "success", w.Body.String(), "Your new two-factor token is registered.", "We could not send you the confirmation e-mail.")
	e.events(map[string]float64{"confirmed": 1, "mail_failed": 1, "mail_sent": 0})
	mustContain(t, "log", e.logs.String(), `msg="enrollment: mail failed" user=hal mail=confirmation`, "554")
}

func TestEnroll_ActivationTimes(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{3 * time.Second, "It becomes active at 10:00:03 UTC (in 3 seconds)."},
		{time.Minute, "It becomes active at 10:01:00 UTC (in 1 minute)."},
		{15 * time.Minute, "It becomes active at 10:15 UTC (in 15 minutes)."},
		{90 * time.Minute, "It becomes active at 11:30 UTC (in 90 minutes)."},
		{36 * time.Hour, "It becomes active at Thu 5 Mar 2026, 22:00 UTC (in 36 hours)."},
		{7 * 24 * time.Hour, "It becomes active at Wed 11 Mar 2026, 10:00 UTC (in 7 days)."},
	} {
		t.Run(tc.d.String(), func(t *testing.T) {
			e := newEnv(t, func(o *Options) { o.Settings.ActivationDelay = tc.d; o.Mailer = nil })
			e.user("ivy", "", "", "")
			_, tok := e.link("ivy")
			key := pageKey(t, e.req("GET", "/enroll/"+tok, nil).Body.String())
			w := e.req("POST", "/enroll/"+tok, url.Values{"code": {codeAt(key, e.clock.Now())}})
			mustContain(t, "success", w.Body.String(), tc.want)
		})
	}
}

func TestEnroll_Headers(t *testing.T) {
	e := newEnv(t, nil)
	e.user("jo", "", "", "")
	_, tok := e.link("jo")
	for _, tc := range []struct {
		name string
		w    *httptest.ResponseRecorder
	}{
		{"home", e.req("GET", "/", nil)},
		{"css", e.req("GET", "/static/style.css", nil)},
		{"login", e.req("GET", "/login", nil)},
		{"page", e.req("GET", "/enroll/"+tok, nil)},
		{"qr", e.req("GET", "/enroll/"+tok+"/qr.png", nil)},
		{"wrong code", e.req("POST", "/enroll/"+tok, url.Values{"code": {"000000"}})},
		{"unknown link", e.req("GET", "/enroll/nope", nil)},
		{"404", e.req("GET", "/nope", nil)},
		{"cross-origin", e.req("POST", "/enroll/"+tok, url.Values{"code": {"1"}}, "Sec-Fetch-Site", "cross-site")},
		{"api", e.req("POST", "/api/enroll-links", nil)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.w.Header()
			for k, v := range map[string]string{
				"Cache-Control":             "no-store",
				"Content-Security-Policy":   "default-src 'self'; frame-ancestors 'none'",
				"Referrer-Policy":           "no-referrer",
				"X-Content-Type-Options":    "nosniff",
				"Strict-Transport-Security": "max-age=31536000",
			} {
				if got := h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if ct := h.Get("Content-Type"); ct == "" {
				t.Error("no Content-Type")
			}
		})
	}
	// The page needs nothing from elsewhere: no script, no inline style,
	// every URL relative to the site.
	body := e.req("GET", "/enroll/"+tok, nil).Body.String()
	for _, bad := range []string{"<script", "style=", "http://", "https://", "javascript:"} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

func TestEnroll_CSRF(t *testing.T) {
	e := newEnv(t, nil)
	e.user("kim", "pw", "", "")
	_, tok := e.link("kim")
	key := pageKey(t, e.req("GET", "/enroll/"+tok, nil).Body.String())
	code := codeAt(key, e.clock.Now())
	for _, tc := range []struct {
		name string
		hdr  []string
	}{
		{"CrossSite", []string{"Sec-Fetch-Site", "cross-site"}},
		{"SameSiteOtherOrigin", []string{"Sec-Fetch-Site", "same-site"}},
		{"OldBrowserForeignOrigin", []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.req("POST", "/enroll/"+tok, url.Values{"code": {code}}, tc.hdr...)
			wantStatus(t, "confirm", w, http.StatusForbidden)
			mustContain(t, "refusal", w.Body.String(), "This form was sent from another web site, so it was refused.")
			w = e.req("POST", "/login", url.Values{"user": {"kim"}, "password": {"pw"}}, tc.hdr...)
			wantStatus(t, "login", w, http.StatusForbidden)
		})
	}
	e.events(map[string]float64{"confirmed": 0, "bad_code": 0})
	if u, _ := e.db.GetUser(context.Background(), "kim"); len(u.Tokens) != 0 || u.Failures != 0 {
		t.Fatalf("a refused POST had an effect: %+v", u)
	}
	// The public origin itself (a proxy that rewrites Host) and the same
	// origin are fine.
	w := e.req("POST", "/enroll/"+tok, url.Values{"code": {code}}, "Sec-Fetch-Site", "", "Origin", publicURL)
	wantStatus(t, "public origin", w, http.StatusOK)
}

func TestEnroll_RateLimits(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Settings.LinkRate = Rate{Burst: 3, Every: time.Minute}
		o.Settings.LoginRate = Rate{Burst: 2, Every: time.Minute}
	})
	e.user("lee", "pw", "", "")
	_, tok := e.link("lee")
	for range 3 {
		wantStatus(t, "view", e.req("GET", "/enroll/"+tok, nil), http.StatusOK)
	}
	w := e.req("GET", "/enroll/"+tok, nil)
	wantStatus(t, "4th view", w, http.StatusTooManyRequests)
	mustContain(t, "429", w.Body.String(), "Too many attempts")
	if ra := w.Header().Get("Retry-After"); ra == "" || ra == "0" {
		t.Errorf("Retry-After %q", ra)
	}
	// Per link: another link is not held back.
	_, tok2 := e.link("lee")
	wantStatus(t, "other link", e.req("GET", "/enroll/"+tok2, nil), http.StatusOK)
	// After a while the link works again.
	e.clock.Add(time.Minute)
	wantStatus(t, "later", e.req("GET", "/enroll/"+tok, nil), http.StatusOK)

	// /login: per client address...
	for range 2 {
		wantStatus(t, "login", e.req("POST", "/login", url.Values{"user": {"lee"}, "password": {"wrong"}}), http.StatusUnauthorized)
	}
	wantStatus(t, "3rd login", e.req("POST", "/login", url.Values{"user": {"lee"}, "password": {"pw"}}), http.StatusTooManyRequests)
	// ... and per user name, from any address.
	w = e.req("POST", "/login", url.Values{"user": {"lee"}, "password": {"wrong"}}, "X-Test-Remote", "198.51.100.1")
	wantStatus(t, "login as lee from another address", w, http.StatusTooManyRequests)
	w = e.req("POST", "/login", url.Values{"user": {"nobody"}, "password": {"wrong"}}, "X-Test-Remote", "198.51.100.1")
	wantStatus(t, "another user from there", w, http.StatusUnauthorized)
	if u, _ := e.db.GetUser(context.Background(), "lee"); u.Failures != 2 {
		t.Errorf("failures %d, want 2 (limited attempts are not checked)", u.Failures)
	}
}

func TestClientIP(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Settings.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	for _, tc := range []struct {
		remote, xff, want string
	}{
		{"192.0.2.1:1", "", "192.0.2.1"},
		{"192.0.2.1:1", "203.0.113.9", "192.0.2.1"}, // not a trusted proxy: header ignored
		{"10.1.2.3:1", "203.0.113.9", "203.0.113.9"},
		{"10.1.2.3:1", "203.0.113.9, 10.4.4.4", "203.0.113.9"},     // two proxies
		{"10.1.2.3:1", "198.51.100.7, 203.0.113.9", "203.0.113.9"}, // the client may forge what is left of its own address
		{"10.1.2.3:1", "junk, 203.0.113.9", "203.0.113.9"},
		{"10.1.2.3:1", "", "10.1.2.3"},
		{"[::1]:1", "2001:db8::5", "2001:db8::5"},
		{"[::ffff:192.0.2.1]:1", "", "192.0.2.1"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		if got := e.svc.clientIP(r).String(); got != tc.want {
			t.Errorf("remote %s, X-Forwarded-For %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
}

func TestEnroll_SecretNeverInURLOrLog(t *testing.T) {
	e := newEnv(t, nil)
	e.user("max", "pw", "max@example.org", "")
	l, tok := e.link("max")
	if err := e.svc.MailLink(context.Background(), l); err != nil {
		t.Fatal(err)
	}
	linkMail := e.smtp.Wait(t, 5*time.Second)
	page := e.req("GET", "/enroll/"+tok, nil).Body.String()
	key := pageKey(t, page)
	secret := b32.EncodeToString(key)
	wrong := notCode(codeAt(key, e.clock.Now()))
	e.req("POST", "/enroll/"+tok, url.Values{"code": {wrong}})
	code := codeAt(key, e.clock.Now())
	done := e.req("POST", "/enroll/"+tok, url.Values{"code": {code}}).Body.String()
	confirmMail := e.smtp.Wait(t, 5*time.Second)

	// No URL attribute carries the secret.
	attrs := regexp.MustCompile(`(?i)(href|src|action)="([^"]*)"`)
	for _, m := range attrs.FindAllStringSubmatch(page+done, -1) {
		if strings.Contains(strings.ToUpper(m[2]), secret[:16]) {
			t.Errorf("URL %q carries the secret", m[2])
		}
	}
	// Neither logs, nor mails, nor metrics show the secret, the link token
	// or a code.
	var metrics strings.Builder
	mfs, _ := e.reg.Gather()
	for _, mf := range mfs {
		metrics.WriteString(mf.String())
	}
	for what, s := range map[string]string{"log": e.logs.String(), "metrics": metrics.String(), "confirmation mail": confirmMail.Data} {
		for _, bad := range []string{secret, secret[:16], otpcode.Groups(secret)[:19], tok, code, wrong} {
			if strings.Contains(s, bad) {
				t.Errorf("%s contains %q:\n%s", what, bad, s)
			}
		}
	}
	if strings.Contains(linkMail.Data, secret[:16]) {
		t.Error("link mail contains the secret")
	}
	mustContain(t, "log", e.logs.String(), "enrollment: link created", "enrollment: wrong code", "enrollment: token registered")
}

func TestEnroll_Home(t *testing.T) {
	e := newEnv(t, nil)
	w := e.req("GET", "/", nil)
	wantStatus(t, "home", w, 200)
	mustContain(t, "home", w.Body.String(), `href="/login"`, "sign in")
	e = newEnv(t, func(o *Options) { o.Settings.SelfService = false; o.Settings.PublicURL = "https://x.example/radotp" })
	w = e.req("GET", "/", nil)
	mustContain(t, "home", w.Body.String(), "open the link you got by e-mail or from "+support, `href="/radotp/static/style.css"`)
	if strings.Contains(w.Body.String(), "/login") {
		t.Error("home links to /login with self-service off")
	}
}

func TestNew_Errors(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"NoStore", Options{}},
		{"BadURL", Options{Store: e.db, Settings: Settings{PublicURL: "enroll.example.org"}}},
		{"SelfServiceWithoutFirstFactor", Options{Store: e.db, Settings: Settings{SelfService: true}}},
		{"Algorithm", Options{Store: e.db, Settings: Settings{Algorithm: "MD5"}}},
	} {
		if _, err := New(tc.o); err == nil {
			t.Errorf("%s: New succeeded", tc.name)
		}
	}
	// Without a public URL no link can be made.
	s, err := New(Options{Store: e.db})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	e.user("ned", "", "", "")
	if _, err := s.CreateLink(context.Background(), "ned", store.LinkAdmin, 0); !errors.Is(err, ErrNoPublicURL) {
		t.Errorf("CreateLink without a public URL: %v", err)
	}
}

func TestIn(t *testing.T) {
	for d, want := range map[time.Duration]string{
		time.Second: "in 1 second", 1500 * time.Millisecond: "in 2 seconds", 59 * time.Second: "in 59 seconds",
		time.Minute: "in 1 minute", 61 * time.Second: "in 2 minutes", 15 * time.Minute: "in 15 minutes",
		2 * time.Hour: "in 2 hours", 47 * time.Hour: "in 47 hours", 48 * time.Hour: "in 2 days",
	} {
		if got := in(d); got != want {
			t.Errorf("in(%v) = %q, want %q", d, got, want)
		}
	}
}
