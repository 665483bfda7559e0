package enrollment

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

func login(e *env, user, pw, code string, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	return e.req("POST", "/login", url.Values{"user": {user}, "password": {pw}, "code": {code}}, hdr...)
}

func failures(e *env, name string) int {
	e.t.Helper()
	u, err := e.db.GetUser(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	return u.Failures
}

func TestLogin_NoToken(t *testing.T) {
	e := newEnv(t, nil)
	e.user("alice", "hunter2", "", "")
	w := e.req("GET", "/login", nil)
	wantStatus(t, "login page", w, 200)
	mustContain(t, "login page", w.Body.String(), `name="user"`, `type="password"`, `name="code"`, `autocomplete="current-password"`)

	// A wrong password counts towards the lockout, like over RADIUS.
	w = login(e, "alice", "hunter3", "")
	wantStatus(t, "wrong password", w, http.StatusUnauthorized)
	mustContain(t, "wrong password", w.Body.String(), loginFailedText, `value="alice"`)
	if f := failures(e, "alice"); f != 1 {
		t.Fatalf("failures %d, want 1", f)
	}

	// The right one goes straight to a fresh link, built from the public
	// URL whatever the Host header says; failures are reset.
	w = login(e, "alice", "hunter2", "", "Host", "evil.example")
	wantStatus(t, "right password", w, http.StatusSeeOther)
	loc := w.Header().Get("Location")
	if !strings.HasPrefix(loc, publicURL+"/enroll/") || strings.Contains(loc, "evil") {
		t.Fatalf("Location %q", loc)
	}
	if f := failures(e, "alice"); f != 0 {
		t.Errorf("failures %d after success, want 0", f)
	}
	tok := strings.TrimPrefix(loc, publicURL+"/enroll/")
	w = e.req("GET", "/enroll/"+tok, nil)
	wantStatus(t, "link of the login", w, 200)
	mustContain(t, "page", w.Body.String(), "until 10:15 UTC") // login links live 15 minutes
	e.events(map[string]float64{"link_created": 1, "page_viewed": 1})
}

func TestLogin_Failures(t *testing.T) {
	e := newEnv(t, nil) // max_failures 5, lockout 10m
	e.user("bob", "pw", "", "")
	e.user("nopw", "", "", "")

	for _, tc := range []struct{ name, user, pw string }{
		{"UnknownUser", "mallory", "pw"},
		{"NoLocalPassword", "nopw", ""},
		{"Empty", "", ""},
	} {
		w := login(e, tc.user, tc.pw, "")
		if w.Code != http.StatusUnauthorized && w.Code != http.StatusUnprocessableEntity {
			t.Errorf("%s: status %d", tc.name, w.Code)
		}
		if w.Header().Get("Location") != "" {
			t.Errorf("%s: redirected", tc.name)
		}
	}
	if w := login(e, "nopw", "anything", ""); w.Code != http.StatusUnauthorized {
		t.Errorf("user without a local password: %d", w.Code)
	}
	for range 5 {
		wantStatus(t, "wrong", login(e, "bob", "nope", ""), http.StatusUnauthorized)
	}
	// Locked: the right password is refused too, with the same message.
	w := login(e, "bob", "pw", "")
	wantStatus(t, "locked", w, http.StatusUnauthorized)
	mustContain(t, "locked", w.Body.String(), loginFailedText)
	e.clock.Add(10 * time.Minute)
	wantStatus(t, "after the lock", login(e, "bob", "pw", ""), http.StatusSeeOther)
}

func TestLogin_HasToken(t *testing.T) {
	e := newEnv(t, nil)
	e.user("carol", "pw", "", "")
	key := e.token("carol", start.Add(-time.Hour))

	// Re-authentication: the password alone is not enough to replace a factor.
	w := login(e, "carol", "pw", "")
	wantStatus(t, "no code", w, http.StatusUnprocessableEntity)
	mustContain(t, "no code", w.Body.String(), "Your account already has a second factor. To replace it, also type the code your app shows now.")
	if f := failures(e, "carol"); f != 0 {
		t.Errorf("failures %d after a right password without code", f)
	}
	code := codeAt(key, e.clock.Now())
	wantStatus(t, "wrong code", login(e, "carol", "pw", notCode(code)), http.StatusUnauthorized)
	wantStatus(t, "right code, wrong password", login(e, "carol", "nope", code), http.StatusUnauthorized)
	if f := failures(e, "carol"); f != 2 {
		t.Errorf("failures %d, want 2", f)
	}
	w = login(e, "carol", "pw", code[:3]+" "+code[3:])
	wantStatus(t, "right code", w, http.StatusSeeOther)
	// The code is used now, here as over RADIUS.
	u, _ := e.db.GetUser(context.Background(), "carol")
	if u.Tokens[0].LastStep != e.clock.Now().Unix()/30 || u.Failures != 0 {
		t.Errorf("after the code: last step %d, failures %d", u.Tokens[0].LastStep, u.Failures)
	}
	wantStatus(t, "replayed code", login(e, "carol", "pw", code), http.StatusUnauthorized)
}

func TestLogin_OnlyActivatingToken(t *testing.T) {
	e := newEnv(t, nil)
	e.user("dan", "pw", "", "")
	key := e.token("dan", start.Add(10*time.Minute))
	wantStatus(t, "no code", login(e, "dan", "pw", ""), http.StatusUnprocessableEntity)
	wantStatus(t, "code of the activating token", login(e, "dan", "pw", codeAt(key, e.clock.Now())), http.StatusSeeOther)
}

func TestLogin_Policy(t *testing.T) {
	e := newEnv(t, nil)
	e.user("eve", "pw", "", "disabled")
	w := login(e, "eve", "pw", "")
	wantStatus(t, "disabled", w, http.StatusOK)
	mustContain(t, "disabled", w.Body.String(), "Nothing to set up", "does not use a second factor")
	e.user("opt", "pw", "", "optional")
	wantStatus(t, "optional", login(e, "opt", "pw", ""), http.StatusSeeOther)

	// Default policy disabled, and a first factor that exempts a group.
	e = newEnv(t, func(o *Options) { o.Settings.DefaultPolicy = verifier.PolicyDisabled })
	e.user("fred", "pw", "", "")
	mustContain(t, "default disabled", login(e, "fred", "pw", "").Body.String(), "Nothing to set up")
	e = newEnv(t, func(o *Options) {
		o.FirstFactor = verifier.FirstFactorFunc(func(ctx context.Context, name string, u *store.User, pw []byte) (verifier.FirstFactorResult, error) {
			return verifier.FirstFactorResult{OK: string(pw) == "ldap", Policy: verifier.PolicyDisabled}, nil
		})
	})
	e.user("gil", "", "", "required")
	mustContain(t, "backend policy", login(e, "gil", "ldap", "").Body.String(), "Nothing to set up")
}

func TestLogin_FirstFactorDown(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.FirstFactor = verifier.FirstFactorFunc(func(context.Context, string, *store.User, []byte) (verifier.FirstFactorResult, error) {
			return verifier.FirstFactorResult{}, verifier.ErrFirstFactorUnavailable
		})
	})
	e.user("hank", "", "", "")
	w := login(e, "hank", "pw", "")
	wantStatus(t, "backend down", w, http.StatusServiceUnavailable)
	mustContain(t, "backend down", w.Body.String(), "Your password could not be checked at the moment.")
	if f := failures(e, "hank"); f != 0 {
		t.Errorf("a backend that is down counted a failure")
	}
}

