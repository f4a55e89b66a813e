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
// buckets, counted as fallbacks; deny: 429; allow: admitted), and when it
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
				if r.Header.Get("Retry-After") == "" || problemReason(t, r) != "rate_limited" {
					t.Fatalf("deny answer: %d %v %s", r.Status, r.Header, r.Body)
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
