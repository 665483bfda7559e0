package metrics

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/radotp/radotp/verifier"
)

type decideFunc func(context.Context, verifier.Attempt) (verifier.Decision, error)

func (f decideFunc) Verify(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
	return f(ctx, a)
}

func TestEveryReasonStartsAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, []string{"unknown_client", "overload"}, []string{"access_accept"})
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	body := scrape(t, srv.URL)
	for _, r := range verifier.Reasons {
		want := `radotp_auth_failures_total{reason="` + string(r) + `"} 0`
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
	for _, want := range []string{
		`radotp_radius_dropped_total{reason="unknown_client"} 0`,
		`radotp_radius_dropped_total{reason="overload"} 0`,
		`radotp_radius_requests_total{code="access_accept"} 0`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
}

func TestInstrumentCountsRejectsByReason(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, nil, nil)
	answers := []struct {
		d   verifier.Decision
		err error
	}{
		{verifier.Decision{Outcome: verifier.Reject, Reason: verifier.ReasonBadCode}, nil},
		{verifier.Decision{Outcome: verifier.Reject, Reason: verifier.ReasonBadCode}, nil},
		{verifier.Decision{Outcome: verifier.Reject, Reason: verifier.ReasonReplayedCode}, nil},
		{verifier.Decision{Outcome: verifier.Accept}, nil},
		{verifier.Decision{}, errors.New("storage")}, // a drop is not a reject
	}
	i := 0
	v := m.Instrument(decideFunc(func(context.Context, verifier.Attempt) (verifier.Decision, error) {
		a := answers[i]
		i++
		return a.d, a.err
	}))
	for range answers {
		_, _ = v.Verify(context.Background(), verifier.Attempt{})
	}
	if got := testutil.ToFloat64(m.failures.WithLabelValues("bad_code")); got != 2 {
		t.Errorf("bad_code = %v, want 2", got)
	}
	if got := testutil.ToFloat64(m.failures.WithLabelValues("replayed_code")); got != 1 {
		t.Errorf("replayed_code = %v, want 1", got)
	}
	if got := testutil.CollectAndCount(m.duration); got != 1 {
		t.Errorf("duration series = %d", got)
	}
	m.Dropped("overload")
	m.Answered("access_reject")
	m.Resent()
	if testutil.ToFloat64(m.dropped.WithLabelValues("overload")) != 1 ||
		testutil.ToFloat64(m.requests.WithLabelValues("access_reject")) != 1 ||
		testutil.ToFloat64(m.resent) != 1 {
		t.Error("observer methods did not count")
	}
}

func TestTokenGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	RegisterTokens(reg, func(context.Context, time.Time) (int, int, int, error) { return 1, 2, 3, nil })
	want := `
# HELP radotp_tokens Tokens by state: pending (not confirmed), activating (inside the activation delay), active.
# TYPE radotp_tokens gauge
radotp_tokens{state="activating"} 2
radotp_tokens{state="active"} 3
radotp_tokens{state="pending"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "radotp_tokens"); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	r, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
