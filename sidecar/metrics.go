package sidecar

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/contentguard/contentguard/sidecar/exchange"
	"github.com/contentguard/contentguard/telemetry"
	"github.com/contentguard/contentguard/telemetry/edgemetrics"
)

// Metric names of the sidecar, beside telemetry's HTTP names: those of
// every native data plane (package edgemetrics).
const (
	MetricDecisions         = edgemetrics.MetricDecisions
	MetricAuthFailures      = edgemetrics.MetricAuthFailures
	MetricRateRejections    = edgemetrics.MetricRateRejections
	MetricRateFallbacks     = edgemetrics.MetricRateFallbacks
	MetricBreakerState      = edgemetrics.MetricBreakerState
	MetricUpstreamDuration  = edgemetrics.MetricUpstreamDuration
	MetricUpstreamOutcomes  = edgemetrics.MetricUpstreamOutcomes
	MetricPolicyReloads     = edgemetrics.MetricPolicyReloads
	MetricPolicyReloadError = edgemetrics.MetricPolicyReloadError
	MetricPolicyInfo        = edgemetrics.MetricPolicyInfo
	MetricJWKSFetches       = edgemetrics.MetricJWKSFetches
)

// metrics is the sidecar's Prometheus instrumentation: the edge metrics
// (the engine's edge.Observer) and the HTTP series it records per request.
type metrics struct {
	*edgemetrics.Metrics
	http *telemetry.Metrics
}

func newMetrics(reg *prometheus.Registry, log *slog.Logger) (*metrics, error) {
	m, err := edgemetrics.New(reg, log)
	if err != nil {
		return nil, err
	}
	return &metrics{Metrics: m, http: m.HTTP()}, nil
}

func (m *metrics) policyLoaded(pl *exchange.Plane) { m.PolicyLoaded(pl.Policy, nil) }

func (m *metrics) reloaded(pl, old *exchange.Plane) { m.Reloaded(pl.Policy, old.Policy) }
