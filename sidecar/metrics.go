package sidecar

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/telemetry"
)

// Metric names of the sidecar, beside telemetry's HTTP names.
const (
	MetricDecisions         = "edge_decisions_total"
	MetricAuthFailures      = "auth_failures_total"
	MetricRateRejections    = "ratelimit_rejections_total"
	MetricRateFallbacks     = "ratelimit_fallbacks_total"
	MetricBreakerState      = "circuit_breaker_state"
	MetricUpstreamDuration  = "upstream_request_duration_seconds"
	MetricUpstreamOutcomes  = "upstream_outcomes_total"
	MetricPolicyReloads     = "policy_reloads_total"
	MetricPolicyReloadError = "policy_reload_errors_total"
	MetricPolicyInfo        = "policy_info"
)

// metrics is the sidecar's Prometheus instrumentation and the engine's
// edge.Observer. Every label value is bounded: routes and reasons come from
// the policy and the engine's fixed reason codes, upstreams from the policy.
type metrics struct {
	log  *slog.Logger
	http *telemetry.Metrics

	decisions        *prometheus.CounterVec // route, decision, reason
	authFailures     *prometheus.CounterVec // reason
	rateRejections   *prometheus.CounterVec // route
	rateFallbacks    prometheus.Counter
	breakerState     *prometheus.GaugeVec     // upstream
	upstreamDuration *prometheus.HistogramVec // upstream
	upstreamOutcomes *prometheus.CounterVec   // upstream, fault, reason
	reloads          prometheus.Counter
	reloadErrors     prometheus.Counter
	policyInfo       *prometheus.GaugeVec // name, version, hash

	lastFallbackLog atomic.Int64 // unix nanos: fallback warnings at most once a second

	decided  telemetry.Children[decisionKey, prometheus.Counter] // children of decisions
	upstream telemetry.Children[outcomeKey, outcomeSeries]       // children of upstreamDuration and upstreamOutcomes
}

type decisionKey struct{ route, decision, reason string }

type outcomeKey struct{ upstream, fault, reason string }

type outcomeSeries struct {
	duration prometheus.Observer
	count    prometheus.Counter
}

var _ edge.Observer = (*metrics)(nil)

func newMetrics(reg *prometheus.Registry, log *slog.Logger) (*metrics, error) {
	h, err := telemetry.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("sidecar: %w", err)
	}
	m := &metrics{
		log:  log,
		http: h,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricDecisions, Help: "Edge decisions, by route, decision (allow, reject, preflight) and reason code.",
		}, []string{"route", "decision", "reason"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricAuthFailures, Help: "Requests refused for missing, invalid or insufficient credentials, by reason.",
		}, []string{"reason"}),
		rateRejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricRateRejections, Help: "Requests refused by a rate limit, by route.",
		}, []string{"route"}),
		rateFallbacks: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricRateFallbacks, Help: "Rate-limit decisions taken by the onError fallback because the shared store failed.",
		}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricBreakerState, Help: "Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.",
		}, []string{"upstream"}),
		upstreamDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    MetricUpstreamDuration,
			Help:    "Time from forwarding a request to the upstream's response headers (or failure), by upstream.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"upstream"}),
		upstreamOutcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricUpstreamOutcomes,
			Help: "Forwarded requests by upstream, whose fault their end was (none, client, upstream: only upstream faults count for the circuit breaker) and reason (allowed, upstream_timeout, upstream_unreachable, client_timeout, malformed_body, body_too_large, client_closed).",
		}, []string{"upstream", "fault", "reason"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricPolicyReloads, Help: "Policy reloads applied.",
		}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricPolicyReloadError, Help: "Policy reloads refused (the policy in force stayed).",
		}),
		policyInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricPolicyInfo, Help: "The policy in force (value 1), by name, version and hash.",
		}, []string{"name", "version", "hash"}),
	}
	for _, c := range []prometheus.Collector{m.decisions, m.authFailures, m.rateRejections, m.rateFallbacks,
		m.breakerState, m.upstreamDuration, m.upstreamOutcomes, m.reloads, m.reloadErrors, m.policyInfo} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("sidecar: register metrics: %w", err)
		}
	}
	return m, nil
}

// Decided counts a decision.
func (m *metrics) Decided(d edge.Decision) {
	route := routeLabel(d.Route)
	decision := "reject"
	switch {
	case d.Allow:
		decision = "allow"
	case d.Reason == edge.ReasonPreflight:
		decision = "preflight"
	}
	m.decided.Get(decisionKey{route, decision, d.Reason}, func() prometheus.Counter {
		return m.decisions.WithLabelValues(route, decision, d.Reason)
	}).Inc()
	switch {
	case d.Status == http.StatusUnauthorized, d.Reason == edge.ReasonInsufficientScope:
		m.authFailures.WithLabelValues(d.Reason).Inc()
	case d.Reason == edge.ReasonRateLimited:
		m.rateRejections.WithLabelValues(route).Inc()
	}
}

// Upstream times what the upstream did for an allowed request and counts
// how the exchange ended, and whose fault that was.
func (m *metrics) Upstream(d edge.Decision, o edge.Outcome) {
	k := outcomeKey{d.Upstream, o.Fault(), o.Reason()}
	c := m.upstream.Get(k, func() outcomeSeries {
		return outcomeSeries{
			duration: m.upstreamDuration.WithLabelValues(k.upstream),
			count:    m.upstreamOutcomes.WithLabelValues(k.upstream, k.fault, k.reason),
		}
	})
	c.duration.Observe(o.Duration.Seconds())
	c.count.Inc()
}

// BreakerChanged publishes a breaker's new state and logs the transition.
func (m *metrics) BreakerChanged(upstream string, from, to breaker.State) {
	m.breakerState.WithLabelValues(upstream).Set(float64(breakerValue(to)))
	m.log.Warn("circuit breaker changed state", "upstream", upstream, "from", from.String(), "to", to.String())
}

// RateLimitFallback counts a decision taken without the shared store; the
// warning is logged at most once a second so a dead Redis cannot flood logs.
func (m *metrics) RateLimitFallback(err error) {
	m.rateFallbacks.Inc()
	now := time.Now().UnixNano()
	last := m.lastFallbackLog.Load()
	if now-last >= int64(time.Second) && m.lastFallbackLog.CompareAndSwap(last, now) {
		m.log.Warn("rate-limit store failed; onError fallback decides", "err", fmt.Sprint(err))
	}
}

// breakerSeen exports a breaker's current state, so the gauge exists before
// the first transition.
func (m *metrics) breakerSeen(b *breaker.Breaker) {
	m.breakerState.WithLabelValues(b.Name()).Set(float64(breakerValue(b.State())))
}

func (m *metrics) policyLoaded(pl *plane) {
	p := pl.policy
	m.policyInfo.Reset()
	m.policyInfo.WithLabelValues(p.Metadata.Name, p.Metadata.Version, p.Hash).Set(1)
}

func (m *metrics) reloaded(pl *plane) {
	m.reloads.Inc()
	m.policyLoaded(pl)
}

// breakerValue is the gauge encoding: 0 closed, 1 half-open, 2 open.
func breakerValue(s breaker.State) int {
	switch s {
	case breaker.HalfOpen:
		return 1
	case breaker.Open:
		return 2
	}
	return 0
}

func routeLabel(route string) string {
	if route == "" {
		return telemetry.UnmatchedRoute
	}
	return route
}
