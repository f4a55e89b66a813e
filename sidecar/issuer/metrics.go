package issuer

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Metric names; dashboards and alerts depend on them.
const (
	// MetricGrants counts token requests by grant_type and result ("ok" or
	// the RFC 6749 error code).
	MetricGrants = "token_grants_total"
	// MetricRefreshReuse counts spent refresh tokens presented again: each
	// revoked a family, and each is a likely token theft.
	MetricRefreshReuse = "refresh_token_reuse_total"
)

type metrics struct {
	grants *prometheus.CounterVec
	reuse  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		grants: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricGrants, Help: "Token requests, by grant type and result (ok or the OAuth2 error code).",
		}, []string{"grant_type", "result"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricRefreshReuse, Help: "Spent refresh tokens presented again; each revoked its token family.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.grants, m.reuse} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("issuer: register metrics: %w", err)
		}
	}
	return m, nil
}

// grant records one token request's result.
func (m *metrics) grant(grantType string, e *Error) {
	switch grantType {
	case GrantPassword, GrantClientCredentials, GrantRefreshToken:
	default:
		grantType = "other" // bounded label values
	}
	result := "ok"
	if e != nil {
		result = e.Code
	}
	m.grants.WithLabelValues(grantType, result).Inc()
}
