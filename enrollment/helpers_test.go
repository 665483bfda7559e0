package enrollment

import (
	"bytes"
	"context"
	"encoding/base32"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/radotp/radotp/enrollment/smtptest"
	"github.com/radotp/radotp/otpcode"
	"github.com/radotp/radotp/password"
	"github.com/radotp/radotp/store"
	"github.com/radotp/radotp/verifier"
)

const (
	publicURL = "https://enroll.example.org"
	support   = "the IT desk, help@example.org"
	clientIP  = "192.0.2.10"
	apiToken  = "api-token-0123456789abcdef0123456789abcdef"
)

// start is the test clock's first instant: 10:00:00 UTC, at the start of a
// 30 s step.
var start = time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)

// fakeClock is a settable clock shared by the store and the service.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// syncBuffer is a log sink safe for the handlers' goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// env is a Service on a real database in a temporary directory, with a
// fake clock, captured logs, its own registry and a loopback SMTP server.
type env struct {
	t     testing.TB
	db    *store.DB
	svc   *Service
	h     http.Handler
	clock *fakeClock
	reg   *prometheus.Registry
	logs  *syncBuffer
	smtp  *smtptest.Server
}

// cheap argon2id parameters: the tests check the flow, not the cost.
var cheap = password.Params{Memory: 64, Time: 1, Threads: 1, KeyLen: 16, SaltLen: 16}

func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	e := &env{t: t, clock: &fakeClock{t: start}, reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	dir := t.TempDir()
	db, err := store.Open(context.Background(), store.Options{
		Path: filepath.Join(dir, "radotp.db"), KeyFile: filepath.Join(dir, "radotp.key"), Now: e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e.db = db
	e.smtp = smtptest.Start(t)
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	o := Options{
		Store:       db,
		FirstFactor: verifier.Local(password.NewHasher(runtime.NumCPU()), log),
		Mailer:      &SMTP{Host: e.smtp.Host, Port: e.smtp.Port, From: "radotp <radotp@example.org>", TLS: SMTPNone, HelloName: "test"},
		Registry:    e.reg,
		Logger:      log,
		Now:         e.clock.Now,
		Settings: Settings{
			PublicURL:       publicURL,
			LinkTTL:         24 * time.Hour,
			MaxAttempts:     3,
			SelfService:     true,
			SupportContact:  support,
			APIToken:        []byte(apiToken),
			Location:        time.UTC,
			Issuer:          "ACME VPN",
			Algorithm:       "SHA1",
			Digits:          6,
			Period:          30 * time.Second,
			Skew:            1,
			ActivationDelay: 15 * time.Minute,
			DefaultPolicy:   verifier.PolicyRequired,
			MaxFailures:     5,
			LockoutDuration: 10 * time.Minute,
		},
	}
	if mod != nil {
		mod(&o)
	}
	e.svc, err = New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.svc.Close() })
	e.h = e.svc.Handler()
	return e
}

// user creates a user with a password (may be "") and an e-mail address.
func (e *env) user(name, pw, email, policy string) store.User {
	e.t.Helper()
	var hash string
	if pw != "" {
		var err error
		if hash, err = password.Hash([]byte(pw), cheap); err != nil {
			e.t.Fatal(err)
		}
	}
	u, err := e.db.CreateUser(context.Background(), store.User{Name: name, PasswordHash: hash, Email: email, Policy: policy})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// token gives the user an active token and returns its key.
func (e *env) token(name string, activeAt time.Time) []byte {
	e.t.Helper()
	key := bytes.Repeat([]byte{byte(len(name)), 7, 9}, 7)[:20]
	if _, err := e.db.AddToken(context.Background(), name, store.Token{
		Secret: key, Algorithm: "SHA1", Digits: 6, Period: 30, State: store.TokenActive, ActiveAt: activeAt,
	}); err != nil {
		e.t.Fatal(err)
	}
	return key
}

// link makes an admin link and returns its token (the last path segment).
func (e *env) link(name string) (Link, string) {
	e.t.Helper()
	l, err := e.svc.CreateLink(context.Background(), name, store.LinkAdmin, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if !strings.HasPrefix(l.URL, publicURL+"/enroll/") {
		e.t.Fatalf("link URL %q is not under the public URL", l.URL)
	}
	return l, strings.TrimPrefix(l.URL, publicURL+"/enroll/")
}

// req sends a request to the handler as a same-origin browser would (for
// POST: Sec-Fetch-Site same-origin) from clientIP, with extra headers as
// key/value pairs.
func (e *env) req(method, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, "http://enroll.example.org"+path, body)
	r.RemoteAddr = clientIP + ":40000"
	if ip := headerValue(hdr, "X-Test-Remote"); ip != "" {
		r.RemoteAddr = ip + ":40000"
	}
	if h := headerValue(hdr, "Host"); h != "" {
		r.Host = h
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost {
		r.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			r.Header.Del(hdr[i])
		} else {
			r.Header.Set(hdr[i], hdr[i+1])
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func headerValue(hdr []string, key string) string {
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == key {
			return hdr[i+1]
		}
	}
	return ""
}

// event is the value of radotp_enrollments_total{event}.
func (e *env) event(name string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "radotp_enrollments_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == name {
				return m.GetCounter().GetValue()
			}
		}
	}
	e.t.Fatalf("radotp_enrollments_total{event=%q} not exported", name)
	return 0
}

// eventually waits (up to 5 s) for a counter that a background mail sets.
func (e *env) eventually(name string, want float64) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.event(name) != want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := e.event(name); got != want {
		e.t.Errorf("radotp_enrollments_total{event=%q} = %v, want %v", name, got, want)
	}
}

// events checks several event counters at once.
func (e *env) events(want map[string]float64) {
	e.t.Helper()
	for ev, v := range want {
		if got := e.event(ev); got != v {
			e.t.Errorf("radotp_enrollments_total{event=%q} = %v, want %v", ev, got, v)
		}
	}
}

var keyRe = regexp.MustCompile(`<p class="key" id="key">([A-Z2-7 ]+)</p>`)

// pageKey reads the key shown on an enrollment page.
func pageKey(t testing.TB, body string) []byte {
	t.Helper()
	m := keyRe.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no key on the page:\n%s", body)
	}
	k, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(strings.ReplaceAll(m[1], " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// codeAt is the 6-digit SHA1 code of key at t.
func codeAt(key []byte, t time.Time) string {
	var c [6]byte
	otpcode.HOTP(otpcode.NewMAC("SHA1", key), uint64(t.Unix()/30), c[:])
	return string(c[:])
}

func mustContain(t testing.TB, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}

func wantStatus(t testing.TB, what string, w *httptest.ResponseRecorder, code int) {
	t.Helper()
	if w.Code != code {
		t.Fatalf("%s: status %d, want %d\n%s", what, w.Code, code, w.Body.String())
	}
}
