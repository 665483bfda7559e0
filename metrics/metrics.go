// Package metrics holds radotp's Prometheus collectors, registered on an
// injected registry and served on their own listener.
//
// Names follow namespace_subsystem_name with _total for counters and
// _seconds for histograms. Label values come from fixed sets only (reasons,
// drop reasons, reply kinds, token states) and every one of them is created
// at zero on start, so a dashboard sees a reason before it first happens.
// Never a user name, an address or a code in a label.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/radotp/radotp/verifier"
)

const namespace = "radotp"

// Metrics records what the RADIUS server does. It implements radius.Observer.
type Metrics struct {
	requests *prometheus.CounterVec
	failures *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	resent   prometheus.Counter
	duration prometheus.Histogram
}

// New registers radotp's collectors on reg. dropReasons and answerKinds are
// the radius package's fixed sets (passed in so this package does not depend
// on the server).
func New(reg prometheus.Registerer, dropReasons, answerKinds []string) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "radius", Name: "requests_total",
			Help: "Requests answered, by the kind of reply (access_accept, access_reject, access_challenge, status_server).",
		}, []string{"code"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "auth", Name: "failures_total",
			Help: "Rejected Access-Requests, by reason.",
		}, []string{"reason"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "radius", Name: "dropped_total",
			Help: "Packets dropped without a reply, by reason.",
		}, []string{"reason"}),
		resent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace, Subsystem: "radius", Name: "retransmits_answered_total",
			Help: "Retransmitted requests answered from the reply cache (RFC 5080), not verified again.",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Subsystem: "auth", Name: "duration_seconds",
			Help:    "Time to decide an Access-Request, storage commit included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}
	reg.MustRegister(m.requests, m.failures, m.dropped, m.resent, m.duration)
	for _, r := range verifier.Reasons {
		m.failures.WithLabelValues(string(r))
	}
	for _, r := range dropReasons {
		m.dropped.WithLabelValues(r)
	}
	for _, k := range answerKinds {
		m.requests.WithLabelValues(k)
	}
	return m
}

// Dropped counts a packet dropped for reason.
func (m *Metrics) Dropped(reason string) { m.dropped.WithLabelValues(reason).Inc() }

// Answered counts a reply of kind.
func (m *Metrics) Answered(kind string) { m.requests.WithLabelValues(kind).Inc() }

// Resent counts a retransmit answered from the reply cache.
func (m *Metrics) Resent() { m.resent.Inc() }

// decider is what Instrument wraps (verifier.Verifier satisfies it).
type decider interface {
	Verify(ctx context.Context, a verifier.Attempt) (verifier.Decision, error)
}

// Instrumented is a Verifier that records every decision's duration and, for
// Rejects, its reason.
type Instrumented struct {
	next decider
	m    *Metrics
}

// Instrument wraps next so that its decisions are counted.
func (m *Metrics) Instrument(next decider) Instrumented { return Instrumented{next: next, m: m} }

// Verify calls the wrapped Verify and records the outcome.
func (i Instrumented) Verify(ctx context.Context, a verifier.Attempt) (verifier.Decision, error) {
	start := time.Now()
	d, err := i.next.Verify(ctx, a)
	i.m.duration.Observe(time.Since(start).Seconds())
	if err == nil && d.Outcome == verifier.Reject {
		i.m.failures.WithLabelValues(string(d.Reason)).Inc()
	}
	return d, err
}

// TokenCounter reports token counts by state (store.DB.TokenCounts).
type TokenCounter func(ctx context.Context, now time.Time) (pending, activating, active int, err error)

type tokenCollector struct {
	count TokenCounter
	desc  *prometheus.Desc
}

// RegisterTokens adds the radotp_tokens{state} gauge, read from count at each
// scrape (pending = not confirmed, activating = confirmed but inside the
// activation delay, active = usable).
func RegisterTokens(reg prometheus.Registerer, count TokenCounter) {
	reg.MustRegister(&tokenCollector{count: count, desc: prometheus.NewDesc(
		namespace+"_tokens", "Tokens by state: pending (not confirmed), activating (inside the activation delay), active.",
		[]string{"state"}, nil)})
}

func (c *tokenCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *tokenCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, ac, a, err := c.count(ctx, time.Now())
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for state, n := range map[string]int{"pending": p, "activating": ac, "active": a} {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}

// Handler serves the registry in the Prometheus text format.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