func TestLogin_Off(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Settings.SelfService = false })
	e.user("ida", "pw", "", "")
	wantStatus(t, "GET", e.req("GET", "/login", nil), http.StatusNotFound)
	wantStatus(t, "POST", login(e, "ida", "pw", ""), http.StatusNotFound)
}

func TestLogin_AutoCreate(t *testing.T) {
	directory := verifier.FirstFactorFunc(func(ctx context.Context, name string, u *store.User, pw []byte) (verifier.FirstFactorResult, error) {
		return verifier.FirstFactorResult{OK: name == "ldapuser" && string(pw) == "dirpw"}, nil
	})
	e := newEnv(t, func(o *Options) { o.FirstFactor = directory })
	wantStatus(t, "not auto-created", login(e, "ldapuser", "dirpw", ""), http.StatusUnauthorized)
	if _, err := e.db.GetUser(context.Background(), "ldapuser"); err == nil {
		t.Fatal("user created without AutoCreateUsers")
	}

	e = newEnv(t, func(o *Options) { o.FirstFactor = directory; o.Settings.AutoCreateUsers = true })
	wantStatus(t, "wrong directory password", login(e, "ldapuser", "nope", ""), http.StatusUnauthorized)
	if _, err := e.db.GetUser(context.Background(), "ldapuser"); err == nil {
		t.Fatal("user created by a wrong password")
	}
	w := login(e, "ldapuser", "dirpw", "")
	wantStatus(t, "directory user", w, http.StatusSeeOther)
	if _, err := e.db.GetUser(context.Background(), "ldapuser"); err != nil {
		t.Fatalf("user not created: %v", err)
	}
	wantStatus(t, "again", login(e, "ldapuser", "dirpw", ""), http.StatusSeeOther)
}
