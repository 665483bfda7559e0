package enrollment

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Events counted by radotp_enrollments_total{event}.
const (
	evLinkCreated = "link_created" // a link was made (admin, invitation, login, need, API)
	evPageViewed  = "page_viewed"  // an open link's page was shown
	evConfirmed   = "confirmed"    // a right code turned a link into a token
	evBadCode     = "bad_code"     // a wrong code was typed on a link's page
	evExpired     = "expired"      // an expired link was opened
	evVoided      = "voided"       // a link was voided by too many wrong codes
	evMailSent    = "mail_sent"    // a link or confirmation mail was accepted by the SMTP server
	evMailFailed  = "mail_failed"  // sending a mail failed
)

// Events is the fixed set of event label values, all exported at 0 from the start.
var Events = []string{evLinkCreated, evPageViewed, evConfirmed, evBadCode, evExpired, evVoided, evMailSent, evMailFailed}

type metrics struct {
	events *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{events: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "radotp", Name: "enrollments_total",
		Help: "Enrollment events: link_created, page_viewed, confirmed, bad_code, expired, voided, mail_sent, mail_failed.",
	}, []string{"event"})}
	if err := reg.Register(m.events); err != nil {
		return nil, err
	}
	for _, e := range Events {
		m.events.WithLabelValues(e)
	}
	return m, nil
}

func (m *metrics) inc(event string) { m.events.WithLabelValues(event).Inc() }
