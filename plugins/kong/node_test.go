package kong

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Kong/go-pdk/test"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/contentguard/contentguard/internal/polltest"
	"github.com/contentguard/contentguard/internal/redistest"
	"github.com/contentguard/contentguard/internal/syncbuf"
	"github.com/contentguard/contentguard/telemetry"
	"github.com/contentguard/contentguard/telemetry/edgemetrics"
)

// policyWithRoute is a small policy with one public route, and a rate
// store line.
func policyWithRoute(name, path, store string) string {
	return `apiVersion: contentguard.dev/v1
kind: EdgePolicy
metadata: {name: ` + name + `}
spec:
  rateLimit: {store: ` + store + `}
  routes:
    - name: ` + name + `
      match: {path: ` + path + `}
      auth: none
      rateLimit: {key: route, rate: 2, per: 1h}
`
}

// writeFile replaces path's content through a rename, as editors and
// Kubernetes ConfigMaps do.
func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}

// TestPolicyReload: a changed policy file is in force for the next request
// without restarting anything; a broken one is logged and counted, and the
// last good policy stays; the buckets survive the reload.
func TestPolicyReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyWithRoute("v1", "/a", "{type: memory}"))
	var logs syncbuf.Buffer
	reg := telemetry.NewRegistry()
	_, c := startInstance(t, NodeOptions{Logger: slog.New(slog.NewJSONHandler(&logs, nil)), Registry: reg, WatchInterval: 5 * time.Millisecond},
		map[string]any{"policy_file": path})
	status := func(p string) int {
		return send(t, c, test.Request{Url: "http://edge.test" + p}, test.Response{}).ClientRes.Status
	}
	if got := status("/a"); got != http.StatusOK {
		t.Fatalf("v1 /a: %d", got)
	}
	// The same route name and limit under another path: one of its two
	// requests is spent already.
	writeFile(t, path, policyWithRoute("v1", "/b", "{type: memory}"))
	last := 0
	if !polltest.Until(10*time.Second, func() bool { last = status("/b"); return last != http.StatusNotFound }) {
		t.Fatal("the new policy never took over")
	}
	if last != http.StatusOK {
		t.Fatalf("v2 /b: %d", last)
	}
	if got := status("/a"); got != http.StatusNotFound {
		t.Fatalf("v2 /a: %d", got)
	}
	if got := status("/b"); got != http.StatusTooManyRequests {
		t.Fatalf("v2 /b third request overall: %d, want 429 (the bucket kept its spending)", got)
	}
	writeFile(t, path, "apiVersion: contentguard.dev/v1\nkind: EdgePolicy\nspec: {routes: [oops")
	if !polltest.Until(10*time.Second, func() bool {
		n, err := testutil.GatherAndCount(reg, edgemetrics.MetricPolicyReloadError)
		return err == nil && n == 1 && counterValue(t, reg, edgemetrics.MetricPolicyReloadError) == 1
	}) {
		t.Fatalf("the broken file was not counted; log:\n%s", logs.String())
	}
	if got := status("/a"); got != http.StatusNotFound {
		t.Fatalf("after a broken file /a: %d, want the last good policy's 404", got)
	}
	if !strings.Contains(logs.String(), "policy reload failed; keeping the policy in force") || !strings.Contains(logs.String(), path) {
		t.Fatalf("the failure is not logged with the file:\n%s", logs.String())
	}
}

// TestRedisSharesLimitsAcrossNodes: with redis in the policy, two Kong
// nodes (two plugin servers) spend from one budget.
func TestRedisSharesLimitsAcrossNodes(t *testing.T) {
	addr := redistest.Start(t)
	path := filepath.Join(t.TempDir(), "policy.yaml")
	writeFile(t, path, policyWithRoute("shared", "/a", "{type: redis, url: 'redis://"+addr+"/0'}"))
	_, first := startInstance(t, NodeOptions{}, map[string]any{"policy_file": path})
	_, second := startInstance(t, NodeOptions{}, map[string]any{"policy_file": path})
	for i, c := range []*Config{first, second, first} {
		want := http.StatusOK
		if i == 2 {
			want = http.StatusTooManyRequests
		}
		if got := send(t, c, test.Request{Url: "http://edge.test/a"}, test.Response{}).ClientRes.Status; got != want {
			t.Fatalf("request %d: %d, want %d", i+1, got, want)
		}
	}
}

// TestMetricsEndpoint: the plugin server serves the sidecar's metric names
// on the loopback address an instance names, counting what the instances
// decide and the answers Log sees.
func TestMetricsEndpoint(t *testing.T) {
	n, c := startInstance(t, NodeOptions{}, map[string]any{
		"policy_file": conformancePolicy("standard.yaml"), "metrics_address": "127.0.0.1:0", "upstream": "content-api"})
	send(t, c, test.Request{Url: "http://edge.test/healthz"}, test.Response{})
	send(t, c, test.Request{Url: "http://edge.test/api/v1/jobs"}, test.Response{})
	addr := n.MetricsAddr("127.0.0.1:0")
	if addr == "" {
		t.Fatal("no metrics listener")
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`edge_decisions_total{decision="allow",reason="allowed",route="health"} 1`,
		`edge_decisions_total{decision="reject",reason="credentials_missing",route="read"} 1`,
		`auth_failures_total{reason="credentials_missing"} 1`,
		`circuit_breaker_state{upstream="content-api"} 0`,
		`http_requests_total{method="GET",route="health",status="200"} 1`,
		`http_requests_total{method="GET",route="read",status="401"} 1`,
		`upstream_request_duration_seconds_count{upstream="content-api"} 1`,
		`policy_info{hash="`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// counterValue reads the value of an unlabelled counter from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return -1
}

// exposition is what the node's /metrics handler serves now.
func exposition(t *testing.T, n *Node) string {
	t.Helper()
	rec := httptest.NewRecorder()
	n.metrics.HTTP().Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics: %d", rec.Code)
	}
	return rec.Body.String()
}
