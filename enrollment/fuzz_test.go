package enrollment

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/radotp/radotp/otpcode"
	"github.com/radotp/radotp/store"
)

// FuzzEnrollHandlers sends arbitrary requests to the whole site (pages,
// /login, the API, behind CSRF protection and the limits). In path and body,
// {TOKEN} stands for a fresh open link of alice and {CODE} for its right
// code now. Whatever comes in: no panic, no 500, the security headers on
// every answer, redirects only to the public URL, JSON from the API, and the
// link's secret never in a header nor in any answer but the enrollment page.
func FuzzEnrollHandlers(f *testing.F) {
	e := newEnv(f, func(o *Options) {
		big := Rate{Burst: 1 << 30, Every: time.Nanosecond}
		o.Settings.LoginRate, o.Settings.LinkRate, o.Settings.IPRate = big, big, big
		o.Mailer = nil
	})
	e.user("alice", "pw", "alice@example.org", "")
	e.user("bob", "pw", "", "")
	e.token("bob", start.Add(-time.Hour))

	f.Add("GET", "/enroll/{TOKEN}", "", "", "", []byte(nil))
	f.Add("POST", "/enroll/{TOKEN}", "application/x-www-form-urlencoded", "same-origin", "", []byte("code={CODE}"))
	f.Add("POST", "/api/enroll-links", "application/json", "", "Bearer "+apiToken, []byte(`{"user":"alice","ttl":"5m","email":true}`))
	f.Fuzz(func(t *testing.T, method, path, contentType, fetchSite, auth string, body []byte) {
		l, err := e.svc.CreateLink(context.Background(), "alice", store.LinkAdmin, 0)
		if err != nil {
			t.Fatal(err)
		}
		tok := strings.TrimPrefix(l.URL, publicURL+"/enroll/")
		sl, err := e.db.EnrollLinkByToken(context.Background(), tok)
		if err != nil {
			t.Fatal(err)
		}
		secret := b32.EncodeToString(sl.Secret)
		code := codeAt(sl.Secret, e.clock.Now())
		path = strings.ReplaceAll(strings.ReplaceAll(path, "{TOKEN}", tok), "{CODE}", code)
		body = bytes.ReplaceAll(bytes.ReplaceAll(body, []byte("{TOKEN}"), []byte(tok)), []byte("{CODE}"), []byte(code))

		r, err := http.NewRequest(method, "http://enroll.example.org"+path, bytes.NewReader(body))
		if err != nil || r.URL.Host != "enroll.example.org" {
			return // not a request a server could receive
		}
		for _, v := range []string{contentType, fetchSite, auth} {
			if strings.ContainsAny(v, "\r\n\x00") {
				return
			}
		}
		r.RequestURI = r.URL.RequestURI()
		r.RemoteAddr = "192.0.2.99:1234"
		r.Header.Set("Content-Type", contentType)
		r.Header.Set("Sec-Fetch-Site", fetchSite)
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)

		if w.Code >= 500 {
			t.Fatalf("%s %q: status %d\n%s\nlog:\n%s", method, path, w.Code, w.Body.String(), e.logs.String())
		}
		for k, v := range securityHeaders {
			if got := w.Header().Get(k); got != v {
				t.Fatalf("%s %q: %s = %q", method, path, k, got)
			}
		}
		// Redirects go to the public URL, or (ServeMux cleaning a path) to
		// a path on this site; never to a host taken from the request.
		if loc := w.Header().Get("Location"); loc != "" && !strings.HasPrefix(loc, publicURL+"/") &&
			!(strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") && !strings.HasPrefix(loc, "/\\")) {
			t.Fatalf("%s %q: redirect to %q", method, path, loc)
		}
		for k, vs := range w.Header() {
			for _, v := range vs {
				if strings.Contains(v, secret[:16]) {
					t.Fatalf("header %s carries the secret", k)
				}
			}
		}
		onPage := r.URL.Path == "/enroll/"+tok && (method == "GET" || method == "HEAD" || method == "POST")
		if !onPage && strings.Contains(w.Body.String(), otpcode.Groups(secret)[:14]) {
			t.Fatalf("%s %q: the secret is in the answer", method, path)
		}
		if strings.HasPrefix(r.URL.Path, "/api/") && w.Header().Get("Content-Type") == "application/json" && !json.Valid(w.Body.Bytes()) {
			t.Fatalf("API answer is not JSON: %s", w.Body.String())
		}
		if strings.Contains(e.logs.String(), tok) || strings.Contains(e.logs.String(), secret[:16]) {
			t.Fatalf("the link token or secret got into the log")
		}
	})
}
