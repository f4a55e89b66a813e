// Package edgemetrics is the Prometheus instrumentation of the edge engine,
// shared by the native data planes (the sidecar, the Kong plugin server) so
// that one dashboard reads them all: the same metric names, labels and
// buckets wherever a decision is made. Metrics is the engine's edge.Observer
// and also counts policy loads and the HTTP series of telemetry.Metrics.
package edgemetrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/telemetry"
)

// Metric names, beside telemetry's HTTP names. Dashboards and alerts
// depend on them.
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
	MetricJWKSFetches       = "jwks_fetches_total"
)

// Metrics is the instrumentation of one process. Every label value is
// bounded: routes and reasons come from policies and the engine's fixed
// reason codes, upstreams from configuration.
type Metrics struct {
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
	policyInfo       *prometheus.GaugeVec   // name, version, hash
	jwksFetches      *prometheus.CounterVec // provider, result

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

var (
	_ edge.Observer     = (*Metrics)(nil)
	_ edge.KeysObserver = (*Metrics)(nil)
)

// New registers the metrics, telemetry's HTTP metrics among them, on reg;
// log receives breaker transitions and rate-limit store failures.
func New(reg *prometheus.Registry, log *slog.Logger) (*Metrics, error) {
	h, err := telemetry.NewMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("edgemetrics: %w", err)
	}
	m := &Metrics{
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
			Help: "Forwarded requests by upstream, whose fault their end was (none, client, upstream: only upstream faults count for the circuit breaker) and reason (allowed, upstream_timeout, upstream_unreachable, client_timeout, malformed_body, body_too_large, client_closed, or outcome_unknown when something after the edge answered instead).",
		}, []string{"upstream", "fault", "reason"}),
		reloads: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricPolicyReloads, Help: "Policy reloads applied.",
		}),
		reloadErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: MetricPolicyReloadError, Help: "Policy documents refused on reload, each counted once however often it is tried again (the policy in force stayed).",
		}),
		policyInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: MetricPolicyInfo, Help: "The policy in force (value 1), by name, version and hash.",
		}, []string{"name", "version", "hash"}),
		jwksFetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: MetricJWKSFetches, Help: "JWKS fetches of JWT providers with a key URL, by provider and result (ok, error).",
		}, []string{"provider", "result"}),
	}
	for _, c := range []prometheus.Collector{m.decisions, m.authFailures, m.rateRejections, m.rateFallbacks,
		m.breakerState, m.upstreamDuration, m.upstreamOutcomes, m.reloads, m.reloadErrors, m.policyInfo, m.jwksFetches} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("edgemetrics: register: %w", err)
		}
	}
	return m, nil
}

// HTTP returns the HTTP request series (http_requests_total and
// http_request_duration_seconds) registered with the edge metrics.
func (m *Metrics) HTTP() *telemetry.Metrics { return m.http }

// Decided counts a decision.
func (m *Metrics) Decided(d edge.Decision) {
	route := RouteLabel(d.Route)
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
func (m *Metrics) Upstream(d edge.Decision, o edge.Outcome) {
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
func (m *Metrics) BreakerChanged(upstream string, from, to breaker.State) {
	m.breakerState.WithLabelValues(upstream).Set(float64(to))
	m.log.Warn("circuit breaker changed state", "upstream", upstream, "from", from.String(), "to", to.String())
}

// RateLimitFallback counts a decision taken without the shared store; the
// warning is logged at most once a second so a dead Redis cannot flood logs.
func (m *Metrics) RateLimitFallback(err error) {
	m.rateFallbacks.Inc()
	now := time.Now().UnixNano()
	last := m.lastFallbackLog.Load()
	if now-last >= int64(time.Second) && m.lastFallbackLog.CompareAndSwap(last, now) {
		m.log.Warn("rate-limit store failed; onError fallback decides", "err", fmt.Sprint(err))
	}
}

// BreakerSeen exports a breaker's current state, so the gauge exists before
// the first transition.
func (m *Metrics) BreakerSeen(b *breaker.Breaker) {
	m.breakerState.WithLabelValues(b.Name()).Set(float64(b.State()))
}

// PolicyLoaded publishes p as in force, in place of replaces (nil when p
// is the first policy of its source).
func (m *Metrics) PolicyLoaded(p, replaces *policy.Policy) {
	if replaces != nil {
		m.policyInfo.DeleteLabelValues(replaces.Metadata.Name, replaces.Metadata.Version, replaces.Hash)
	}
	m.policyInfo.WithLabelValues(p.Metadata.Name, p.Metadata.Version, p.Hash).Set(1)
}

// Reloaded counts an applied reload of replaces by p.
func (m *Metrics) Reloaded(p, replaces *policy.Policy) {
	m.reloads.Inc()
	m.PolicyLoaded(p, replaces)
}

// KeysFetched counts a JWKS fetch; a failed one is logged at WARN with the
// URL and the error (the verifier keeps the last good keys and retries
// from 1s, backing off).
func (m *Metrics) KeysFetched(provider, url string, err error) {
	if err == nil {
		m.jwksFetches.WithLabelValues(provider, "ok").Inc()
		return
	}
	m.jwksFetches.WithLabelValues(provider, "error").Inc()
	m.log.Warn("JWKS fetch failed", "provider", provider, "url", url, "err", err.Error())
}

// ReloadFailed counts a refused reload (the policy in force stays).
func (m *Metrics) ReloadFailed() { m.reloadErrors.Inc() }

// RouteLabel is the route label of a decision: its route, or telemetry's
// "unmatched" before or without routing.
func RouteLabel(route string) string {
	if route == "" {
		return telemetry.UnmatchedRoute
	}
	return route
}
