package sidecar_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/contentguard/contentguard/internal/redistest"
	"github.com/contentguard/contentguard/sidecar"
)

// TestRedisKilledMidTest: with a Redis rate-limit store, a shared budget
// holds while Redis runs; when it dies, onError decides (local: per-process
// buckets, counted as fallbacks; deny: 429 with its own reason, not
// rate_limited and not counted as a rate-limit rejection; allow: admitted),
// and when it
// comes back, Redis decides again.
func TestRedisKilledMidTest(t *testing.T) {
	for _, mode := range []string{"local", "deny", "allow"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			rs := redistest.New(t)
			up := startUpstream(t)
			p := parsePolicy(t, fmt.Sprintf(`
apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: redis-%s}
spec:
  upstream: {url: http://127.0.0.1:9, timeout: 2s}
  rateLimit: {store: {type: redis, url: "redis://%s/0", onError: %s}, headers: ietf}
  routes:
    - name: limited
      match: {pathPrefix: /}
      auth: none
      rateLimit: {key: route, rate: 2, per: 1h}
`, mode, rs.Addr(), mode))
			// Two sidecars share the Redis budget, as replicas would.
			a := startSidecar(t, sidecar.Options{Policy: p, Upstream: up.URL})
			b := startSidecar(t, sidecar.Options{Policy: p, Upstream: up.URL})
			statuses := func(sc *running, n int) string {
				var out []string
				for i := 0; i < n; i++ {
					out = append(out, fmt.Sprint(get(t, sc.addr, "/x", "", nil).Status))
				}
				return strings.Join(out, " ")
			}
			if got := statuses(a, 1) + " " + statuses(b, 2); got != "200 200 429" {
				t.Fatalf("shared budget with Redis up: %s", got)
			}
			if n := counterValue(t, a, sidecar.MetricRateFallbacks); n != 0 {
				t.Fatalf("fallbacks with Redis up: %v", n)
			}

			rs.Stop()
			want := map[string]string{"local": "200 200 429", "deny": "429 429 429", "allow": "200 200 200"}[mode]
			if got := statuses(a, 3); got != want {
				t.Fatalf("Redis down, onError %s: %s, want %s", mode, got, want)
			}
			if n := counterValue(t, a, sidecar.MetricRateFallbacks); n != 3 {
				t.Fatalf("ratelimit_fallbacks_total = %v, want 3", n)
			}
			if mode == "deny" {
				r := get(t, a.addr, "/x", "", nil)
				if r.Header.Get("Retry-After") == "" || problemReason(t, r) != "rate_limit_store_down" {
					t.Fatalf("deny answer: %d %v %s", r.Status, r.Header, r.Body)
				}
				if n := labelledValue(t, a, sidecar.MetricDecisions, "reason", "rate_limit_store_down"); n != 4 {
					t.Fatalf("edge_decisions_total{reason=rate_limit_store_down} = %v, want 4", n)
				}
				if n := labelledValue(t, a, sidecar.MetricRateRejections, "route", "limited"); n != 0 {
					t.Fatalf("ratelimit_rejections_total counted %v refusals of a dead store as rate limiting", n)
				}
			}

			// Redis returns, empty: after the fallback hold-off, a fresh
			// shared budget again.
			rs.Restart()
			waitFor(t, 10*time.Second, func() bool {
				before := counterValue(t, a, sidecar.MetricRateFallbacks)
				ok := get(t, a.addr, "/x", "", nil).Status == http.StatusOK
				return ok && counterValue(t, a, sidecar.MetricRateFallbacks) == before
			})
			if got := statuses(b, 1) + " " + statuses(a, 1); got != "200 429" {
				t.Fatalf("after Redis returned: %s", got)
			}
		})
	}
}

// labelledValue sums the counter name over the series whose label has value
// (0 when there is none).
func labelledValue(t testing.TB, sc *running, name, label, value string) float64 {
	t.Helper()
	mfs, err := sc.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}
