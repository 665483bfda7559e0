package enrollment

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/radotp/radotp/store"
)

// api posts body to the API as a portal would (no browser headers).
func (e *env) api(body string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest("POST", "http://enroll.example.org/api/enroll-links", strings.NewReader(body))
	r.RemoteAddr = "203.0.113.5:5000"
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+apiToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		switch {
		case hdr[i] == "Host":
			r.Host = hdr[i+1]
		case hdr[i+1] == "":
			r.Header.Del(hdr[i])
		default:
			r.Header.Set(hdr[i], hdr[i+1])
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func apiErr(t *testing.T, w *httptest.ResponseRecorder, status int, want string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body.String())
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var e APIError
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !strings.Contains(e.Error, want) {
		t.Errorf("error body %s (%v), want %q", w.Body.String(), err, want)
	}
}

func TestAPI(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice", "", "alice@example.org", "")
	e.user("bob", "", "", "")

	t.Run("Created", func(t *testing.T) {
		w := e.api(`{"user": "alice", "ttl": "30m"}`, "Host", "evil.example")
		if w.Code != http.StatusCreated {
			t.Fatalf("status %d: %s", w.Code, w.Body.String())
		}
		var r APIResponse
		if err := json.Unmarshal(w.Body.Bytes(), &r); err != nil {
			t.Fatal(err)
		}
		if r.User != "alice" || !strings.HasPrefix(r.URL, publicURL+"/enroll/") || !r.ExpiresAt.Equal(start.Add(30*time.Minute)) || r.Mailed {
			t.Fatalf("response %+v", r)
		}
		// The link works.
		wantStatus(t, "page", e.req("GET", strings.TrimPrefix(r.URL, publicURL), nil), 200)
		l, err := e.db.EnrollLinkByToken(context.Background(), strings.TrimPrefix(r.URL, publicURL+"/enroll/"))
		if err != nil || l.Purpose != store.LinkAPI {
			t.Errorf("stored link %+v, %v", l, err)
		}
	})
	t.Run("Mailed", func(t *testing.T) {
		w := e.api(`{"user": "alice", "email": true}`)
		var r APIResponse
		json.Unmarshal(w.Body.Bytes(), &r)
		if w.Code != http.StatusCreated || !r.Mailed || r.MailError != "" {
			t.Fatalf("status %d, %+v", w.Code, r)
		}
		m := e.smtp.Wait(t, 5*time.Second)
		mustContain(t, "link mail", m.Data, "Subject: Set up your second factor", r.URL, "The link works once, until Thu 5 Mar 2026, 10:00:00 UTC", "contact "+support)
	})
	t.Run("MailNoAddress", func(t *testing.T) {
		w := e.api(`{"user": "bob", "email": true}`)
		var r APIResponse
		json.Unmarshal(w.Body.Bytes(), &r)
		if w.Code != http.StatusCreated || r.Mailed || !strings.Contains(r.MailError, `user "bob" has no e-mail address`) || r.URL == "" {
			t.Fatalf("status %d, %+v", w.Code, r)
		}
	})
	for _, tc := range []struct {
		name   string
		body   string
		hdr    []string
		status int
		want   string
	}{
		{"NoToken", `{"user":"alice"}`, []string{"Authorization", ""}, 401, "missing bearer token"},
		{"BasicAuth", `{"user":"alice"}`, []string{"Authorization", "Basic YWxpY2U6cHc="}, 401, "missing bearer token"},
		{"WrongToken", `{"user":"alice"}`, []string{"Authorization", "Bearer " + apiToken[:len(apiToken)-1] + "x"}, 401, "wrong bearer token"},
		{"TokenPrefix", `{"user":"alice"}`, []string{"Authorization", "Bearer " + apiToken[:10]}, 401, "wrong bearer token"},
		{"ContentType", `{"user":"alice"}`, []string{"Content-Type", "text/plain"}, 415, "Content-Type: application/json"},
		{"BadJSON", `{"user":`, nil, 400, "invalid JSON"},
		{"UnknownField", `{"user":"alice","admin":true}`, nil, 400, `unknown field "admin"`},
		{"TwoValues", `{"user":"alice"}{}`, nil, 400, "more than one JSON value"},
		{"NoUser", `{}`, nil, 400, `"user" is required`},
		{"UnknownUser", `{"user":"mallory"}`, nil, 404, `no user "mallory"`},
		{"BadTTL", `{"user":"alice","ttl":"forever"}`, nil, 400, `"ttl" must be a duration`},
		{"TTLTooLong", `{"user":"alice","ttl":"25h"}`, nil, 400, `"ttl" must be a duration from "1m" to "24h0m0s"`},
		{"TooLarge", `{"user":"` + strings.Repeat("a", maxBody) + `"}`, nil, 413, "body larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := e.api(tc.body, tc.hdr...)
			apiErr(t, w, tc.status, tc.want)
			if tc.status == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
			}
		})
	}
	t.Run("CrossOriginBrowser", func(t *testing.T) {
		apiErr(t, e.api(`{"user":"alice"}`, "Sec-Fetch-Site", "cross-site"), 403, "cross-origin request refused")
	})
	t.Run("Off", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Settings.APIToken = nil })
		apiErr(t, e.api(`{"user":"alice"}`), 404, "the API is off")
	})
	t.Run("WrongTokensLimited", func(t *testing.T) {
		e := newEnv(t, func(o *Options) { o.Settings.LoginRate = Rate{Burst: 2, Every: time.Hour} })
		for range 2 {
			apiErr(t, e.api(`{}`, "Authorization", "Bearer guess"), 401, "wrong bearer token")
		}
		w := e.api(`{}`, "Authorization", "Bearer guess")
		apiErr(t, w, 429, "too many wrong tokens")
		if w.Header().Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		mustContain(t, "log", e.logs.String(), "API call with a wrong bearer token")
		if strings.Contains(e.logs.String(), "guess") {
			t.Error("the wrong token is logged")
		}
	})
	e.events(map[string]float64{"link_created": 3, "mail_sent": 1})
}
