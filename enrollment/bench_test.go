package enrollment

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/radotp/radotp/store"
)

func benchEnv(b *testing.B) *env {
	e := newEnv(b, func(o *Options) {
		big := Rate{Burst: 1 << 30, Every: time.Nanosecond}
		o.Settings.LoginRate, o.Settings.LinkRate, o.Settings.IPRate = big, big, big
		o.Mailer = nil
		o.Logger = slog.New(slog.DiscardHandler)
	})
	e.user("alice", "", "", "")
	return e
}

// BenchmarkEnrollPage is GET /enroll/TOKEN: a link lookup (unseal), a user
// lookup, a superseded-token sweep (a write) and the template.
func BenchmarkEnrollPage(b *testing.B) {
	e := benchEnv(b)
	_, tok := e.link("alice")
	for b.Loop() {
		if w := e.req("GET", "/enroll/"+tok, nil); w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkQR is GET /enroll/TOKEN/qr.png: QR encoding and PNG.
func BenchmarkQR(b *testing.B) {
	e := benchEnv(b)
	_, tok := e.link("alice")
	for b.Loop() {
		if w := e.req("GET", "/enroll/"+tok+"/qr.png", nil); w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
}

// BenchmarkConfirm is POST /enroll/TOKEN with the right code (a new link
// each time, made outside the timer): the token insert and link close in
// one durable transaction.
func BenchmarkConfirm(b *testing.B) {
	e := benchEnv(b)
	for b.Loop() {
		b.StopTimer()
		l, err := e.svc.CreateLink(context.Background(), "alice", store.LinkAdmin, 0)
		if err != nil {
			b.Fatal(err)
		}
		tok := strings.TrimPrefix(l.URL, publicURL+"/enroll/")
		sl, _ := e.db.EnrollLinkByToken(context.Background(), tok)
		code := codeAt(sl.Secret, e.clock.Now())
		b.StartTimer()
		if w := e.req("POST", "/enroll/"+tok, url.Values{"code": {code}}); w.Code != http.StatusOK {
			b.Fatal(w.Code, w.Body.String())
		}
	}
}
