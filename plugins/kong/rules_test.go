package kong

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Kong/go-pdk/test"

	"github.com/contentguard/contentguard/conformance"
	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/redistest"
	"github.com/contentguard/contentguard/internal/syncbuf"
)

// The engine's newer rules, as the Kong plane applies them: what the other
// planes count and refuse, the plugin counts and refuses alike.

// TestUpstreamOutcomeMetrics: Log's account of each forwarded request
// reaches upstream_outcomes_total with whose fault its end was: the
// upstream's answer, the upstream's 5xx, and a client that went away, which
// the breaker does not count.
func TestUpstreamOutcomeMetrics(t *testing.T) {
	n, c := startInstance(t, NodeOptions{}, map[string]any{
		"policy_file": conformancePolicy("standard.yaml"), "upstream": "content-api"})
	for _, status := range []int{http.StatusOK, http.StatusServiceUnavailable, 499} {
		send(t, c, test.Request{Url: "http://edge.test/healthz"}, test.Response{Status: status})
	}
	m := exposition(t, n)
	for _, want := range []string{
		`upstream_outcomes_total{fault="none",reason="allowed",upstream="content-api"} 1`,
		`upstream_outcomes_total{fault="upstream",reason="allowed",upstream="content-api"} 1`,
		`upstream_outcomes_total{fault="client",reason="client_closed",upstream="content-api"} 1`,
		`upstream_request_duration_seconds_count{upstream="content-api"} 3`,
		`http_requests_total{method="GET",route="health",status="499"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", m)
	}
}

// TestJWKSFetchMetrics: an instance whose policy fetches its keys from a
// URL counts every fetch in jwks_fetches_total and logs the failures, and
// admits tokens once the keys arrive.
func TestJWKSFetchMetrics(t *testing.T) {
	keys, err := os.ReadFile(filepath.Join(conformance.Dir(), "testdata", "keys", "jwks.json"))
	if err != nil {
		t.Fatal(err)
	}
	var up atomic.Bool
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(keys)
	}))
	defer idp.Close()
	policy := policyVariant(t, conformancePolicy("standard.yaml"),
		"jwks: {file: "+filepath.Join(conformance.Dir(), "testdata", "keys", "jwks.json")+"}",
		`jwks: {url: "`+idp.URL+`/jwks"}`)
	var logs syncbuf.Buffer
	n, c := startInstance(t, NodeOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil))},
		map[string]any{"policy_file": policy})
	fetches := func(result string) bool {
		return regexp.MustCompile(`jwks_fetches_total\{provider="main",result="` + result + `"\} [1-9]`).MatchString(exposition(t, n))
	}
	// The 10s bounds only keep a stuck test from hanging: the first
	// retry comes after a second.
	if !polltest.Until(10*time.Second, func() bool { return fetches("error") }) {
		t.Fatalf("no failed fetch counted:\n%s", exposition(t, n))
	}
	if !strings.Contains(logs.String(), `"msg":"JWKS fetch failed"`) || !strings.Contains(logs.String(), idp.URL+"/jwks") {
		t.Errorf("the failed fetch is not logged with its URL:\n%s", logs.String())
	}
	up.Store(true)
	jwt := mint(t, conformance.Token{Sub: "alice", Scope: "read"})
	status := 0
	if !polltest.Until(10*time.Second, func() bool {
		status = send(t, c, test.Request{Url: "http://edge.test/api/v1/jobs", Headers: http.Header{"Authorization": {jwt}}},
			test.Response{}).ClientRes.Status
		return status == http.StatusOK
	}) {
		t.Fatalf("a valid token is still refused (%d) once the keys are up", status)
	}
	if !fetches("ok") {
		t.Fatalf("the successful fetch is not counted:\n%s", exposition(t, n))
	}
}

// TestRateLimitStoreDown: with a Redis store and onError: deny, a dead
// Redis refuses through kong.response.exit with 429 rate_limit_store_down
// and Retry-After, counted as that reason and not as rate limiting.
func TestRateLimitStoreDown(t *testing.T) {
	rs := redistest.New(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyWithRoute("limited", "/a", "{type: redis, url: 'redis://"+rs.Addr()+"/0', onError: deny}"))
	n, c := startInstance(t, NodeOptions{}, map[string]any{"policy_file": path})
	if got := send(t, c, test.Request{Url: "http://edge.test/a"}, test.Response{}).ClientRes.Status; got != http.StatusOK {
		t.Fatalf("with Redis up: %d", got)
	}
	rs.Stop()
	x := send(t, c, test.Request{Url: "http://edge.test/a"}, test.Response{})
	if !x.exited || x.ClientRes.Status != http.StatusTooManyRequests || x.ClientRes.Headers.Get("Retry-After") == "" ||
		!strings.Contains(string(x.ClientRes.Body), `"reason":"rate_limit_store_down"`) {
		t.Fatalf("with Redis down: exited=%v %d %v %s", x.exited, x.ClientRes.Status, x.ClientRes.Headers, x.ClientRes.Body)
	}
	m := exposition(t, n)
	if !strings.Contains(m, `edge_decisions_total{decision="reject",reason="rate_limit_store_down",route="limited"} 1`) {
		t.Errorf("the refusal is not counted by its reason:\n%s", m)
	}
	if strings.Contains(m, `ratelimit_rejections_total{route="limited"}`) {
		t.Errorf("a dead store is counted as rate limiting:\n%s", m)
	}
}
