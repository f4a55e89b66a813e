package edgemetrics_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/contentguard/contentguard/edge"
	"github.com/contentguard/contentguard/edge/breaker"
	"github.com/contentguard/contentguard/policy"
	"github.com/contentguard/contentguard/telemetry/edgemetrics"
)

// TestPolicyInfoFollowsEachSource: a process with several policies (the
// Kong plugin server) shows each one in force once; a reload replaces its
// own source's series and leaves the others.
func TestPolicyInfoFollowsEachSource(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := edgemetrics.New(reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	a1 := &policy.Policy{Metadata: policy.Metadata{Name: "a", Version: "1"}, Hash: "h1"}
	a2 := &policy.Policy{Metadata: policy.Metadata{Name: "a", Version: "2"}, Hash: "h2"}
	b1 := &policy.Policy{Metadata: policy.Metadata{Name: "b", Version: "1"}, Hash: "h3"}
	m.PolicyLoaded(a1, nil)
	m.PolicyLoaded(b1, nil)
	m.Reloaded(a2, a1)
	m.ReloadFailed()
	want := `
# HELP policy_info The policy in force (value 1), by name, version and hash.
# TYPE policy_info gauge
policy_info{hash="h2",name="a",version="2"} 1
policy_info{hash="h3",name="b",version="1"} 1
# HELP policy_reload_errors_total Policy documents refused on reload, each counted once however often it is tried again (the policy in force stayed).
# TYPE policy_reload_errors_total counter
policy_reload_errors_total 1
# HELP policy_reloads_total Policy reloads applied.
# TYPE policy_reloads_total counter
policy_reloads_total 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), edgemetrics.MetricPolicyInfo,
		edgemetrics.MetricPolicyReloads, edgemetrics.MetricPolicyReloadError); err != nil {
		t.Fatal(err)
	}
}

// TestObserverSeries: decisions, auth failures, rate-limit rejections and
// breaker states land in their series with bounded labels.
func TestObserverSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := edgemetrics.New(reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	m.Decided(edge.Decision{Allow: true, Route: "read", Reason: edge.ReasonAllowed})
	m.Decided(edge.Decision{Status: 401, Route: "read", Reason: "token_expired"})
	m.Decided(edge.Decision{Status: 429, Route: "read", Reason: edge.ReasonRateLimited})
	m.Decided(edge.Decision{Status: 404, Reason: edge.ReasonNoRoute})
	b := breaker.NewRegistry(breaker.Settings{ConsecutiveFailures: 1, OnStateChange: m.BreakerChanged}).Get("payments")
	m.BreakerSeen(b)
	tk, _, _ := b.Allow()
	b.Done(tk, false)
	want := `
# HELP auth_failures_total Requests refused for missing, invalid or insufficient credentials, by reason.
# TYPE auth_failures_total counter
auth_failures_total{reason="token_expired"} 1
# HELP circuit_breaker_state Circuit breaker state per upstream: 0 closed, 1 half-open, 2 open.
# TYPE circuit_breaker_state gauge
circuit_breaker_state{upstream="payments"} 2
# HELP circuit_breaker_transitions_total Circuit breaker state changes per upstream, by the state left and the state entered (closed, half-open, open).
# TYPE circuit_breaker_transitions_total counter
circuit_breaker_transitions_total{from="closed",to="open",upstream="payments"} 1
# HELP edge_decisions_total Edge decisions, by route, decision (allow, reject, preflight) and reason code.
# TYPE edge_decisions_total counter
edge_decisions_total{decision="allow",reason="allowed",route="read"} 1
edge_decisions_total{decision="reject",reason="no_route",route="unmatched"} 1
edge_decisions_total{decision="reject",reason="rate_limited",route="read"} 1
edge_decisions_total{decision="reject",reason="token_expired",route="read"} 1
# HELP ratelimit_rejections_total Requests refused by a rate limit, by route.
# TYPE ratelimit_rejections_total counter
ratelimit_rejections_total{route="read"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), edgemetrics.MetricAuthFailures,
		edgemetrics.MetricBreakerState, edgemetrics.MetricBreakerChanges, edgemetrics.MetricDecisions, edgemetrics.MetricRateRejections); err != nil {
		t.Fatal(err)
	}
}
